/**
 * What the command-line tool adapters (dmg2img, bximage, cloop, cryptsetup, nbdkit, mtools)
 * share: finding the tool and its version, refusing by name what a tool cannot do, and
 * serving reads from a raw file the tool wrote (its conversion of the image), so that the
 * bytes judged are the tool's, never ours.
 *
 * Memory is bounded: a raw file is hashed and compared in 1 MiB pieces. Each conversion
 * lands in a private temporary directory that is removed when the operation ends.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { execa } from 'execa';
import { ImplError, type Adapter, type Capabilities, type ImageRef, type IoCommand } from '../adapter.js';
import { secretFromObject } from '../../reference/crypto/secret.js';

const PIECE = 1 << 20;

/** The absolute path of a command on PATH (or the usual sbin directories), or null. */
export function which(cmd: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin'];
  for (const d of dirs) {
    if (d && existsSync(join(d, cmd))) return join(d, cmd);
  }
  return null;
}

/** The Debian package's version of a tool (dpkg-query), else the first line of `cmd args` matching re, else 'unknown'. */
export async function toolVersion(pkg: string, cmd?: string, args: string[] = [], re?: RegExp): Promise<string> {
  const d = await execa('dpkg-query', ['-W', '-f=${Version}', pkg], { reject: false, timeout: 10_000 });
  if (d.exitCode === 0 && d.stdout.trim()) return `${pkg} ${d.stdout.trim()}`;
  if (cmd) {
    const r = await execa(cmd, args, { reject: false, timeout: 10_000, all: true });
    const m = re?.exec(String(r.all ?? ''));
    if (m) return `${cmd} ${m[1] ?? m[0]}`;
  }
  return `${pkg} (version unknown)`;
}

const KEEP = 1 << 20;

/** Appends a chunk to a buffer that keeps only its last KEEP bytes (bximage prints 20 MB of progress for 1 GiB). */
function keepTail(acc: Buffer[], chunk: Buffer, size: { n: number }): void {
  acc.push(chunk);
  size.n += chunk.length;
  while (size.n - acc[0].length >= KEEP) size.n -= acc.shift()!.length;
}

/**
 * Runs a tool; a non-zero exit is an ImplError carrying what the tool printed last. Output is
 * kept up to 1 MiB per stream (the tail, beyond that), so a chatty tool cannot exhaust memory.
 */
export async function runTool(impl: string, cmd: string, args: string[], opts: { input?: string; timeout?: number } = {}): Promise<string> {
  const child = execa(cmd, args, { reject: false, buffer: false, timeout: opts.timeout ?? 60_000, input: opts.input, stdin: opts.input === undefined ? 'ignore' : undefined, env: { LC_ALL: 'C' } });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const outSize = { n: 0 };
  const errSize = { n: 0 };
  child.stdout?.on('data', (c: Buffer) => keepTail(out, c, outSize));
  child.stderr?.on('data', (c: Buffer) => keepTail(err, c, errSize));
  const r = await child;
  const stdout = Buffer.concat(out).toString('utf8');
  const stderr = Buffer.concat(err).toString('utf8');
  if (r.exitCode !== 0) {
    const said = String(stderr || stdout || '').trim().split('\n').slice(-4).join(' / ').slice(-600);
    throw new ImplError(`${cmd}: ${said || `exit ${r.exitCode ?? r.signal}`}${r.timedOut ? ' (timed out)' : ''}`, r.exitCode ?? 1, impl);
  }
  return stdout.replace(/\n$/, '');
}

export function refuse(impl: string, what: string): never {
  throw new ImplError(`${impl} has no ${what}`, 1, impl);
}

/** The image's file name, refusing what a command-line tool cannot take. */
export function plainFile(impl: string, image: ImageRef, formats: string[]): string {
  if (image.imageOpts) throw new ImplError(`${impl} takes a file name, not an option list`, 1, impl);
  if (image.format !== undefined && !formats.includes(image.format)) throw new ImplError(`${impl} does not read the ${image.format} format`, 1, impl);
  return image.filename;
}

/** Runs fn with a fresh private directory, removed afterwards whatever happens. */
export async function withTemp<T>(impl: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `qbc-${impl}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The passphrase of `image`'s key secret (data=, file=, format=base64, as qemu-img takes them)
 * written to DIR/passphrase with mode 0600, for a tool that reads it from a file: a passphrase
 * never goes on a command line. Returns the file's path.
 */
export async function passphraseFile(impl: string, image: ImageRef, dir: string): Promise<string> {
  if (!image.keySecret) throw new ImplError(`${image.format ?? 'the image'}: no key-secret given (${impl} needs the passphrase)`, 1, impl);
  const secret = image.secrets?.find((s) => s.id === image.keySecret);
  if (!secret) throw new ImplError(`no secret object with id '${image.keySecret}' (key-secret)`, 1, impl);
  let value: Buffer;
  try {
    value = secretFromObject(secret).value;
  } catch (e) {
    throw new ImplError((e as Error).message, 1, impl);
  }
  const file = join(dir, 'passphrase');
  await writeFile(file, value, { mode: 0o600 });
  return file;
}

/** sha256 of a file, read in pieces; `size` (when given) pads with zeroes or cuts to the guest size. */
export async function sha256File(path: string, size?: number): Promise<string> {
  const h = createHash('sha256');
  const f = await open(path, 'r');
  try {
    const fileSize = (await f.stat()).size;
    const total = size ?? fileSize;
    const buf = Buffer.alloc(PIECE);
    for (let off = 0; off < total; off += PIECE) {
      const n = Math.min(PIECE, total - off);
      buf.fill(0, 0, n);
      if (off < fileSize) await f.read(buf, 0, Math.min(n, fileSize - off), off);
      h.update(buf.subarray(0, n));
    }
  } finally {
    await f.close();
  }
  return h.digest('hex');
}

/** qemu-io's read [-P]: every command must be a read; a byte past the raw file's end is an error, as qemu-io refuses a read past the disk. */
export async function verifyReads(impl: string, path: string, commands: IoCommand[]): Promise<void> {
  const f = await open(path, 'r');
  try {
    const size = (await f.stat()).size;
    const buf = Buffer.alloc(PIECE);
    for (const c of commands) {
      if (c.op !== 'read') refuse(impl, `${c.op}: it is a read-only reader`);
      if (c.offset + c.length > size) throw new ImplError(`read failed: Input/output error (offset ${c.offset} + ${c.length} is past the ${size}-byte disk)`, 1, impl);
      for (let done = 0; done < c.length; done += PIECE) {
        const n = Math.min(PIECE, c.length - done);
        await f.read(buf, 0, n, c.offset + done);
        if (c.pattern < 0) continue;
        for (let i = 0; i < n; i++) {
          if (buf[i] !== c.pattern) {
            throw new ImplError(`Pattern verification failed at offset ${c.offset + done + i}: 0x${buf[i].toString(16)} read, 0x${c.pattern.toString(16)} expected`, 1, impl);
          }
        }
      }
    }
  } finally {
    await f.close();
  }
}

/**
 * An adapter for a tool that only turns an image into a raw file (dmg2img, extract_compressed_fs,
 * bximage's convert): read (io reads and guestSha256) through that file, every other operation refused.
 */
export function rawReaderAdapter(a: {
  name: string;
  version: string;
  capabilities: Capabilities;
  formats: string[];
  /** writes the guest disk of `image` as a raw file at `out` */
  toRaw(file: string, image: ImageRef, out: string): Promise<void>;
  extra?: Partial<Adapter>;
}): Adapter & { version: string } {
  const viaRaw = <T>(image: ImageRef, fn: (raw: string) => Promise<T>): Promise<T> =>
    withTemp(a.name, async (dir) => {
      const raw = join(dir, 'guest.raw');
      await a.toRaw(plainFile(a.name, image, a.formats), image, raw);
      if (!existsSync(raw)) throw new ImplError(`${a.name} wrote no output`, 1, a.name);
      return fn(raw);
    });
  return {
    name: a.name,
    version: a.version,
    capabilities: a.capabilities,
    create: async () => refuse(a.name, 'create'),
    info: async () => refuse(a.name, 'info'),
    check: async () => refuse(a.name, 'check'),
    map: async () => refuse(a.name, 'map'),
    measure: async () => refuse(a.name, 'measure'),
    convert: async () => refuse(a.name, 'convert'),
    compare: async () => refuse(a.name, 'compare'),
    io: async (image, commands) => {
      for (const c of commands) if (c.op !== 'read') refuse(a.name, `${c.op}: it is a read-only reader`);
      return viaRaw(image, (raw) => verifyReads(a.name, raw, commands));
    },
    guestSha256: (image) => viaRaw(image, (raw) => sha256File(raw)),
    ...a.extra,
  };
}

/** Capabilities of a tool that is absent: every format it would handle is not applicable, with the reason. */
export function absent(formats: string[], why: string): Capabilities {
  return { formats: {}, protocols: ['file'], notes: Object.fromEntries(formats.map((f) => [f, why])) };
}
