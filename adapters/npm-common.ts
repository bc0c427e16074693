/**
 * What the adapters for npm packages share: loading an optional package (its absence is a
 * reason, never an exception), refusing the operations a package does not offer, and
 * hashing a guest's bytes from a stream of chunks.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { ImplError, type Adapter, type Capabilities, type ImageRef, type IoCommand } from './adapter.js';

const require = createRequire(import.meta.url);

/** The installed version of an npm package, or null when it is not installed. */
export function installedVersion(pkg: string): string | null {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    // Packages with an "exports" map may hide package.json; fall back to resolving the entry.
    try {
      require.resolve(pkg);
      return 'unknown';
    } catch {
      return null;
    }
  }
}

/** Imports a package; resolves to the module or to the reason it cannot be loaded. */
export async function loadPackage<T>(pkg: string): Promise<{ mod: T } | { why: string }> {
  try {
    return { mod: (await import(pkg)) as T };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { why: `npm package ${pkg} does not load (${e.code ?? 'error'}: ${String(e.message).split('\n')[0]})` };
  }
}

export function refuser(impl: string) {
  return (op: string): never => {
    throw new ImplError(`${impl} has no ${op}`, 1, impl);
  };
}

/** The Adapter operations a reader-only implementation has none of, each refusing by name. */
export function refusedOperations(refuse: (op: string) => never) {
  return {
    create: async () => refuse('create'),
    info: async () => refuse('info'),
    check: async () => refuse('check'),
    map: async () => refuse('map'),
    measure: async () => refuse('measure'),
    convert: async () => refuse('convert'),
    compare: async () => refuse('compare'),
  };
}

export function formatOf(impl: string, image: ImageRef, accepted: string[]): string {
  if (image.imageOpts) throw new ImplError(`${impl} takes a file name, not an option list`, 1, impl);
  if (!image.format) throw new ImplError(`${impl} does not probe: a format is needed`, 1, impl);
  if (!accepted.includes(image.format)) throw new ImplError(`${impl} does not read ${image.format}`, 1, impl);
  return image.format;
}

/** The first byte of `buf` that differs from `pattern`, as qemu-io's read -P reports it. */
export function verifyPattern(impl: string, buf: Buffer, base: number, pattern: number): void {
  if (pattern < 0) return;
  const i = buf.findIndex((b) => b !== pattern);
  if (i >= 0) {
    throw new ImplError(`Pattern verification failed at offset ${base + i}: 0x${buf[i]!.toString(16)} read, 0x${pattern.toString(16)} expected`, 1, impl);
  }
}

export function sha256Hasher() {
  return createHash('sha256');
}

/**
 * The adapter of a package that cannot be used on this machine: every format is absent,
 * with the reason, so every scenario is not applicable.
 */
export function unavailableAdapter(name: string, formats: string[], why: string): Adapter {
  const notes: Record<string, string> = {};
  for (const f of formats) notes[f] = why;
  const capabilities: Capabilities = { formats: {}, protocols: [], notes };
  const refuse = (): never => {
    throw new ImplError(`${name} is not available: ${why}`, 1, name);
  };
  return {
    name,
    capabilities,
    create: async () => refuse(),
    info: async () => refuse(),
    check: async () => refuse(),
    map: async () => refuse(),
    measure: async () => refuse(),
    convert: async () => refuse(),
    compare: async () => refuse(),
    io: async (_i: ImageRef, _c: IoCommand[]) => refuse(),
    guestSha256: async () => refuse(),
  };
}

/**
 * Checks qemu-io style reads against a stream of the whole guest (for packages that only
 * stream): each chunk is compared with the reads it overlaps and then dropped, so memory is
 * one chunk. A read past the end of the stream fails as a short read.
 */
export async function verifyReadsFromStream(impl: string, stream: AsyncIterable<Buffer>, reads: { offset: number; length: number; pattern: number }[]): Promise<void> {
  const end = Math.max(0, ...reads.map((r) => r.offset + r.length));
  let pos = 0;
  for await (const raw of stream) {
    const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw as Uint8Array);
    for (const r of reads) {
      const lo = Math.max(r.offset, pos);
      const hi = Math.min(r.offset + r.length, pos + chunk.length);
      if (lo < hi) verifyPattern(impl, chunk.subarray(lo - pos, hi - pos), lo, r.pattern);
    }
    pos += chunk.length;
    if (pos >= end) break;
  }
  if (pos < end) throw new ImplError(`${impl}: read past the end of the image (the guest has ${pos} bytes, the read needs ${end})`, 1, impl);
}
