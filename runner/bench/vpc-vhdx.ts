/** vpc and vhdx (issue 5): convert raw -> format and format -> raw, dynamic and fixed, 1 GiB half full. */
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QBC_IMG, type Case, type CaseGroup } from './case.js';

const VARIANTS: Array<{ format: 'vpc' | 'vhdx'; label: string; options: string }> = [
  { format: 'vpc', label: 'vpc dynamic', options: 'subformat=dynamic' },
  { format: 'vpc', label: 'vpc fixed', options: 'subformat=fixed' },
  { format: 'vhdx', label: 'vhdx dynamic', options: 'subformat=dynamic' },
  { format: 'vhdx', label: 'vhdx fixed', options: 'subformat=fixed' },
];

export const vpcVhdxCases: CaseGroup = async (ctx) => {
  const out = path.join(ctx.dir, 'vpc-vhdx-out');
  const rm = () => fs.rmSync(out, { force: true });
  const cases: Case[] = [];
  for (const v of VARIANTS) {
    // The source of format -> raw, made once (untimed) by qemu-img from the shared raw fixture.
    const source = path.join(ctx.dir, `source-${v.label.replace(' ', '-')}.${v.format}`);
    await execa('qemu-img', ['convert', '-f', 'raw', '-O', v.format, '-o', v.options, ctx.raw, source]);
    const toFormat = ['convert', '-f', 'raw', '-O', v.format, '-o', v.options, ctx.raw, out];
    const toRaw = ['convert', '-f', v.format, '-O', 'raw', source, out];
    cases.push(
      {
        name: `convert raw -> ${v.label}`,
        qemu: async () => { await execa('qemu-img', toFormat); },
        reference: async () => { await execa(QBC_IMG, toFormat); },
        cleanup: rm,
      },
      {
        name: `convert ${v.label} -> raw`,
        qemu: async () => { await execa('qemu-img', toRaw); },
        reference: async () => { await execa(QBC_IMG, toRaw); },
        cleanup: rm,
      },
    );
  }
  return cases;
};
