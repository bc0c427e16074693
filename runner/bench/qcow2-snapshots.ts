/**
 * qcow2 internal snapshots (issue 3): snapshot create and apply on a 1 GiB image
 * with 4096 allocated clusters (64 KiB every 256 KiB). Every timed run starts
 * from a fresh copy of the fixture, made in the cleanup (untimed).
 */
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QBC_IMG, type Case, type CaseGroup } from './case.js';

export const qcow2SnapshotCases: CaseGroup = async (ctx) => {
  const base = path.join(ctx.dir, 'snap-base.qcow2');
  const withSnap = path.join(ctx.dir, 'snap-with.qcow2');
  const work = path.join(ctx.dir, 'snap-work.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', base, String(ctx.size)]);
  const stride = Math.max(65536, Math.floor(ctx.size / 4096 / 65536) * 65536);
  const cmds: string[] = [];
  for (let off = 0; off + 65536 <= ctx.size && cmds.length < 4096; off += stride) cmds.push('-c', `write -P 0x5a ${off} 64k`);
  await execa('qemu-io', ['-f', 'qcow2', ...cmds, base]);
  fs.copyFileSync(base, withSnap);
  await execa('qemu-img', ['snapshot', '-c', 's', withSnap]);
  await execa('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5b 0 ${Math.min(ctx.size, 64 * 1024 * 1024)}`, withSnap]);
  const fresh = (from: string) => () => {
    fs.rmSync(work, { force: true });
    fs.copyFileSync(from, work);
  };
  const cases: Case[] = [
    {
      name: 'qcow2 snapshot -c (4096 clusters)',
      qemu: async () => { await execa('qemu-img', ['snapshot', '-c', 'new', work]); },
      reference: async () => { await execa(QBC_IMG, ['snapshot', '-c', 'new', work]); },
      cleanup: fresh(base),
    },
    {
      name: 'qcow2 snapshot -a (4096 clusters)',
      qemu: async () => { await execa('qemu-img', ['snapshot', '-a', 's', work]); },
      reference: async () => { await execa(QBC_IMG, ['snapshot', '-a', 's', work]); },
      cleanup: fresh(withSnap),
    },
  ];
  return cases;
};
