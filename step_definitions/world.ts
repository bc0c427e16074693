/**
 * The World of one scenario: the implementation under test, the oracle, a
 * scratch directory of its own, the images it made by name, and the outcome of
 * the last action (so a When can fail and a Then can look at why).
 */
import { join } from 'node:path';
import { World, setWorldConstructor, type IWorldOptions } from '@cucumber/cucumber';
import { missingCapability, missingInfoField, missingWriteCommand, type WriteCommand, type SecretObject, type Adapter, type CheckResult, type ImageInfo, type ImageRef, type MapEntry, type MeasureRequest, type MeasureResult, type Operation } from '../adapters/adapter.js';
import type { Defect } from './support/hostile-qcow2.js';

export interface QbcParameters {
  /** adapter spec of the implementation under test */
  impl: string;
  /** 'qemu' | 'reference' | 'none' (or any adapter spec) */
  oracle: string;
}

/** Adapters are loaded once per worker (BeforeAll) and shared by every scenario. */
export const adapters: { iut: Adapter | null; oracle: Adapter | null } = { iut: null, oracle: null };

export interface NamedImage extends ImageRef {
  format: string;
}

/** Thrown by a step to make the scenario "not applicable" (the hook-free way to skip). */
export const NOT_APPLICABLE = 'skipped';

export class QbcWorld extends World<QbcParameters> {
  scratch = '';
  images = new Map<string, NamedImage>();
  /** name of the image the last Given/When was about ("the image") */
  current = '';
  /** the error of the last action that was allowed to fail, or null if it succeeded */
  lastError: unknown = null;
  /** the image a failed/successful create was aimed at */
  lastTarget: NamedImage | null = null;
  lastCheck: CheckResult | null = null;
  lastInfo: ImageInfo | null = null;
  lastMap: MapEntry[] | null = null;
  lastMeasure: MeasureResult | null = null;
  lastMeasureRequest: MeasureRequest | null = null;
  lastCompare: { identical: boolean; message: string } | null = null;
  /** the defect a hostile image was given, and its file hash before the scenario acted */
  defect: Defect | null = null;
  sha256Before = '';
  /** the secret objects the scenario defined (qemu-img --object secret,...), given to every request */
  secrets: SecretObject[] = [];
  /** a precondition's image was made by the oracle, because the implementation cannot create its format */
  madeByOracle = false;
  /** the implementation under test was asked to do something (any adapter method was called) */
  iutActed = false;
  #iutView: { of: Adapter; view: Adapter } | null = null;

  constructor(options: IWorldOptions<QbcParameters>) {
    super(options);
  }

  /**
   * The implementation under test, seen through a view that notes whether the scenario called
   * any of its methods: a scenario whose image the oracle made and that never asked the
   * implementation anything has judged the oracle alone (hooks.ts makes it not applicable).
   */
  get iut(): Adapter {
    const real = adapters.iut;
    if (!real) throw new Error('no implementation under test loaded (BeforeAll failed?)');
    if (this.#iutView?.of !== real) this.#iutView = { of: real, view: noteCalls(real, () => { this.iutActed = true; }) };
    return this.#iutView.view;
  }

  get oracle(): Adapter | null {
    return adapters.oracle;
  }

  path(file: string): string {
    return join(this.scratch, file);
  }

  /** Registers (without creating) an image file in the scratch dir. */
  declare(name: string, format: string): NamedImage {
    const img: NamedImage = { filename: this.path(`${name}.${format}`), format };
    this.images.set(name, img);
    this.current = name;
    return img;
  }

  /**
   * An image created with options that name a key secret (key-secret=ID, encrypt.key-secret=ID)
   * is opened with that secret from then on; every request carries the scenario's secrets.
   */
  keyed(img: NamedImage, options: string | undefined): NamedImage {
    if (this.secrets.length === 0) return img;
    img.secrets = [...this.secrets];
    const m = /(?:^|,)(?:encrypt\.)?key-secret=([^,]+)/.exec(options ?? '');
    if (m) img.keySecret = m[1];
    return img;
  }

  image(name?: string): NamedImage {
    const key = name ?? this.current;
    const img = this.images.get(key);
    if (!img) throw new Error(`no image named "${key}" in this scenario`);
    return img;
  }

  /**
   * Returns 'skipped' (after attaching the reason) when the IUT lacks `op` for
   * `format`; a step returns that value to become not applicable.
   */
  needs(format: string, op: Operation, adapter: Adapter = this.iut): 'skipped' | null {
    const why = missingCapability(adapter, format, op);
    if (why === null) return null;
    this.notApplicable(why);
    return NOT_APPLICABLE;
  }

  /** Like needs(), for a field of qemu-img info the implementation may not report (Capabilities.infoFields). */
  needsInfoField(format: string, field: string): 'skipped' | null {
    const why = missingInfoField(this.iut, format, field);
    return why === null ? null : this.notApplicable(why);
  }

  /** Like needs(), for a zeroing or discarding write (Capabilities.writeCommands). */
  needsWriteCommand(format: string, command: WriteCommand): 'skipped' | null {
    const why = missingWriteCommand(this.iut, format, command);
    return why === null ? null : this.notApplicable(why);
  }

  /** Like needs(format, 'info'), for an info of a file given without its format: the implementation must probe (Capabilities.probes). */
  needsProbing(format: string): 'skipped' | null {
    const skip = this.needs(format, 'info');
    if (skip) return skip;
    if (this.iut.capabilities.probes === false) return this.notApplicable(`${this.iut.name} opens an image only when told its format: it does not probe`);
    return null;
  }

  /**
   * Who makes an image a scenario starts from (a Given, not a create the scenario is about): the
   * implementation when it can create `format`, else the oracle when it can, with a note saying
   * so, so readers and info-only tools are judged on what they do implement. Returns 'skipped'
   * (not applicable) when neither can.
   */
  preconditionMaker(format: string): Adapter | 'skipped' {
    if (missingCapability(this.iut, format, 'create') === null) return this.iut;
    const oracle = this.oracle;
    if (oracle && missingCapability(oracle, format, 'create') === null) {
      this.madeByOracle = true;
      this.attach(`image made by the oracle (${oracle.name}): ${this.iut.name} cannot create ${format}`, 'text/plain');
      return oracle;
    }
    return this.needs(format, 'create') ?? NOT_APPLICABLE;
  }

  notApplicable(reason: string): 'skipped' {
    this.attach(`not applicable: ${reason}`, 'text/plain');
    return NOT_APPLICABLE;
  }
}

/** `adapter` with every method call reported to `called` first (properties pass through unchanged). */
function noteCalls(adapter: Adapter, called: () => void): Adapter {
  return new Proxy(adapter, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        called();
        return Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
      };
    },
  });
}

setWorldConstructor(QbcWorld);
