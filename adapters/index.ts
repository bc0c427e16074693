/**
 * Turns an adapter spec (what users pass as --impl / --oracle) into an Adapter:
 * 'reference', 'qemu', 'cli', a third-party implementation's adapter ('libyal'), or the path of a user module whose default export is
 * an Adapter or a (possibly async) factory returning one.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Adapter } from './adapter.js';
import { createQemuAdapter } from './qemu.js';

/** Compiled to dist/adapters/index.js, so the repository is two levels up. */
const REPO = fileURLToPath(new URL('../../', import.meta.url));

const REQUIRED_METHODS = ['create', 'info', 'check', 'map', 'measure', 'convert', 'compare', 'io', 'guestSha256'] as const;

export class AdapterLoadError extends Error {
  constructor(readonly spec: string, message: string) {
    super(`adapter "${spec}": ${message}`);
    this.name = 'AdapterLoadError';
  }
}

/**
 * Third-party implementations by name (--impl NAME): each factory reports its tool absent as
 * not applicable rather than failing. One line per adapter.
 */
export const NAMED_ADAPTERS: Record<string, () => Promise<Adapter>> = {
  dmg2img: async () => (await import('./tools/dmg2img.js')).createDmg2imgAdapter(),
  cloop: async () => (await import('./tools/cloop.js')).createCloopAdapter(),
  bximage: async () => (await import('./tools/bximage.js')).createBximageAdapter(),
  cryptsetup: async () => (await import('./tools/cryptsetup.js')).createCryptsetupAdapter(),
  nbdkit: async () => (await import('./tools/nbdkit.js')).createNbdkitAdapter(),
  // (one line per named adapter, above this comment)
};

export function repoRoot(): string {
  return REPO;
}

export async function loadAdapter(spec: string): Promise<Adapter> {
  if (spec === 'reference') {
    const mod = (await import('./reference.js')) as { createReferenceAdapter: () => Adapter };
    return validateAdapter(spec, mod.createReferenceAdapter());
  }
  if (spec === 'qemu') return createQemuAdapter();
  if (spec === 'cli') {
    return createQemuAdapter({
      qemuImg: resolve(REPO, 'bin/qbc-img'),
      qemuIo: resolve(REPO, 'bin/qbc-io'),
      qemuNbd: resolve(REPO, 'bin/qbc-nbd'),
      name: 'cli',
    });
  }
  if (spec === 'libyal') {
    const mod = (await import('./libyal.js')) as { createLibyalAdapter: () => Promise<Adapter> };
    return validateAdapter(spec, await mod.createLibyalAdapter());
  }
  const named = NAMED_ADAPTERS[spec];
  if (named) return validateAdapter(spec, await named());
  return validateAdapter(spec, await loadUserModule(spec));
}

async function loadUserModule(spec: string): Promise<unknown> {
  const path = isAbsolute(spec) ? spec : resolve(process.cwd(), spec);
  if (!existsSync(path)) {
    throw new AdapterLoadError(spec, `not 'reference', 'qemu', 'cli', 'libyal' or one of ${Object.keys(NAMED_ADAPTERS).join(', ')}, and no module exists at ${path}`);
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (err) {
    throw new AdapterLoadError(spec, `cannot import ${path}: ${(err as Error).message}`);
  }
  const exported = mod.default;
  if (exported === undefined) throw new AdapterLoadError(spec, `${path} has no default export`);
  // A factory is a function that is not itself an adapter object.
  if (typeof exported === 'function') return await (exported as () => unknown)();
  return exported;
}

/** Checks the shape of an adapter so a wrong module fails at load, not mid-scenario. */
export function validateAdapter(spec: string, candidate: unknown): Adapter {
  if (candidate === null || typeof candidate !== 'object') {
    throw new AdapterLoadError(spec, `the default export is not an adapter object (got ${candidate === null ? 'null' : typeof candidate})`);
  }
  const a = candidate as Record<string, unknown>;
  if (typeof a.name !== 'string' || a.name === '') throw new AdapterLoadError(spec, 'missing "name" (a non-empty string)');
  const caps = a.capabilities as { formats?: unknown; protocols?: unknown } | undefined;
  if (!caps || typeof caps !== 'object' || !caps.formats || typeof caps.formats !== 'object' || !Array.isArray(caps.protocols)) {
    throw new AdapterLoadError(spec, 'missing "capabilities" ({ formats: { fmt: ops[] }, protocols: string[] })');
  }
  for (const [fmt, ops] of Object.entries(caps.formats as Record<string, unknown>)) {
    if (!Array.isArray(ops)) throw new AdapterLoadError(spec, `capabilities.formats.${fmt} is not a list of operations`);
  }
  const missing = REQUIRED_METHODS.filter((m) => typeof a[m] !== 'function');
  if (missing.length > 0) throw new AdapterLoadError(spec, `missing method(s): ${missing.join(', ')}`);
  return candidate as Adapter;
}
