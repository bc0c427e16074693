/**
 * The file protocol's host operations through the native addon: image lock
 * bytes as QEMU takes them (between two open file descriptions of this
 * process, and against a real qemu-io), holes from SEEK_DATA/SEEK_HOLE,
 * hole punching on discard and preallocation=falloc.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { execa } from 'execa';
import { BlockError } from '../reference/errors.js';
import { openImage } from '../reference/graph/open.js';
import { FileNode } from '../reference/protocols/file.js';
import { hostfile } from '../reference/protocols/hostfile.js';
import { ImageLock, imagePermissions, PERM_ALL, PERM_CONSISTENT_READ, PERM_RESIZE, PERM_WRITE } from '../reference/protocols/locking.js';
import { createImage } from '../reference/tools/create.js';

const dir = mkdtempSync(join(tmpdir(), 'qbc-local-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Which of the 8 lock bytes another descriptor sees taken (any lock on them). */
function takenBytes(file: string): number[] {
  const fd = openSync(file, 'r');
  try {
    return [100, 101, 102, 103, 200, 201, 202, 203].filter((b) => hostfile.ofdTest(fd, b, 1, 2) !== 0);
  } finally {
    closeSync(fd);
  }
}

test('lock bytes follow the permissions, a clash leaves the earlier state, close releases them', () => {
  const file = join(dir, 'locks.img');
  writeFileSync(file, Buffer.alloc(4096));
  const a = openSync(file, 'r+');
  const b = openSync(file, 'r+');
  try {
    const la = new ImageLock(a, file);
    la.set({ perm: PERM_CONSISTENT_READ | PERM_WRITE | PERM_RESIZE, shared: PERM_ALL & ~(PERM_WRITE | PERM_RESIZE) });
    assert.deepEqual(takenBytes(file), [100, 101, 103, 201, 203]);
    // narrowing to a reader drops the write and resize bytes it held
    la.set({ perm: PERM_CONSISTENT_READ, shared: PERM_ALL & ~(PERM_WRITE | PERM_RESIZE) });
    assert.deepEqual(takenBytes(file), [100, 201, 203]);

    const lb = new ImageLock(b, file);
    assert.throws(() => lb.set({ perm: PERM_CONSISTENT_READ | PERM_WRITE, shared: PERM_ALL }), (e: unknown) =>
      e instanceof BlockError && e.code === 'locked' && e.message.startsWith('Failed to get "write" lock\nIs another process using the image ['));
    assert.deepEqual(lb.state(), { perm: 0, shared: PERM_ALL }, 'the refused descriptor holds nothing');
    assert.deepEqual(takenBytes(file), [100, 201, 203], 'the refusal took no bytes');
    // a second reader that shares everything is welcome
    lb.set({ perm: PERM_CONSISTENT_READ, shared: PERM_ALL });
  } finally {
    closeSync(a);
    closeSync(b);
  }
  assert.deepEqual(takenBytes(file), [], 'closing the descriptors released every byte');
});

test('the permissions qemu-img and qemu-io take, by format and mode', () => {
  assert.deepEqual(imagePermissions({ format: 'qcow2', readOnly: false }), { perm: 0b1011, shared: 0b0101 });
  assert.deepEqual(imagePermissions({ format: 'qcow2', readOnly: true }), { perm: 0b0001, shared: 0b0101 });
  assert.deepEqual(imagePermissions({ format: 'qcow2', readOnly: true, noIO: true }), { perm: 0, shared: 0b0101 });
  assert.deepEqual(imagePermissions({ format: 'qcow2', readOnly: true, forceShare: true }), { perm: 0b0001, shared: PERM_ALL });
  assert.deepEqual(imagePermissions({ format: 'raw', readOnly: false }), { perm: 0b0011, shared: PERM_ALL });
});

test('a qemu-io writer keeps the reference out; -U and locking=off let it read', async () => {
  const file = join(dir, 'held.qcow2');
  await createImage({ format: 'qcow2', filename: file, size: 1 << 20 });
  const q = spawn('qemu-io', ['-f', 'qcow2', file], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    let out = '';
    q.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    q.stdin.write('read 0 512\n');
    for (let i = 0; i < 400 && !out.includes('read 512/512'); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(out.includes('read 512/512'), `qemu-io did not open the image: ${out}`);
    await assert.rejects(openImage(file, { readOnly: true }), (e: unknown) => e instanceof BlockError && e.code === 'locked' && /Failed to get shared "write" lock/.test(e.message));
    await assert.rejects(openImage(file, { readOnly: false, forceShare: true }), /force-share=on can only be used with read-only images/);
    const shared = await openImage(file, { readOnly: true, forceShare: true });
    await shared.close();
    const unlocked = await openImage(`json:{"driver":"qcow2","file":{"driver":"file","filename":${JSON.stringify(file)},"locking":"off"}}`, { readOnly: false });
    await unlocked.close();
  } finally {
    q.stdin.end();
    await new Promise((r) => q.once('exit', r));
  }
  const after = await openImage(file, { readOnly: false });
  await after.close();
});

test('a reference writer keeps qemu-img info out with QEMU\'s own words', async () => {
  const file = join(dir, 'ours.qcow2');
  await createImage({ format: 'qcow2', filename: file, size: 1 << 20 });
  const node = await openImage(file, { readOnly: false });
  try {
    const r = await execa('qemu-img', ['info', file], { reject: false, timeout: 20_000 });
    assert.equal(r.exitCode, 1);
    assert.match(String(r.stderr), /Failed to get shared "write" lock\nIs another process using the image/);
    const u = await execa('qemu-img', ['info', '-U', file], { reject: false, timeout: 20_000 });
    assert.equal(u.exitCode, 0, String(u.stderr));
  } finally {
    await node.close();
  }
});

test('holes from SEEK_DATA/SEEK_HOLE, discard punches one, falloc allocates', async () => {
  const file = join(dir, 'holes.img');
  const f = FileNode.open(file, { create: true });
  try {
    await f.truncate(4 << 20);
    await f.write(1 << 20, Buffer.alloc(64 << 10, 0xa5));
    let s = await f.blockStatus(0, 4 << 20);
    assert.deepEqual([s.data, s.length], [false, 1 << 20], 'a hole before the data');
    s = await f.blockStatus(1 << 20, 3 << 20);
    assert.deepEqual([s.data, s.length], [true, 64 << 10], 'the data written');
    const before = await f.allocatedSize();
    await f.discard(1 << 20, 64 << 10);
    assert.ok((await f.allocatedSize()) < before, 'the discard gave the space back');
    assert.equal((await f.read(1 << 20, 4096)).every((b) => b === 0), true, 'a punched hole reads as zeroes');
    await f.truncate(8 << 20, 'falloc');
    assert.ok((await f.allocatedSize()) >= 4 << 20, 'falloc allocated the growth');
  } finally {
    await f.close();
  }
  assert.equal(statSync(file).size, 8 << 20);
});
