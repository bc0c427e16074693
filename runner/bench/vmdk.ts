/**
 * vmdk (issue 5): convert raw -> vmdk and vmdk -> raw for the sparse, flat and
 * stream-optimized subformats, and a sequential read of the whole sparse disk,
 * on the shared 1 GiB half-full raw fixture; qemu-img against bin/qbc-img.
 */
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QBC_IMG, type Case, type CaseGroup } from './case.js';

const VARIANTS: Array<{ label: string; options: string }> = [
  { label: 'monolithicSparse', options: 'subformat=monolithicSparse' },
  { label: 'monolithicFlat', options: 'subformat=monolithicFlat' },
  { label: 'streamOptimized', options: 'subformat=streamOptimized' },
];

export const vmdkCases: CaseGroup = async (ctx) => {
  const out = path.join(ctx.dir, 'vmdk-out.vmdk');
  // a flat target leaves its extent beside the descriptor
  const rm = () => { for (const f of [out, path.join(ctx.dir, 'vmdk-out-flat.vmdk')]) fs.rmSync(f, { force: true }); };
  const cases: Case[] = [];
  for (const v of VARIANTS) {
    // The source of vmdk -> raw, made once (untimed) by qemu-img from the shared raw fixture.
    const source = path.join(ctx.dir, `source-${v.label}.vmdk`);
    await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', v.options, ctx.raw, source]);
    const toVmdk = ['convert', '-f', 'raw', '-O', 'vmdk', '-o', v.options, ctx.raw, out];
    const toRaw = ['convert', '-f', 'vmdk', '-O', 'raw', source, out];
    cases.push(
      { name: `convert raw -> vmdk ${v.label}`, qemu: async () => { await execa('qemu-img', toVmdk); }, reference: async () => { await execa(QBC_IMG, toVmdk); }, cleanup: rm },
      { name: `convert vmdk ${v.label} -> raw`, qemu: async () => { await execa('qemu-img', toRaw); }, reference: async () => { await execa(QBC_IMG, toRaw); }, cleanup: rm },
    );
  }
  // Reading every guest byte through the grain tables: qemu-img compare of the sparse image with its raw source.
  const sparse = path.join(ctx.dir, 'source-monolithicSparse.vmdk');
  const read = ['compare', '-f', 'vmdk', '-F', 'raw', sparse, ctx.raw];
  cases.push({ name: 'read vmdk monolithicSparse (compare with raw)', qemu: async () => { await execa('qemu-img', read); }, reference: async () => { await execa(QBC_IMG, read); } });
  return cases;
};
