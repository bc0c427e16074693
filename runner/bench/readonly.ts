/**
 * Read-only formats (issue 7): a cloop image and a zlib dmg of the shared raw fixture
 * (1 GiB, half random, unless --size-gib) converted to raw, qemu-img against qbc img.
 * The sources are made once, untimed: cloop by create_compressed_fs (64 KiB blocks,
 * level 1), dmg by the UDIF fixture writer (zlib chunks of 256 sectors).
 */
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeUdifFile } from '../fixtures/udif-writer.js';
import { QBC_IMG, type Case, type CaseGroup } from './case.js';

export const readonlyCases: CaseGroup = async (ctx) => {
  const out = path.join(ctx.dir, 'readonly-out.raw');
  const rm = () => fs.rmSync(out, { force: true });
  const cloop = path.join(ctx.dir, 'source.cloop');
  await execa('create_compressed_fs', ['-q', '-B', '65536', '-L', '1', ctx.raw, cloop], { stdout: 'ignore', stderr: 'ignore' });
  const dmg = path.join(ctx.dir, 'source.dmg');
  writeUdifFile(ctx.raw, dmg, { layout: 'zlib', chunkSectors: 256, parts: 1 });
  const cases: Case[] = [];
  for (const [format, file] of [['cloop', cloop], ['dmg', dmg]] as const) {
    const args = ['convert', '-f', format, '-O', 'raw', file, out];
    cases.push({
      name: `convert ${format} (zlib) -> raw`,
      qemu: async () => { await execa('qemu-img', args); },
      reference: async () => { await execa(QBC_IMG, args); },
      cleanup: rm,
    });
  }
  return cases;
};
