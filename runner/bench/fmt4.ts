/**
 * qed, qcow, vdi and parallels (issue 4): convert raw -> format and format -> raw
 * (1 GiB half full), and random 4 KiB reads through qemu-io / qbc io, per format.
 */
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QBC_IMG, QBC_IO, type Case, type CaseGroup } from './case.js';

const FORMATS = ['qed', 'qcow', 'vdi', 'parallels'] as const;

export const fmt4Cases: CaseGroup = async (ctx) => {
  const out = path.join(ctx.dir, 'fmt4-out');
  const rm = () => fs.rmSync(out, { force: true });
  const offsets = Array.from({ length: ctx.reads }, () => Math.floor(Math.random() * (ctx.size / 4096)) * 4096);
  const script = offsets.map((o) => `read -q ${o} 4k`).join('\n') + '\n';
  const cases: Case[] = [];
  for (const format of FORMATS) {
    // The source of format -> raw and of the reads, made once (untimed) by qemu-img from the shared raw fixture.
    const source = path.join(ctx.dir, `fmt4-source.${format}`);
    await execa('qemu-img', ['convert', '-f', 'raw', '-O', format, ctx.raw, source]);
    const toFormat = ['convert', '-f', 'raw', '-O', format, ctx.raw, out];
    const toRaw = ['convert', '-f', format, '-O', 'raw', source, out];
    const read = ['-r', '-f', format, source];
    cases.push(
      {
        name: `convert raw -> ${format}`,
        qemu: async () => { await execa('qemu-img', toFormat); },
        reference: async () => { await execa(QBC_IMG, toFormat); },
        cleanup: rm,
      },
      {
        name: `convert ${format} -> raw`,
        qemu: async () => { await execa('qemu-img', toRaw); },
        reference: async () => { await execa(QBC_IMG, toRaw); },
        cleanup: rm,
      },
      {
        name: `${ctx.reads} random 4 KiB reads of ${format}`,
        qemu: async () => { await execa('qemu-io', read, { input: script }); },
        reference: async () => { await execa(QBC_IO, read, { input: script }); },
      },
    );
  }
  return cases;
};
