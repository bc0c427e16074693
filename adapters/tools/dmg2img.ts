/**
 * dmg2img (Debian package dmg2img) as a third-party DMG reader: it turns a UDIF image into
 * the raw disk, which is all it does, so the adapter declares `read` for dmg only. The
 * guest bytes judged are those dmg2img wrote; every other operation is refused by name.
 */
import { rawReaderAdapter, absent, runTool, toolVersion, which } from './common.js';
import type { Adapter } from '../adapter.js';

export async function createDmg2imgAdapter(): Promise<Adapter> {
  const bin = which('dmg2img');
  if (!bin) return rawReaderAdapter({ name: 'dmg2img', version: 'absent', capabilities: absent(['dmg'], 'dmg2img is not installed (Debian package dmg2img)'), formats: ['dmg'], toRaw: async () => undefined });
  const version = await toolVersion('dmg2img', bin, [], /v(\d[\d.]*)/);
  return rawReaderAdapter({
    name: 'dmg2img',
    version,
    capabilities: { formats: { dmg: ['read'] }, protocols: ['file'] },
    formats: ['dmg'],
    // -s: silent; input and output named with -i/-o so a file name starting with '-' is no option
    toRaw: async (file, _image, out) => void (await runTool('dmg2img', bin, ['-s', '-i', file, '-o', out])),
  });
}
