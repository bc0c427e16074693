/**
 * Secrets for a qemu-img-dialect implementation, handed over the way the manual asks:
 * `--object secret,id=ID,file=PATH`, never `data=` on a command line (the process list
 * would show the passphrase). A secret given as data is written to a file of its own
 * (mode 0600, in a private directory) for the one command, then removed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { ImageRef, SecretObject } from './adapter.js';

/** QemuOpts text: a comma in a value is doubled. */
const q = (s: string) => s.replaceAll(',', ',,');

export class SecretFiles {
  private dir: string | null = null;
  private n = 0;

  /** `--object secret,...` arguments for every secret, each id once. */
  async args(...lists: Array<SecretObject[] | undefined>): Promise<string[]> {
    const out: string[] = [];
    const seen = new Set<string>();
    for (const list of lists) {
      for (const s of list ?? []) {
        if (seen.has(s.id)) continue;
        seen.add(s.id);
        let file = s.file;
        if (file === undefined) {
          this.dir ??= await mkdtemp(join(tmpdir(), 'qbc-secret-'));
          file = join(this.dir, `s${this.n++}`);
          await writeFile(file, s.data ?? '', { mode: 0o600 });
        }
        out.push('--object', `secret,id=${q(s.id)},file=${q(file)}${s.format ? `,format=${s.format}` : ''}`);
      }
    }
    return out;
  }

  async dispose(): Promise<void> {
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}

/** The option naming an image's key: luks takes key-secret, qcow and qcow2 encrypt.key-secret. */
export function keyOption(format: string | undefined): string {
  return format === 'qcow' || format === 'qcow2' ? 'encrypt.key-secret' : 'key-secret';
}

/**
 * How to name an image with its key for qemu-img / qemu-io: appended to an --image-opts list,
 * or a json: filename (driver given or probed) otherwise. `fmt` is what replaces -f FMT.
 */
export function keyedName(image: ImageRef): { fmt: 'image-opts' | 'json' | 'plain'; name: string } {
  if (!image.keySecret) return { fmt: image.imageOpts ? 'image-opts' : 'plain', name: image.filename };
  const key = keyOption(image.format);
  if (image.imageOpts) return { fmt: 'image-opts', name: `${image.filename},${key}=${q(image.keySecret)}` };
  const path = isAbsolute(image.filename) || /^[a-z0-9+]+:/i.test(image.filename) ? image.filename : resolve(image.filename);
  const o: Record<string, string> = {};
  if (image.format) o.driver = image.format;
  o[key] = image.keySecret;
  o['file.filename'] = path;
  return { fmt: 'json', name: `json:${JSON.stringify(o)}` };
}

/** qemu-img's message when its PBKDF timing probe measured no CPU time (a coarse clock on these VMs). */
export const CPU_USAGE_FLAKE = /Unable to get accurate CPU usage/;

/** How many times a run that failed only with CPU_USAGE_FLAKE is made in all before its failure stands. */
export const CPU_USAGE_ATTEMPTS = 8;
