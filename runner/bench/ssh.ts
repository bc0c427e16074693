/**
 * SSH: sequential 64 MiB through a private sshd (runner/peers/sshd.ts), read
 * (convert from ssh:// to a local file) and write (convert -n from a local
 * file onto an ssh:// target), qemu-img against qbc img. Both authenticate
 * with the peer's agent; the peer is started untimed and stopped by PID.
 */
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startSshPeer } from '../peers/sshd.js';
import { MiB, QBC_IMG, type CaseGroup } from './case.js';

const SIZE = 64 * MiB;

export const sshCases: CaseGroup = async (ctx) => {
  const peer = await startSshPeer(path.join(ctx.dir, 'sshd'));
  ctx.atExit(() => peer.stop());
  const env = { SSH_AUTH_SOCK: peer.agentSocket };
  const src = path.join(ctx.dir, 'ssh-src.raw');
  // the first 64 MiB of the shared half-full fixture
  await execa('dd', [`if=${ctx.raw}`, `of=${src}`, 'bs=1M', `count=${SIZE / MiB}`, 'conv=sparse', 'status=none']);
  await execa('truncate', ['-s', String(SIZE), src]);
  const target = path.join(ctx.dir, 'ssh-target.raw');
  await execa('truncate', ['-s', String(SIZE), target]);
  const remote = (f: string) => `ssh://127.0.0.1:${peer.port}${f}?host_key_check=no`;
  const out = path.join(ctx.dir, 'ssh-out.raw');
  const rm = () => fs.rmSync(out, { force: true });
  return [
    {
      name: 'read 64 MiB over ssh: qbc img vs qemu-img',
      qemu: async () => { await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', remote(src), out], { env }); },
      reference: async () => { await execa(QBC_IMG, ['convert', '-f', 'raw', '-O', 'raw', remote(src), out], { env }); },
      cleanup: rm,
    },
    {
      name: 'write 64 MiB over ssh: qbc img vs qemu-img',
      qemu: async () => { await execa('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, remote(target)], { env }); },
      reference: async () => { await execa(QBC_IMG, ['convert', '-n', '-f', 'raw', '-O', 'raw', src, remote(target)], { env }); },
    },
  ];
};
