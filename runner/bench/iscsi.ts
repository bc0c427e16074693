/**
 * iSCSI: sequential 256 MiB read and write through a LUN of a private tgtd on
 * 127.0.0.1, the reference's initiator (qbc img convert) against libiscsi's
 * (qemu-img convert), same target, same LUN files. The target is started
 * untimed and stopped when the run ends.
 */
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tgtd } from '../peers/tgtd.js';
import { MiB, QBC_IMG, type CaseGroup } from './case.js';

export const iscsiCases: CaseGroup = async (ctx) => {
  const src = path.join(ctx.dir, 'iscsi-src.raw');
  // the first 256 MiB of the shared half-full fixture: half random, half zero
  await execa('dd', [`if=${ctx.raw}`, `of=${src}`, 'bs=1M', 'count=256', 'conv=sparse', 'status=none']);
  await execa('truncate', ['-s', String(256 * MiB), src]);
  const target = path.join(ctx.dir, 'iscsi-target.raw');
  await execa('truncate', ['-s', String(256 * MiB), target]);
  const tgtd = await Tgtd.start(path.join(ctx.dir, 'tgtd'));
  ctx.atExit(() => tgtd.stop());
  const iqn = 'iqn.2026-12.qbc.bench:lun';
  await tgtd.addTarget({ iqn, luns: [{ lun: 1, file: src }, { lun: 2, file: target }] });
  const readUrl = `iscsi://${tgtd.portal}/${iqn}/1`;
  const writeUrl = `iscsi://${tgtd.portal}/${iqn}/2`;
  const out = path.join(ctx.dir, 'iscsi-out.raw');
  const rm = () => fs.rmSync(out, { force: true });
  const convert = (bin: string, args: string[]) => async () => { await execa(bin, ['convert', ...args]); };
  return [
    {
      name: 'read 256 MiB from a tgtd LUN: qbc img vs qemu-img',
      qemu: convert('qemu-img', ['-f', 'raw', '-O', 'raw', readUrl, out]),
      reference: convert(QBC_IMG, ['-f', 'raw', '-O', 'raw', readUrl, out]),
      cleanup: rm,
    },
    {
      name: 'write 256 MiB to a tgtd LUN: qbc img vs qemu-img',
      qemu: convert('qemu-img', ['-n', '-f', 'raw', '-O', 'raw', src, writeUrl]),
      reference: convert(QBC_IMG, ['-n', '-f', 'raw', '-O', 'raw', src, writeUrl]),
    },
  ];
};
