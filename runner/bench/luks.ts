/**
 * Encryption (issue 6): 256 MiB through luks (aes-256-xts-plain64), written (convert raw -> luks)
 * and read (convert luks -> raw), and the same two through qcow2 with encrypt.format=luks. The passphrase
 * goes by file=, as everywhere. iter-time is tiny: the cases time the sector cipher, not PBKDF2
 * (qemu-img still spends about a second calibrating PBKDF2 on each LUKS creation).
 */
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MiB, QBC_IMG, type Case, type CaseGroup } from './case.js';

const SIZE = 256 * MiB;

export const luksCases: CaseGroup = async (ctx) => {
  const secretFile = path.join(ctx.dir, 'luks-bench-secret');
  fs.writeFileSync(secretFile, 'bench passphrase', { mode: 0o600 });
  const object = ['--object', `secret,id=sec0,file=${secretFile}`];
  // every byte data, so no side skips zeroes
  const raw = path.join(ctx.dir, 'luks-source.raw');
  await execa('qemu-img', ['create', '-q', '-f', 'raw', raw, String(SIZE)]);
  await execa('qemu-io', ['-f', 'raw', '-c', `write -P 0x5a 0 ${SIZE}`, raw]);
  const luks = path.join(ctx.dir, 'luks-source.luks');
  const qcow2 = path.join(ctx.dir, 'luks-source.qcow2');
  // the read sources, made once (untimed) by the reference's CLI (LUKS creation by qemu-img flakes here)
  await execa(QBC_IMG, ['convert', ...object, '-f', 'raw', '-O', 'luks', '-o', 'key-secret=sec0,iter-time=10', raw, luks]);
  for (let i = 0; ; i++) {
    const r = await execa('qemu-img', ['convert', ...object, '-f', 'raw', '-O', 'qcow2', '-o', 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10', raw, qcow2], { reject: false });
    if (r.exitCode === 0) break;
    if (i === 7 || !/Unable to get accurate CPU usage/.test(String(r.stderr))) throw new Error(`qemu-img convert to qcow2+luks: ${String(r.stderr)}`);
  }
  const out = path.join(ctx.dir, 'luks-out');
  const rm = () => fs.rmSync(out, { force: true });
  const write = ['convert', ...object, '-f', 'raw', '-O', 'luks', '-o', 'key-secret=sec0,iter-time=10', raw, out];
  const read = ['convert', ...object, '-O', 'raw', `json:${JSON.stringify({ driver: 'luks', 'key-secret': 'sec0', 'file.filename': luks })}`, out];
  const writeQcow2 = ['convert', ...object, '-f', 'raw', '-O', 'qcow2', '-o', 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10', raw, out];
  const readQcow2 = ['convert', ...object, '-O', 'raw', `json:${JSON.stringify({ driver: 'qcow2', 'encrypt.key-secret': 'sec0', 'file.filename': qcow2 })}`, out];
  /** qemu-img's LUKS creation sometimes fails its CPU-time probe: retried, never hidden (a persistent failure throws) */
  const qemuImg = async (args: string[]) => {
    for (let i = 0; ; i++) {
      const r = await execa('qemu-img', args, { reject: false });
      if (r.exitCode === 0) return;
      if (i === 7 || !/Unable to get accurate CPU usage/.test(String(r.stderr))) throw new Error(`qemu-img ${args[0]}: ${String(r.stderr)}`);
      process.stderr.write('bench luks: qemu-img said "Unable to get accurate CPU usage"; retrying\n');
    }
  };
  const cases: Case[] = [
    { name: 'luks write 256 MiB (convert raw -> luks, aes-256-xts-plain64)', qemu: () => qemuImg(write), reference: async () => { await execa(QBC_IMG, write); }, cleanup: rm },
    { name: 'luks read 256 MiB (convert luks -> raw)', qemu: () => qemuImg(read), reference: async () => { await execa(QBC_IMG, read); }, cleanup: rm },
    { name: 'qcow2+luks write 256 MiB (convert raw -> qcow2, encrypt.format=luks)', qemu: () => qemuImg(writeQcow2), reference: async () => { await execa(QBC_IMG, writeQcow2); }, cleanup: rm },
    { name: 'qcow2+luks read 256 MiB (convert -> raw)', qemu: () => qemuImg(readQcow2), reference: async () => { await execa(QBC_IMG, readQcow2); }, cleanup: rm },
  ];
  return cases;
};
