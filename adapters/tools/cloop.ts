/**
 * cloop-utils' extract_compressed_fs as a third-party cloop reader: it writes the
 * uncompressed disk of a cloop image, so the adapter declares `read` for cloop only.
 */
import { rawReaderAdapter, absent, runTool, toolVersion, which } from './common.js';
import type { Adapter } from '../adapter.js';

export async function createCloopAdapter(): Promise<Adapter> {
  const bin = which('extract_compressed_fs');
  if (!bin) return rawReaderAdapter({ name: 'cloop', version: 'absent', capabilities: absent(['cloop'], 'extract_compressed_fs is not installed (Debian package cloop-utils)'), formats: ['cloop'], toRaw: async () => undefined });
  const version = await toolVersion('cloop-utils');
  return rawReaderAdapter({
    name: 'cloop',
    version,
    capabilities: { formats: { cloop: ['read'] }, protocols: ['file'] },
    formats: ['cloop'],
    toRaw: async (file, _image, out) => void (await runTool('cloop', bin, [file, out])),
  });
}
