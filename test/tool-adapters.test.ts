/**
 * The command-line tool adapters (issue 10) against images made by their real producers, judged
 * by real qemu: what each declares, the bytes it reads, what it refuses, and the version it reports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ImplError } from '../adapters/adapter.js';
import { loadAdapter } from '../adapters/index.js';
import { THIRD_PARTY_ADAPTERS } from '../adapters/third-party.js';
import { parseRunArgs } from '../runner/run.js';
import { writeUdif } from '../runner/fixtures/udif-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'qbc-tools-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('every named tool adapter loads, reports a version and declares only operations it implements', async () => {
  for (const name of ["dmg2img", "cloop", "bximage", "cryptsetup", "mtools"]) {
    assert.ok(THIRD_PARTY_ADAPTERS[name], name);
    const a = await loadAdapter(name);
    assert.equal(a.name, name);
    assert.match(String(a.version), /\d/, `${name} reports its version`);
    for (const [fmt, ops] of Object.entries(a.capabilities.formats)) {
      for (const op of ops) if (op === 'read') assert.equal(typeof a.io, 'function', `${name} ${fmt}`);
    }
  }
  // qbc run takes the bare name as an implementation, and still refuses an unknown one at load
  const opts = parseRunArgs(['--impl', 'dmg2img']);
  assert.ok(opts !== 'help' && opts.impl === 'dmg2img' && opts.implName === 'dmg2img');
  await assert.rejects(loadAdapter('nosuchtool'), /no module exists/);
});

test('bximage reads a vpc and a bochs image as qemu does, converts to vmdk, and refuses what it cannot express', async () => {
  const bx = await loadAdapter('bximage');
  const qemu = await loadAdapter('qemu');
  const vpc = join(dir, 'a.vpc');
  await execa('qemu-img', ['create', '-q', '-f', 'vpc', vpc, '10M']);
  await execa('qemu-io', ['-f', 'vpc', '-c', 'write -P 0x5a 1M 64k', vpc]);
  const img = { filename: vpc, format: 'vpc' };
  assert.equal(await bx.guestSha256(img), await qemu.guestSha256(img));
  await bx.io(img, [{ op: 'read', offset: 1 << 20, length: 65536, pattern: 0x5a }]);
  await assert.rejects(bx.io(img, [{ op: 'read', offset: (1 << 20) - 1, length: 2, pattern: 0x5a }]), /Pattern verification failed at offset 1048575/);
  await assert.rejects(bx.io(img, [{ op: 'write', offset: 0, length: 512, pattern: 1 }]), (e: unknown) => e instanceof ImplError && /read-only/.test(e.message));
  const vmdk = join(dir, 'b.vmdk');
  await bx.convert({ source: img, target: { filename: vmdk, format: 'vmdk' } });
  const cmp = await execa('qemu-img', ['compare', '-f', 'vpc', '-F', 'vmdk', vpc, vmdk], { reject: false });
  assert.equal(cmp.exitCode, 0, cmp.stdout + cmp.stderr);
  await assert.rejects(bx.convert({ source: img, target: { filename: join(dir, 'c.vmdk'), format: 'vmdk' }, options: 'subformat=streamOptimized' }), /no creation options \(-o subformat=streamOptimized\)/);
  await assert.rejects(bx.guestSha256({ filename: vpc, format: 'qcow2' }), /does not read the qcow2 format/);
});

test('dmg2img and extract_compressed_fs give the guest bytes qemu reads', async () => {
  const src = join(dir, 'disk.raw');
  const b = Buffer.alloc(1 << 20);
  b.fill(0xc3, 4096, 70000);
  writeFileSync(src, b);
  const cloopFile = join(dir, 'd.cloop');
  await execa('create_compressed_fs', ['-q', '-B', '16384', '-L', '9', src, cloopFile]);
  const cloop = await loadAdapter('cloop');
  const qemu = await loadAdapter('qemu');
  assert.equal(await cloop.guestSha256({ filename: cloopFile, format: 'cloop' }), await qemu.guestSha256({ filename: cloopFile, format: 'cloop' }));
  const dmgFile = join(dir, 'd.dmg');
  writeFileSync(dmgFile, writeUdif(b, { layout: 'zlib', chunkSectors: 256, parts: 1 }));
  const dmg = await loadAdapter('dmg2img');
  await dmg.io({ filename: dmgFile, format: 'dmg' }, [{ op: 'read', offset: 4096, length: 65904, pattern: 0xc3 }, { op: 'read', offset: 70000, length: 4096, pattern: 0 }]);
  assert.equal(await dmg.guestSha256({ filename: dmgFile, format: 'dmg' }), await qemu.guestSha256({ filename: dmgFile, format: 'dmg' }));
  await assert.rejects(dmg.info({ filename: dmgFile, format: 'dmg' }), /dmg2img has no info/);
});

test("cryptsetup's luksDump gives the info qemu-img shows for the header's fields", async () => {
  const file = join(dir, 'l.luks');
  const key = join(dir, 'key');
  writeFileSync(key, 'open sesame');
  writeFileSync(file, Buffer.alloc(4 << 20));
  await execa('cryptsetup', ['luksFormat', '-q', '--type', 'luks1', '--cipher', 'aes-cbc-essiv:sha256', '--key-size', '256', '--iter-time', '10', '--key-file', key, file], { env: { LC_ALL: 'C' }, timeout: 60_000, stdin: 'ignore' });
  const cs = await loadAdapter('cryptsetup');
  const qemu = await loadAdapter('qemu');
  const mine = await cs.info({ filename: file, format: 'luks' });
  const theirs = await qemu.info({ filename: file, format: 'luks' });
  assert.equal(mine['virtual-size'], theirs['virtual-size']);
  const a = (mine['format-specific'] as { data: Record<string, unknown> }).data;
  const b = (theirs['format-specific'] as { data: Record<string, unknown> }).data;
  for (const k of ['cipher-alg', 'cipher-mode', 'ivgen-alg', 'ivgen-hash-alg', 'hash-alg', 'uuid', 'payload-offset', 'master-key-iters']) assert.deepEqual(a[k], b[k], k);
  const active = (s: unknown) => (s as { active: boolean }[]).map((x) => x.active);
  assert.deepEqual(active(a.slots), active(b.slots));
  await assert.rejects(cs.io({ filename: file, format: 'luks' }, [{ op: 'read', offset: 0, length: 512, pattern: -1 }]), /device-mapper/);
});

test('nbdkit reads a LUKS1 image qemu wrote with its own luks filter, refuses a wrong passphrase, and serves a raw file qemu-io reads', async () => {
  const nk = await loadAdapter('nbdkit');
  const qemu = await loadAdapter('qemu');
  const file = join(dir, 'n.luks');
  const secrets = [{ id: 's', data: 'abc' }];
  await qemu.create({ format: 'luks', filename: file, size: 1 << 20, options: 'key-secret=s,iter-time=10', secrets });
  const img = { filename: file, format: 'luks', secrets, keySecret: 's' };
  await qemu.io(img, [{ op: 'write', offset: 4096, length: 8192, pattern: 0x33 }]);
  await nk.io(img, [{ op: 'read', offset: 4096, length: 8192, pattern: 0x33 }]);
  assert.equal(await nk.guestSha256(img), await qemu.guestSha256(img));
  await assert.rejects(nk.io({ ...img, secrets: [{ id: 's', data: 'wrong' }] }, [{ op: 'read', offset: 0, length: 512, pattern: -1 }]), (e: unknown) => e instanceof ImplError && /passphrase is not correct/.test(e.message) && !/wrong/.test(e.message));

  const raw = join(dir, 'n.raw');
  const b = Buffer.alloc(1 << 20);
  b.fill(0x5a, 65536, 131072);
  writeFileSync(raw, b);
  const socket = join(dir, 'n.sock');
  const h = await nk.serveNbd!({ filename: raw, format: 'raw' }, { socket, exportName: 'disk', readOnly: true });
  try {
    const r = await execa('qemu-io', ['-r', '-f', 'raw', '-c', 'read -P 0x5a 64k 64k', `nbd+unix:///disk?socket=${socket}`], { reject: false, timeout: 30_000 });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /verification failed/);
    const wrong = await execa('qemu-io', ['-r', '-f', 'raw', '-c', 'read 0 512', `nbd+unix:///nosuch?socket=${socket}`], { reject: false, timeout: 30_000 });
    assert.notEqual(wrong.exitCode === 0 && !/can't open|failed/i.test(wrong.stdout + wrong.stderr), true, 'an export name the server does not have is refused');
  } finally {
    await h.stop();
  }
});

test('mtools declares only files.fat, extracts the files of a FAT floppy qemu made, and fsck.fat tells a clean volume from a damaged one without changing it', async () => {
  const a = await loadAdapter('mtools');
  assert.deepEqual(a.capabilities.formats, {});
  assert.deepEqual(a.capabilities.files, { fat: ['extract', 'check'] });
  assert.match(String(a.version), /mtools .*dosfstools/);
  const src = join(dir, 'fat-src');
  rmSync(src, { recursive: true, force: true });
  await execa('mkdir', ['-p', join(src, 'sub')]);
  writeFileSync(join(src, 'a.txt'), Buffer.alloc(10_000, 0x61));
  writeFileSync(join(src, 'sub', 'long name.bin'), Buffer.alloc(3, 0x62));
  const img = join(dir, 'fat.raw');
  await execa('qemu-img', ['convert', '-f', 'vvfat', '-O', 'raw', `fat:floppy:${src}`, img]);
  const out = join(dir, 'fat-out');
  rmSync(out, { recursive: true, force: true });
  await execa('mkdir', [out]);
  await a.extractFiles!({ filename: img, format: 'raw' }, out);
  assert.deepEqual((await execa('diff', ['-r', src, out], { reject: false })).exitCode, 0);
  assert.equal((await a.checkFilesystem!({ filename: img, format: 'raw' })).clean, true);
  // free clusters 2 and 3 in the first FAT (FAT12: bytes 3..5 after the one reserved sector)
  await execa('dd', ['if=/dev/zero', `of=${img}`, 'bs=1', 'seek=515', 'count=3', 'conv=notrunc', 'status=none']);
  const r = await a.checkFilesystem!({ filename: img, format: 'raw' });
  assert.equal(r.clean, false, r.output);
  assert.match(r.output, /FATs differ/);
  // not a disk-format implementation: image operations are refused by name
  await assert.rejects(a.io({ filename: img, format: 'raw' }, [{ op: 'read', offset: 0, length: 512, pattern: 0 }]), (e: unknown) => e instanceof ImplError && /FAT file systems/.test(e.message));
  await assert.rejects(a.extractFiles!({ filename: img, format: 'qcow2' }, out), ImplError);
});
