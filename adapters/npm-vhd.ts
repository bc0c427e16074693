/**
 * The npm package `vhd` (0.5.0, Jonas Hermsmeier's node-vhd) as a third-party VHD (qemu's
 * `vpc`) implementation. It opens fixed, dynamic and differencing images and reads fixed and
 * dynamic ones; it writes fixed images in place and, for dynamic ones, only into blocks that
 * are already allocated (allocateSector() is "not implemented"). It creates nothing.
 *
 * The adapter only translates: qemu-io's read/write become Image#read/Image#write with the
 * same offset and length (one call per command, as a user of the package would make it), and
 * the guest's hash comes from the package's own ReadStream. Zero writes and discards have no
 * counterpart and are refused.
 */
import { ImplError, type Adapter, type Capabilities, type ImageInfo, type ImageRef, type IoCommand } from './adapter.js';
import { formatOf, installedVersion, loadPackage, refuser, sha256Hasher, unavailableAdapter, verifyPattern, refusedOperations } from './npm-common.js';

const NAME = 'vhd';
const PKG = 'vhd';

interface VhdImage {
  footer: { diskType: number; currentSize: bigint };
  /** the dynamic disk header (null for a fixed image); the package calls its Block Size field sectorSize */
  header: { sectorSize: number } | null;
  /** the package's size of the disk in bytes */
  readonly size: number | bigint;
  open(cb: (err: Error | null) => void): void;
  read(buf: Buffer, off: number, len: number, pos: number, cb: (err: Error | null, n: number) => void): void;
  write(buf: Buffer, off: number, len: number, pos: number, cb: (err: Error | null, n: number) => void): void;
  close(cb: (err: Error | null) => void): void;
  createReadStream(opts?: object): NodeJS.ReadableStream;
}
interface VhdModule {
  Image: new (opts: { path: string; flags: string }) => VhdImage;
}

function wrap(err: unknown): ImplError {
  if (err instanceof ImplError) return err;
  return new ImplError(`vhd: ${(err as Error)?.message ?? String(err)}`, 1, NAME);
}

export async function createVhdAdapter(): Promise<Adapter> {
  const loaded = await loadPackage<{ default: VhdModule }>(PKG);
  if (!('mod' in loaded)) return unavailableAdapter(NAME, ['vpc'], loaded.why);
  const VHD = loaded.mod.default;
  const version = installedVersion(PKG) ?? 'unknown';
  const capabilities: Capabilities = {
    formats: { vpc: ['read', 'write', 'info'] },
    // what the package's source implements per disk type (dynamic writes: see notes)
    subformats: { vpc: { fixed: ['read', 'write', 'info'], dynamic: ['read', 'info'], differencing: ['info'] } },
    // the package writes data only: no write of zeroes, no discard
    writeCommands: { vpc: [] },
    protocols: ['file'],
    probes: false,
    notes: {
      vpc: `npm vhd ${version}: reads fixed and dynamic images (differencing: "_readDiff() not implemented"); writes fixed images, and dynamic ones only into allocated blocks; info is the opened image's size and block size; no create, check, map, convert, zero or discard`,
    },
    infoFields: { vpc: ['filename', 'format', 'virtual-size', 'cluster-size'] },
  };
  const refuse = refuser(`npm vhd ${version}`);

  async function open(image: ImageRef, write: boolean): Promise<VhdImage> {
    formatOf(NAME, image, ['vpc']);
    const im = new VHD.Image({ path: image.filename, flags: write ? 'r+' : 'r' });
    try {
      await new Promise<void>((res, rej) => im.open((e) => (e ? rej(wrap(e)) : res())));
    } catch (e) {
      await close(im).catch(() => undefined);
      throw wrap(e);
    }
    return im;
  }
  const close = (im: VhdImage) => new Promise<void>((res) => im.close(() => res()));
  /** one callback call of the package; an exception it throws is its failure too (typed, with its message) */
  const call = (fn: (cb: (e: Error | null) => void) => void) =>
    new Promise<void>((res, rej) => {
      try {
        fn((e) => (e ? rej(wrap(e)) : res()));
      } catch (e) {
        rej(wrap(e));
      }
    });

  return {
    name: NAME,
    version: `${PKG} ${version}`,
    capabilities,
    ...refusedOperations(refuse),
    /** What the opened Image tells: its size, and the block size of a dynamic header (qemu's cluster-size). */
    async info(image: ImageRef): Promise<ImageInfo> {
      const im = await open(image, false);
      try {
        return {
          filename: image.filename,
          format: 'vpc',
          'virtual-size': Number(im.size),
          ...(im.header ? { 'cluster-size': im.header.sectorSize } : {}),
        };
      } finally {
        await close(im);
      }
    },
    async io(image: ImageRef, commands: IoCommand[]): Promise<void> {
      for (const c of commands) if (c.op !== 'read' && c.op !== 'write') refuse(c.op === 'crash' ? 'abort' : `${c.op} (only read and write)`);
      const im = await open(image, commands.some((c) => c.op === 'write'));
      try {
        for (const c of commands) {
          if (c.op === 'read') {
            const buf = Buffer.alloc(c.length);
            await call((cb) => im.read(buf, 0, c.length, c.offset, cb));
            verifyPattern(NAME, buf, c.offset, c.pattern);
          } else if (c.op === 'write') {
            const buf = Buffer.alloc(c.length, c.pattern);
            await call((cb) => im.write(buf, 0, c.length, c.offset, cb));
          }
        }
      } finally {
        await close(im);
      }
    },
    async guestSha256(image: ImageRef): Promise<string> {
      const im = await open(image, false);
      try {
        const h = sha256Hasher();
        await new Promise<void>((res, rej) => {
          const s = im.createReadStream();
          s.on('data', (chunk: Buffer) => h.update(chunk));
          s.on('end', () => res());
          s.on('error', (e: Error) => rej(wrap(e)));
        });
        return h.digest('hex');
      } finally {
        await close(im);
      }
    },
  };
}
