/**
 * Local access: image locking and host-file holes. A small qcow2 held open for
 * writing by a qemu-io started here (ended by its PID when the run ends) is
 * asked for its info, refused by the lock and again with -U; the shared raw
 * fixture (every other MiB data) is mapped, which is SEEK_DATA/SEEK_HOLE work.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { execa } from 'execa';
import { QBC_IMG, type CaseGroup } from './case.js';

export const localCases: CaseGroup = async (ctx) => {
  const held = path.join(ctx.dir, 'held.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', held, '64M']);
  const holder = spawn('qemu-io', ['-f', 'qcow2', held], { stdio: ['pipe', 'pipe', 'ignore'] });
  ctx.atExit(async () => {
    holder.stdin.end();
    if (holder.exitCode === null) await new Promise((r) => holder.once('exit', r));
  });
  let out = '';
  holder.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  holder.stdin.write('read 0 512\n');
  for (let i = 0; i < 400 && !out.includes('read 512/512'); i++) await new Promise((r) => setTimeout(r, 25));
  if (!out.includes('read 512/512')) throw new Error('bench local: qemu-io did not open the held image');

  const both = (args: string[], refused = false) => ({
    qemu: async () => { const r = await execa('qemu-img', args, { reject: false }); if ((r.exitCode !== 0) !== refused) throw new Error(`qemu-img ${args.join(' ')}: exit ${r.exitCode}`); },
    reference: async () => { const r = await execa(QBC_IMG, args, { reject: false }); if ((r.exitCode !== 0) !== refused) throw new Error(`qbc img ${args.join(' ')}: exit ${r.exitCode}`); },
  });
  return [
    { name: 'info of a qcow2 a writer holds (refused by its lock)', ...both(['info', held], true) },
    { name: 'info -U of a qcow2 a writer holds', ...both(['info', '-U', '--output=json', held]) },
    { name: 'map of the half-full raw file (SEEK_DATA/SEEK_HOLE)', ...both(['map', '--output=json', '-f', 'raw', ctx.raw]) },
  ];
};
