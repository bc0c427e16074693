/**
 * `qbc img` / `qbc io` as drop-ins for qemu-img / qemu-io: the same help text,
 * exit statuses and command input, checked against the real tools when they
 * are installed (reported as skipped, with the reason, when they are not).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const QBC_IMG = path.join(root, 'bin', 'qbc-img');
const QBC_IO = path.join(root, 'bin', 'qbc-io');
const haveQemu = (await execa('qemu-img', ['--version'], { reject: false }).catch(() => ({ exitCode: 127 }))).exitCode === 0;
const needQemu = haveQemu ? {} : { skip: 'qemu-img is not installed (Debian qemu-utils)' };

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-cli-'));
}

for (const fmt of ['raw', 'qcow2']) {
  test(`create -f ${fmt} -o help prints exactly what qemu-img prints`, needQemu, async () => {
    const ours = await execa(QBC_IMG, ['create', '-f', fmt, '-o', 'help', 'x'], { reject: false });
    const theirs = await execa('qemu-img', ['create', '-f', fmt, '-o', 'help', 'x'], { reject: false });
    assert.equal(ours.exitCode, theirs.exitCode);
    assert.equal(ours.stdout, theirs.stdout);
  });
}

test('check exits as qemu-img does: 0 clean, 63 for a format without checks', needQemu, async () => {
  const dir = tmp();
  try {
    const q = path.join(dir, 'a.qcow2');
    const r = path.join(dir, 'a.raw');
    await execa(QBC_IMG, ['create', '-q', '-f', 'qcow2', q, '1M']);
    await execa(QBC_IMG, ['create', '-q', '-f', 'raw', r, '1M']);
    for (const [bin, file, fmt] of [[QBC_IMG, q, 'qcow2'], ['qemu-img', q, 'qcow2'], [QBC_IMG, r, 'raw'], ['qemu-img', r, 'raw']]) {
      const res = await execa(bin, ['check', '-f', fmt, file], { reject: false });
      assert.equal(res.exitCode, fmt === 'raw' ? 63 : 0, `${bin} check ${fmt}: ${res.stderr}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('compare exits 1 with the offset of the first difference, like qemu-img', needQemu, async () => {
  const dir = tmp();
  try {
    const a = path.join(dir, 'a.qcow2');
    const b = path.join(dir, 'b.qcow2');
    for (const f of [a, b]) await execa(QBC_IMG, ['create', '-q', '-f', 'qcow2', f, '1M']);
    await execa(QBC_IO, ['-c', 'write -P 0x33 65536 512', b]);
    const ours = await execa(QBC_IMG, ['compare', a, b], { reject: false });
    const theirs = await execa('qemu-img', ['compare', a, b], { reject: false });
    assert.equal(ours.exitCode, 1);
    assert.equal(theirs.exitCode, 1);
    assert.equal(ours.stdout.trim(), theirs.stdout.trim());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('qbc io takes commands on standard input when no -c is given, as qemu-io does', async () => {
  const dir = tmp();
  try {
    const f = path.join(dir, 'a.qcow2');
    await execa(QBC_IMG, ['create', '-q', '-f', 'qcow2', f, '1M']);
    const res = await execa(QBC_IO, [f], { input: 'write -P 0x5a 4096 4096\nread -P 0x5a 4096 4096\nread -P 0x5b 4096 512\n' });
    assert.match(res.stdout, /wrote 4096\/4096 bytes at offset 4096/);
    assert.match(res.stdout, /read 4096\/4096 bytes at offset 4096/);
    assert.match(res.stdout, /Pattern verification failed at offset 4096/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const SECRET = ['--object', 'secret,id=s,file=pw'];

test('create prints the same "Formatting ..." line as qemu-img', needQemu, async () => {
  const dir = tmp();
  try {
    const cases = [
      ['-f', 'qcow2', '-o', 'preallocation=metadata,compat=0.10,cluster_size=4096', 'F', '1M'],
      ['-f', 'qcow2', '-o', 'extended_l2=on,refcount_bits=8,lazy_refcounts=on,compression_type=zstd', 'F', '1M'],
      ['-f', 'raw', '-o', 'preallocation=full', 'F', '1M'],
      // every option each format's line can name, at once (the orders were measured on 7.2)
      ['-f', 'qcow2', '-o', 'compat=1.1,data_file=d.raw,backing_file=b.raw,backing_fmt=raw,nocow=on,preallocation=off,extent_size_hint=0', 'F', '1M'],
      ['-f', 'qcow2', ...SECRET, '-o', 'encrypt.format=luks,encrypt.key-secret=s,encrypt.cipher-alg=aes-256,encrypt.cipher-mode=xts,encrypt.ivgen-alg=plain64,encrypt.hash-alg=sha256,encrypt.iter-time=10,lazy_refcounts=on', 'F', '1M'],
      ['-f', 'qcow2', ...SECRET, '-o', 'encryption=on,encrypt.key-secret=s', 'F', '1M'],
      ['-f', 'qcow', ...SECRET, '-o', 'encrypt.format=aes,encrypt.key-secret=s,backing_file=b.raw,backing_fmt=raw', 'F', '1M'],
      ['-f', 'qed', '-o', 'backing_file=b.raw,backing_fmt=raw,cluster_size=65536,table_size=4,nocow=off,preallocation=off,extent_size_hint=1M', 'F', '1M'],
      ['-f', 'luks', ...SECRET, '-o', 'key-secret=s,cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256,hash-alg=sha256,iter-time=10,preallocation=off,nocow=off,extent_size_hint=1M', 'F', '1M'],
      ['-f', 'vmdk', '-o', 'adapter_type=lsilogic,backing_file=b.vmdk,backing_fmt=vmdk,compat6=on,toolsversion=10,subformat=monolithicSparse,zeroed_grain=on,preallocation=off,nocow=off,extent_size_hint=1M', 'F', '1M'],
      ['-f', 'vmdk', '-o', 'hwversion=4', 'F', '1M'],
      ['-f', 'vdi', '-o', 'static=on,preallocation=off', 'F', '1M'],
      ['-f', 'vpc', '-o', 'subformat=fixed,force_size=on', 'F', '1M'],
      ['-f', 'vhdx', '-o', 'subformat=dynamic,block_state_zero=on,log_size=1M,block_size=1M', 'F', '1M'],
      ['-f', 'parallels', '-o', 'cluster_size=1M,preallocation=off', 'F', '1M'],
    ];
    fs.writeFileSync(path.join(dir, 'pw'), 'passphrase', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'b.raw'), Buffer.alloc(1 << 20));
    await execa('qemu-img', ['create', '-q', '-f', 'vmdk', 'b.vmdk', '1M'], { cwd: dir });
    for (const args of cases) {
      const lines: string[] = [];
      for (const bin of ['qemu-img', QBC_IMG]) {
        for (const f of ['F', 'd.raw']) fs.rmSync(path.join(dir, f), { force: true });
        // qemu's LUKS calibration sometimes fails on these machines ("Unable to get accurate CPU
        // usage"); that is no answer about the line, so such a run is repeated
        let r = await execa(bin, ['create', ...args], { cwd: dir, reject: false });
        for (let i = 0; i < 5 && /accurate CPU usage/.test(r.stderr); i++) r = await execa(bin, ['create', ...args], { cwd: dir, reject: false });
        assert.equal(r.exitCode, 0, `${bin} ${args.join(' ')}: ${r.stderr}`);
        lines.push(r.stdout.trim());
      }
      assert.equal(lines[1], lines[0], args.join(' '));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
