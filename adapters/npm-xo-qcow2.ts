/**
 * @xen-orchestra/qcow2 (1.3.1, Vates' qcow2 reader/producer used by Xen Orchestra) as a
 * third-party qcow2 implementation. QCowAccessor parses the header and the L1/L2 tables and
 * hands out whole clusters (readBlock) with hasBlock() telling which are allocated; the adapter
 * assembles qemu-io's reads and the guest hash from those clusters, unallocated ones reading as
 * zeroes (the package's disk model). A differencing image (one with a backing file) is refused:
 * the package leaves opening the parent to its caller, and this adapter builds no chains.
 *
 * As published, 1.3.1 imports @vates/read-chunk without declaring it; qbc's package.json
 * declares it (exact version), so `npm ci` makes the package load.
 */
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { ImplError, type Adapter, type Capabilities, type ImageRef, type IoCommand } from './adapter.js';
import { formatOf, installedVersion, loadPackage, refuser, sha256Hasher, unavailableAdapter, verifyPattern, refusedOperations } from './npm-common.js';

const NAME = 'xo-qcow2';
const PKG = '@xen-orchestra/qcow2';

interface QcowDisk {
  init(): Promise<void>;
  close(): Promise<void> | false;
  getVirtualSize(): number;
  getBlockSize(): number;
  isDifferencing(): boolean;
  hasBlock(index: number): boolean;
  readBlock(index: number): Promise<{ index: number; data: Buffer }>;
}
interface XoQcow2Module {
  QCowAccessor: new (accessor: object, path: string) => QcowDisk;
}

/** The part of disk-transform's FileAccessor that QCowAccessor uses, on node:fs. */
function localAccessor() {
  const unsupported = async () => {
    throw new Error('not used by the qbc adapter');
  };
  return {
    isEncrypted: false,
    async openFile(path: string) {
      return openSync(path, 'r');
    },
    async closeFile(fd: number) {
      closeSync(fd);
    },
    async read(fd: number, buffer: Buffer, position: number) {
      const bytesRead = readSync(fd, buffer, 0, buffer.length, position);
      return { bytesRead, buffer };
    },
    async getSize(path: string) {
      const fd = openSync(path, 'r');
      try {
        return fstatSync(fd).size;
      } finally {
        closeSync(fd);
      }
    },
    list: unsupported,
    readFile: unsupported,
    writeFile: unsupported,
    mktree: unsupported,
    rmtree: unsupported,
    unlink: unsupported,
    outputStream: unsupported,
    rename: unsupported,
  };
}

function wrap(err: unknown): ImplError {
  if (err instanceof ImplError) return err;
  return new ImplError(`xo-qcow2: ${(err as Error)?.message ?? String(err)}`, 1, NAME);
}

export async function createXoQcow2Adapter(): Promise<Adapter> {
  const loaded = await loadPackage<XoQcow2Module>(PKG);
  if (!('mod' in loaded)) return unavailableAdapter(NAME, ['qcow2'], `${loaded.why}; its dist imports @vates/read-chunk, which it does not declare: run \`npm ci\` (qbc's package.json declares it)`);
  const { QCowAccessor } = loaded.mod;
  const version = installedVersion(PKG) ?? 'unknown';
  const capabilities: Capabilities = {
    formats: { qcow2: ['read'] },
    protocols: ['file'],
    probes: false,
    notes: {
      qcow2: `@xen-orchestra/qcow2 ${version}: reads clusters through its L1/L2 tables; no backing files, no writes to an image (it produces qcow2 streams from Xen disks only), no info/check/map`,
    },
  };
  const refuse = refuser(`@xen-orchestra/qcow2 ${version}`);

  async function withDisk<T>(image: ImageRef, fn: (d: QcowDisk) => Promise<T>): Promise<T> {
    formatOf(NAME, image, ['qcow2']);
    const disk = new QCowAccessor(localAccessor(), image.filename);
    try {
      await disk.init();
      if (disk.isDifferencing()) throw new ImplError('xo-qcow2: the image has a backing file, and QCowAccessor does not open parents', 1, NAME);
      return await fn(disk);
    } catch (e) {
      throw wrap(e);
    } finally {
      await disk.close();
    }
  }

  /** The guest bytes [offset, offset+length) from whole clusters; calls `sink` per piece. */
  async function readRange(d: QcowDisk, offset: number, length: number, sink: (piece: Buffer, at: number) => void): Promise<void> {
    const cs = d.getBlockSize();
    const size = d.getVirtualSize();
    if (offset + length > size) throw new ImplError(`xo-qcow2: read of ${length} bytes at ${offset} is past the end of the ${size}-byte disk`, 1, NAME);
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const index = Math.floor(pos / cs);
      const lo = pos - index * cs;
      const hi = Math.min(cs, end - index * cs);
      const data = d.hasBlock(index) ? (await d.readBlock(index)).data : Buffer.alloc(cs);
      sink(data.subarray(lo, hi), pos);
      pos += hi - lo;
    }
  }

  return {
    name: NAME,
    version: `${PKG} ${version}`,
    capabilities,
    ...refusedOperations(refuse),
    async io(image: ImageRef, commands: IoCommand[]): Promise<void> {
      for (const c of commands) if (c.op !== 'read') refuse(c.op === 'crash' ? 'abort' : `${c.op} (it reads qcow2 images only)`);
      await withDisk(image, async (d) => {
        for (const c of commands) {
          if (c.op !== 'read') continue;
          await readRange(d, c.offset, c.length, (piece, at) => verifyPattern(NAME, piece, at, c.pattern));
        }
      });
    },
    async guestSha256(image: ImageRef): Promise<string> {
      return withDisk(image, async (d) => {
        const h = sha256Hasher();
        await readRange(d, 0, d.getVirtualSize(), (piece) => h.update(piece));
        return h.digest('hex');
      });
    },
  };
}
