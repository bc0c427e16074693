/**
 * libyal's readers (libqcow, libvmdk, libvhdi) through their Debian Python bindings
 * (python3-libqcow, python3-libvmdk, python3-libvhdi), as a third-party implementation
 * to compare with QEMU. They read images and do nothing else, so the adapter declares
 * `read` for the formats whose library imports, and the suite runs just the scenarios
 * and corpus checks that need only reading (guest sha256, qemu-io style verified reads).
 *
 * The bindings load only under Debian's /usr/bin/python3 (another python3 on PATH, such
 * as pyenv's, lacks them). On a machine without them every format is not applicable,
 * with the reason, and nothing fails.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ImplError, type Adapter, type Capabilities, type ImageRef, type IoCommand, type Operation } from './adapter.js';
import { passphraseFile, withTemp } from './tools/common.js';

const PYTHON = '/usr/bin/python3';
const READER = fileURLToPath(new URL('../../adapters/libyal/reader.py', import.meta.url));

/** format -> binding module, as reader.py opens them */
const FORMATS: Record<string, string> = { qcow: 'pyqcow', qcow2: 'pyqcow', vmdk: 'pyvmdk', vpc: 'pyvhdi', vhdx: 'pyvhdi' };
const PACKAGE_OF: Record<string, string> = { pyqcow: 'python3-libqcow', pyvmdk: 'python3-libvmdk', pyvhdi: 'python3-libvhdi' };

async function reader(args: string[], input?: string): Promise<Record<string, unknown>> {
  const r = await execa(PYTHON, [READER, ...args], { input, reject: false, timeout: 60_000, maxBuffer: 1 << 20 });
  let out: Record<string, unknown>;
  try {
    out = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    throw new ImplError(`libyal reader gave no result (exit ${r.exitCode ?? r.signal}): ${(r.stderr || r.stdout).slice(0, 400)}`, r.exitCode ?? 1, 'libyal');
  }
  if (typeof out.error === 'string') throw new ImplError(out.error, r.exitCode ?? 1, 'libyal');
  return out;
}

async function probe(): Promise<{ libs: Map<string, string>; why?: string }> {
  if (!existsSync(PYTHON)) return { libs: new Map(), why: `${PYTHON} is missing (the bindings are Debian packages for it)` };
  try {
    const out = await reader(['probe']);
    return { libs: new Map((out.libraries as [string, string][]) ?? []) };
  } catch (e) {
    return { libs: new Map(), why: (e as Error).message };
  }
}

function refuse(op: string): never {
  throw new ImplError(`libyal reads images only: it has no ${op}`, 1, 'libyal');
}

/**
 * Runs the reader on `image`; an image opened with a key secret gets its passphrase through a
 * private file (mode 0600, removed after), never on a command line: libqcow's set_password
 * decrypts qcow's and qcow2's legacy AES.
 */
async function readImage(mode: string, image: ImageRef, input?: string): Promise<Record<string, unknown>> {
  const args = [mode, formatOf(image), image.filename];
  if (!image.keySecret) return reader(args, input);
  return withTemp('libyal', async (dir) => reader([...args, await passphraseFile('libyal', image, dir)], input));
}

function formatOf(image: ImageRef): string {
  if (image.imageOpts) throw new ImplError('libyal takes a file name and a format, not an option list', 1, 'libyal');
  if (!image.format) throw new ImplError('libyal does not probe: a format is needed', 1, 'libyal');
  return image.format;
}

export async function createLibyalAdapter(): Promise<Adapter> {
  const { libs, why } = await probe();
  const formats: Record<string, Operation[]> = {};
  const notes: Record<string, string> = {};
  for (const [fmt, mod] of Object.entries(FORMATS)) {
    if (libs.has(mod)) formats[fmt] = ['read'];
    else notes[fmt] = why ?? `${mod} does not import under ${PYTHON} (Debian package ${PACKAGE_OF[mod]})`;
  }
  const capabilities: Capabilities = { formats, protocols: ['file'], notes, probes: false };
  const versions = [...libs].map(([m, v]) => `${m} ${v}`).join(', ');
  return {
    name: 'libyal',
    version: versions ? `libyal (${versions})` : 'libyal (absent)',
    capabilities,
    create: async () => refuse('create'),
    info: async () => refuse('info'),
    check: async () => refuse('check'),
    map: async () => refuse('map'),
    measure: async () => refuse('measure'),
    convert: async () => refuse('convert'),
    compare: async () => refuse('compare'),
    async io(image: ImageRef, commands: IoCommand[]): Promise<void> {
      const reads: [number, number, number][] = [];
      for (const c of commands) {
        if (c.op !== 'read') refuse(`${c.op} (libyal ${versions})`);
        reads.push([c.offset, c.length, c.pattern]);
      }
      const out = await readImage('verify', image, JSON.stringify(reads));
      const m = out.mismatch as { offset: number; found: number; expected: number } | undefined;
      if (m) throw new ImplError(`Pattern verification failed at offset ${m.offset}: 0x${m.found.toString(16)} read, 0x${m.expected.toString(16)} expected`, 1, 'libyal');
    },
    async guestSha256(image: ImageRef): Promise<string> {
      const out = await readImage('sha256', image);
      return String(out.sha256);
    },
  };
}
