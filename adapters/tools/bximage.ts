/**
 * Bochs' bximage (Debian package bximage, 2.7) as a third-party implementation. Its convert
 * function reads flat (raw), growing (bochs), vpc and vmware4 (monolithic sparse vmdk) disks,
 * detecting the input's mode itself, and writes any of them. The adapter declares:
 *   - read for raw, bochs, vpc and vmdk: the guest bytes are those of bximage's conversion to a
 *     flat image;
 *   - convert to those four formats (-imgmode=flat|growing|vpc|vmware4), with no -o options,
 *     compression, backing file or existing target, which bximage has no way to express.
 * Not declared: create (bximage makes disks only in whole MiB of at least 10 MiB and takes no
 * creation options; the notes say so), and every other qemu-img operation.
 */
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ImplError, type Adapter, type ConvertRequest, type Operation } from '../adapter.js';
import { absent, plainFile, rawReaderAdapter, runTool, toolVersion, which, withTemp } from './common.js';

const MODE: Record<string, string> = { raw: 'flat', bochs: 'growing', vpc: 'vpc', vmdk: 'vmware4' };
const FORMATS = Object.keys(MODE);
const NAME = 'bximage';

export async function createBximageAdapter(): Promise<Adapter> {
  const bin = which('bximage');
  if (!bin) return rawReaderAdapter({ name: NAME, version: 'absent', capabilities: absent(FORMATS, 'bximage is not installed (Debian package bximage)'), formats: FORMATS, toRaw: async () => undefined });
  const version = await toolVersion('bximage');
  // -q: no prompts (an answer it would need is an error instead)
  const convertTo = (src: string, mode: string, out: string) => runTool(NAME, bin, ['-func=convert', `-imgmode=${mode}`, '-q', src, out]);

  async function convert(req: ConvertRequest): Promise<void> {
    const src = plainFile(NAME, req.source, FORMATS);
    const mode = MODE[req.target.format];
    if (!mode) throw new ImplError(`bximage cannot write the ${req.target.format} format`, 1, NAME);
    if (req.options) throw new ImplError(`bximage takes no creation options (-o ${req.options})`, 1, NAME);
    if (req.compress) throw new ImplError('bximage cannot compress (-c)', 1, NAME);
    if (req.noCreate) throw new ImplError('bximage cannot convert into an existing image (-n)', 1, NAME);
    if (req.backingFile) throw new ImplError('bximage images have no backing file (-B)', 1, NAME);
    if (req.target.imageOpts) throw new ImplError('bximage takes a file name, not an option list', 1, NAME);
    // written beside the target and renamed when complete: a failed conversion leaves no half image
    await withTemp(NAME, async (dir) => {
      const part = join(dir, 'target');
      await convertTo(src, mode, part);
      await rm(req.target.filename, { force: true });
      try {
        await rename(part, req.target.filename);
      } catch {
        // another file system: bximage writes the target itself, then the partial one is removed
        await convertTo(src, mode, req.target.filename).catch(async (e) => {
          await rm(req.target.filename, { force: true });
          throw e;
        });
      }
    });
  }

  const ops: Operation[] = ['read', 'convert'];
  return rawReaderAdapter({
    name: NAME,
    version,
    capabilities: {
      formats: Object.fromEntries(FORMATS.map((f) => [f, [...ops]])),
      protocols: ['file'],
      notes: { qcow2: 'bximage has no qcow2', vdi: 'bximage 2.7 reads no vdi (its vbox mode is for bochs only)' },
    },
    formats: FORMATS,
    toRaw: async (file, _image, out) => void (await convertTo(file, 'flat', out)),
    extra: { convert },
  });
}
