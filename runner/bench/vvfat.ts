/**
 * vvfat (issue 8): qemu-img convert of the 200-file tree (fat:DIR, a 504 MiB
 * FAT16 disk) to raw, qemu-img against bin/qbc-img. The tree is made once
 * (untimed) in the run's scratch directory.
 */
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QBC_IMG, type CaseGroup } from './case.js';
import { makeTree } from '../../step_definitions/support/vvfat-tree.js';

export const vvfatCases: CaseGroup = async (ctx) => {
  const tree = path.join(ctx.dir, 'vvfat-tree');
  makeTree(tree, 200);
  const out = path.join(ctx.dir, 'vvfat-out.raw');
  const args = ['convert', `fat:${tree}`, '-O', 'raw', out];
  return [
    { name: 'convert fat:DIR (200 files) -> raw', qemu: async () => { await execa('qemu-img', args); }, reference: async () => { await execa(QBC_IMG, args); }, cleanup: () => fs.rmSync(out, { force: true }) },
  ];
};
