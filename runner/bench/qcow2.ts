/**
 * qcow2 verbs of issue 3: commit of a 256 MiB overlay into its (empty) backing
 * file, and convert -c of the shared raw fixture (1 GiB, half full) with zlib
 * and with zstd. Commit's fixtures are copied afresh before every timed run
 * (untimed, in the cleanup); convert's target is removed.
 */
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QBC_IMG, type Case, type CaseGroup } from './case.js';

const OVERLAY = 256 * 1024 * 1024;

export const qcow2Cases: CaseGroup = async (ctx) => {
  const base0 = path.join(ctx.dir, 'commit-base0.qcow2');
  const top0 = path.join(ctx.dir, 'commit-top0.qcow2');
  const base = path.join(ctx.dir, 'commit-base.qcow2');
  const top = path.join(ctx.dir, 'commit-top.qcow2');
  const out = path.join(ctx.dir, 'qcow2-compressed.qcow2');
  // the overlay names the working copy of the base, so fresh copies of both pair up
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', base, String(ctx.size)]);
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', path.basename(base), '-F', 'qcow2', top0]);
  // the overlay's 256 MiB in 4 MiB writes, alternating patterns
  const cmds: string[] = [];
  for (let off = 0; off < Math.min(OVERLAY, ctx.size); off += 4 * 1024 * 1024) cmds.push('-c', `write -P ${0x40 + ((off >> 22) & 0x3f)} ${off} 4M`);
  await execa('qemu-io', ['-f', 'qcow2', ...cmds, top0]);
  fs.copyFileSync(base, base0);
  const fresh = () => {
    fs.rmSync(base, { force: true });
    fs.rmSync(top, { force: true });
    fs.copyFileSync(base0, base);
    fs.copyFileSync(top0, top);
  };
  const removeOut = () => fs.rmSync(out, { force: true });
  const compressed = (type: string): Case => ({
    name: `qcow2 convert -c ${type} (1 GiB raw, half full)`,
    qemu: async () => { await execa('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `compression_type=${type}`, ctx.raw, out]); },
    reference: async () => { await execa(QBC_IMG, ['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `compression_type=${type}`, ctx.raw, out]); },
    cleanup: removeOut,
  });
  const cases: Case[] = [
    {
      name: 'qcow2 commit (256 MiB overlay)',
      qemu: async () => { await execa('qemu-img', ['commit', '-q', top]); },
      reference: async () => { await execa(QBC_IMG, ['commit', '-q', top]); },
      cleanup: fresh,
    },
    compressed('zlib'),
    compressed('zstd'),
  ];
  return cases;
};
