/**
 * NBD: sequential 256 MiB through `qbc nbd` against qemu-nbd with the same
 * client (qemu-img convert, reading from and writing to the export), and the
 * reference client against qemu-img, both reading from qemu-nbd. Servers are
 * started untimed on unix sockets and stopped by PID when the run ends.
 */
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadAdapter } from '../../adapters/index.js';
import { MiB, QBC_IMG, type CaseGroup } from './case.js';

export const nbdCases: CaseGroup = async (ctx) => {
  const src = path.join(ctx.dir, 'nbd-src.raw');
  // the first 256 MiB of the shared half-full fixture: half random, half zero
  await execa('dd', [`if=${ctx.raw}`, `of=${src}`, 'bs=1M', 'count=256', 'conv=sparse', 'status=none']);
  await execa('truncate', ['-s', String(256 * MiB), src]);
  // the exports of src hold qemu's write lock on it, so writes are converted from a copy
  const writeSrc = path.join(ctx.dir, 'nbd-write-src.raw');
  await execa('cp', ['--sparse=always', src, writeSrc]);
  // the servers are started exactly as the suite starts them: through each adapter's serveNbd
  const servers = { qemu: await loadAdapter('qemu'), reference: await loadAdapter('reference') };
  const exportOf = async (who: 'qemu' | 'reference', file: string, name: string) => {
    const socket = path.join(ctx.dir, `${name}.sock`);
    const h = await servers[who].serveNbd!({ filename: file, format: 'raw' }, { socket, persistent: true, shared: 0 });
    ctx.atExit(() => h.stop());
    return `nbd+unix:///?socket=${socket}`;
  };
  const qemuRead = await exportOf('qemu', src, 'qemu-read');
  const refRead = await exportOf('reference', src, 'ref-read');
  const qemuTarget = path.join(ctx.dir, 'qemu-target.raw');
  const refTarget = path.join(ctx.dir, 'ref-target.raw');
  for (const t of [qemuTarget, refTarget]) await execa('truncate', ['-s', String(256 * MiB), t]);
  const qemuWrite = await exportOf('qemu', qemuTarget, 'qemu-write');
  const refWrite = await exportOf('reference', refTarget, 'ref-write');
  const out = path.join(ctx.dir, 'nbd-out.raw');
  const rm = () => fs.rmSync(out, { force: true });
  return [
    {
      name: 'read 256 MiB: server qbc nbd vs qemu-nbd',
      qemu: async () => { await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', qemuRead, out]); },
      reference: async () => { await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', refRead, out]); },
      cleanup: rm,
    },
    {
      name: 'write 256 MiB: server qbc nbd vs qemu-nbd',
      qemu: async () => { await execa('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', writeSrc, qemuWrite]); },
      reference: async () => { await execa('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', writeSrc, refWrite]); },
    },
    {
      name: 'read 256 MiB from qemu-nbd: client qbc img vs qemu-img',
      qemu: async () => { await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', qemuRead, out]); },
      reference: async () => { await execa(QBC_IMG, ['convert', '-f', 'raw', '-O', 'raw', qemuRead, out]); },
      cleanup: rm,
    },
  ];
};
