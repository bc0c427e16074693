/**
 * @balena/udif (1.1.2, balena Etcher's DMG reader) as a third-party DMG implementation. It
 * opens an image, reads the koly footer and the blkx tables, and streams the guest's bytes
 * (zero, raw, ADC, zlib and bzip2 chunks). It has no random access, so a qemu-io read is
 * checked from the package's own stream; it writes nothing. Its info is the one figure the
 * package gives of the image as a whole, getUncompressedSize() (the blkx chunks' sectors).
 */
import { type Adapter, type Capabilities, type ImageInfo, type ImageRef, type IoCommand } from './adapter.js';
import { ImplError } from './adapter.js';
import { formatOf, installedVersion, loadPackage, refuser, sha256Hasher, unavailableAdapter, verifyReadsFromStream, refusedOperations } from './npm-common.js';

const NAME = 'udif';
const PKG = '@balena/udif';

interface UdifImage {
  createReadStream(end?: number): Promise<AsyncIterable<Buffer> & NodeJS.ReadableStream>;
  getUncompressedSize(): Promise<number>;
}
interface UdifModule {
  withOpenImage<T>(path: string, fn: (image: UdifImage) => Promise<T>): Promise<T>;
}

function wrap(err: unknown): ImplError {
  if (err instanceof ImplError) return err;
  return new ImplError(`udif: ${(err as Error)?.message ?? String(err)}`, 1, NAME);
}

export async function createUdifAdapter(): Promise<Adapter> {
  const loaded = await loadPackage<Partial<UdifModule> & { default?: UdifModule }>(PKG);
  if (!('mod' in loaded)) return unavailableAdapter(NAME, ['dmg'], loaded.why);
  const UDIF = (loaded.mod.withOpenImage ? loaded.mod : loaded.mod.default!) as UdifModule;
  const version = installedVersion(PKG) ?? 'unknown';
  const capabilities: Capabilities = {
    formats: { dmg: ['read', 'info'] },
    protocols: ['file'],
    probes: false,
    // getUncompressedSize() is all the package says about the image as a whole
    infoFields: { dmg: ['filename', 'format', 'virtual-size'] },
    notes: { dmg: `@balena/udif ${version}: streaming reads only (no random access, no writes); info is the guest size the blkx tables add up to` },
  };
  const refuse = refuser(`@balena/udif ${version}`);

  async function withImage<T>(image: ImageRef, fn: (im: UdifImage) => Promise<T>): Promise<T> {
    formatOf(NAME, image, ['dmg']);
    try {
      return await UDIF.withOpenImage(image.filename, fn);
    } catch (e) {
      throw wrap(e);
    }
  }

  return {
    name: NAME,
    version: `${PKG} ${version}`,
    capabilities,
    ...refusedOperations(refuse),
    async info(image: ImageRef): Promise<ImageInfo> {
      const size = await withImage(image, (im) => im.getUncompressedSize());
      return { filename: image.filename, format: 'dmg', 'virtual-size': size };
    },
    async io(image: ImageRef, commands: IoCommand[]): Promise<void> {
      const reads: { offset: number; length: number; pattern: number }[] = [];
      for (const c of commands) {
        if (c.op !== 'read') refuse(c.op === 'crash' ? 'abort' : `${c.op}: it is a read-only DMG reader`);
        else reads.push(c);
      }
      await withImage(image, async (im) => verifyReadsFromStream(NAME, await im.createReadStream(), reads));
    },
    async guestSha256(image: ImageRef): Promise<string> {
      return withImage(image, async (im) => {
        const h = sha256Hasher();
        for await (const chunk of await im.createReadStream()) h.update(chunk as Buffer);
        return h.digest('hex');
      });
    },
  };
}
