/**
 * Xen Orchestra's vhd-lib (VHD, qemu's `vpc`) as a third-party implementation, at 0.7.2.
 *
 * Why 0.7.2: the registry serves 0.4.0, 0.7.2 and 4.15.0, and 4.15.0 does not install as
 * published (its dependency @vates/diff ^0.1.0 is a 404). 0.7.2 is the newest release that
 * installs from package.json alone; qbc pins it rather than stand in code of its own for the
 * missing package (that would test qbc, not vhd-lib).
 *
 * What 0.7.2 offers, and so what the adapter declares (no create: the package's only way to
 * make an image is its import stream, createReadableSparseStream, which takes none of
 * qemu-img's -o options, so a create would be the adapter's choice of settings, not the
 * package's answer to the request):
 *   - read: createContentStream(handler, path) streams the guest bytes of a dynamic image
 *     (its own blocks only: parents are not followed, and a fixed image has no header at 512
 *     for the package to read).
 *   - write: Vhd#writeData(sector, buffer) on a dynamic image, which allocates blocks as needed
 *     and rewrites both footers. It takes whole sectors; a request that is not sector-aligned
 *     is widened to its sectors with the bytes already there (read through the package), as
 *     qemu's block layer does for a driver with 512-byte requests.
 *   - info: what Vhd#readHeaderAndFooter parses, the footer's current size and the dynamic
 *     header's block size (qemu-img's virtual-size and cluster-size); nothing else is shown.
 * The package reaches files through a "handler" (Xen Orchestra's remote file systems); the
 * adapter hands it one over node:fs with the calls the package makes (openFile, read, write,
 * getSize, closeFile), nothing more.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { ImplError, type Adapter, type Capabilities, type ImageInfo, type ImageRef, type IoCommand } from './adapter.js';
import { formatOf, installedVersion, loadPackage, refusedOperations, refuser, sha256Hasher, unavailableAdapter, verifyReadsFromStream } from './npm-common.js';

const NAME = 'vhd-lib';
const PKG = 'vhd-lib';
const SECTOR = 512;

interface VhdInstance {
  footer: { currentSize: number; diskType: number };
  header: { blockSize: number };
  readHeaderAndFooter(checkSecondFooter?: boolean): Promise<void>;
  readBlockAllocationTable(): Promise<void>;
  writeData(offsetSectors: number, buffer: Buffer): Promise<void>;
}
interface VhdLib {
  default: new (handler: Handler, fd: unknown) => VhdInstance;
  createContentStream(handler: Handler, path: string): Readable;
}

/** The file calls vhd-lib 0.7.2 makes of its handler, over node:fs; a "file" is an open FileHandle. */
class FsHandler {
  async openFile(path: string, flags: string): Promise<FileHandle> {
    return open(path, flags);
  }
  async closeFile(fd: FileHandle): Promise<void> {
    await fd.close();
  }
  async read(fd: FileHandle, buffer: Buffer, position: number): Promise<{ bytesRead: number; buffer: Buffer }> {
    const { bytesRead } = await fd.read(buffer, 0, buffer.length, position);
    return { bytesRead, buffer };
  }
  async write(fd: FileHandle, buffer: Buffer, position: number): Promise<void> {
    await fd.write(buffer, 0, buffer.length, position);
  }
  async getSize(fd: FileHandle): Promise<number> {
    return (await fd.stat()).size;
  }
}
type Handler = FsHandler;

function wrap(err: unknown): ImplError {
  if (err instanceof ImplError) return err;
  return new ImplError(`vhd-lib: ${(err as Error)?.message ?? String(err)}`, 1, NAME);
}

async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw wrap(e);
  }
}

export async function createVhdLibAdapter(): Promise<Adapter> {
  // a CommonJS package: import() gives its module.exports as `default`
  const loaded = await loadPackage<{ default: VhdLib }>(PKG);
  if (!('mod' in loaded)) return unavailableAdapter(NAME, ['vpc'], loaded.why);
  const lib = loaded.mod.default;
  const Vhd = lib.default;
  const version = installedVersion(PKG) ?? 'unknown';
  const handler = new FsHandler();
  const capabilities: Capabilities = {
    formats: { vpc: ['read', 'write', 'info'] },
    subformats: { vpc: { fixed: [], dynamic: ['read', 'write', 'info'], differencing: ['info'] } },
    // readHeaderAndFooter's footer and dynamic header: the disk's current size and block size
    infoFields: { vpc: ['filename', 'format', 'virtual-size', 'cluster-size'] },
    // the package writes data only: no write of zeroes, no discard
    writeCommands: { vpc: [] },
    protocols: ['file'],
    probes: false,
    notes: {
      vpc: `vhd-lib ${version}: reads and writes dynamic images (no parents); fixed images have no header for it to read; info is the footer's current size and the header's block size; no create, check, map, convert, zero or discard`,
    },
  };
  const refuse = refuser(`vhd-lib ${version}`);

  /** The guest bytes [offset, offset+length) through the package's content stream (what a partial-sector write keeps). */
  async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    let pos = 0;
    const end = offset + length;
    for await (const chunk of lib.createContentStream(handler, path) as AsyncIterable<Buffer>) {
      const from = Math.max(offset, pos);
      const to = Math.min(end, pos + chunk.length);
      if (from < to) chunk.copy(out, from - offset, from - pos, to - pos);
      pos += chunk.length;
      if (pos >= end) break;
    }
    if (pos < end) throw new ImplError(`vhd-lib: read of ${length} bytes at ${offset} goes past the ${pos}-byte disk`, 1, NAME);
    return out;
  }

  /** Opens the image as the package does for writing: footer, dynamic header, block table. */
  async function withVhd<T>(path: string, flags: string, fn: (vhd: VhdInstance) => Promise<T>): Promise<T> {
    const fd = await handler.openFile(path, flags);
    try {
      const vhd = new Vhd(handler, fd);
      await vhd.readHeaderAndFooter();
      return await fn(vhd);
    } finally {
      await handler.closeFile(fd);
    }
  }

  async function write(path: string, c: { offset: number; length: number; pattern: number }): Promise<void> {
    const first = Math.floor(c.offset / SECTOR) * SECTOR;
    const last = Math.ceil((c.offset + c.length) / SECTOR) * SECTOR;
    const buf = first === c.offset && last === c.offset + c.length ? Buffer.alloc(c.length) : await readRange(path, first, last - first);
    buf.fill(c.pattern, c.offset - first, c.offset - first + c.length);
    await withVhd(path, 'r+', async (vhd) => {
      await vhd.readBlockAllocationTable();
      if (c.offset + c.length > vhd.footer.currentSize) throw new ImplError(`vhd-lib: write past the ${vhd.footer.currentSize}-byte disk`, 1, NAME);
      await vhd.writeData(first / SECTOR, buf);
    });
  }

  return {
    name: NAME,
    version: `${PKG} ${version}`,
    capabilities,
    ...refusedOperations(refuse),
    async io(image: ImageRef, commands: IoCommand[]): Promise<void> {
      formatOf(NAME, image, ['vpc']);
      for (const c of commands) if (c.op !== 'read' && c.op !== 'write') refuse(c.op === 'crash' ? 'abort' : `${c.op} (only read and write)`);
      await guarded(async () => {
        // Reads in a row are checked in one pass of the content stream; a write ends the row,
        // since the reads after it must see it.
        let reads: { offset: number; length: number; pattern: number }[] = [];
        const flush = async () => {
          if (reads.length) await verifyReadsFromStream(NAME, lib.createContentStream(handler, image.filename) as AsyncIterable<Buffer>, reads);
          reads = [];
        };
        for (const c of commands) {
          if (c.op === 'read') reads.push(c);
          else if (c.op === 'write') {
            await flush();
            await write(image.filename, c);
          }
        }
        await flush();
      });
    },
    async info(image: ImageRef): Promise<ImageInfo> {
      formatOf(NAME, image, ['vpc']);
      return guarded(() => withVhd(image.filename, 'r', async (vhd) => ({
        filename: image.filename,
        format: 'vpc',
        'virtual-size': vhd.footer.currentSize,
        'cluster-size': vhd.header.blockSize,
      })));
    },
    async guestSha256(image: ImageRef): Promise<string> {
      formatOf(NAME, image, ['vpc']);
      return guarded(async () => {
        await stat(image.filename);
        const h = sha256Hasher();
        for await (const chunk of lib.createContentStream(handler, image.filename) as AsyncIterable<Buffer>) h.update(chunk);
        return h.digest('hex');
      });
    },
  };
}
