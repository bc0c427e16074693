/** The spine's cases: raw <-> qcow2 conversion and random reads through qemu-io / qbc io. */
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QBC_IMG, QBC_IO, type CaseGroup } from './case.js';

export const coreCases: CaseGroup = async (ctx) => {
  const out = path.join(ctx.dir, 'out');
  const rm = () => fs.rmSync(out, { force: true });
  const offsets = Array.from({ length: ctx.reads }, () => Math.floor(Math.random() * (ctx.size / 4096)) * 4096);
  const script = offsets.map((o) => `read -q ${o} 4k`).join('\n') + '\n';
  return [
    {
      name: 'convert qcow2 -> raw',
      qemu: async () => { await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', ctx.qcow2, out]); },
      reference: async () => { await execa(QBC_IMG, ['convert', '-f', 'qcow2', '-O', 'raw', ctx.qcow2, out]); },
      cleanup: rm,
    },
    {
      name: 'convert raw -> qcow2',
      qemu: async () => { await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ctx.raw, out]); },
      reference: async () => { await execa(QBC_IMG, ['convert', '-f', 'raw', '-O', 'qcow2', ctx.raw, out]); },
      cleanup: rm,
    },
    {
      name: `${ctx.reads} random 4 KiB reads`,
      qemu: async () => { await execa('qemu-io', ['-r', '-f', 'qcow2', ctx.qcow2], { input: script }); },
      reference: async () => { await execa(QBC_IO, ['-r', '-f', 'qcow2', ctx.qcow2], { input: script }); },
    },
  ];
};
