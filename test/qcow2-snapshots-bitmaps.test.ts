/**
 * qcow2 snapshot tables and bitmap directories: the serializer and the reader
 * agree, and damaged tables from the corpus images give typed errors or data
 * (never a crash, a hang or a change to a file opened for reading). Seeded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { BlockError } from '../reference/errors.js';
import { FileNode } from '../reference/protocols/file.js';
import { checkImage } from '../reference/tools/check.js';
import { imageInfo } from '../reference/tools/info.js';
import { readSnapshotTable, serializeSnapshotTable, type Qcow2Snapshot } from '../reference/formats/qcow2/snapshot-table.js';
import { prng } from './support/fuzz.js';
import { sizeToStr, snapshotTable, snapshotInfo } from '../reference/tools/snapshot.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const images = path.join(root, 'corpus', 'images');

test('a snapshot table reads back as it was written, unknown extra data and all', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-snt-'));
  try {
    const list: Qcow2Snapshot[] = [
      { l1TableOffset: 0x30000, l1Size: 1, id: '1', name: 'a', dateSec: 1, dateNsec: 2, vmClockNsec: 3_000_000_123, vmStateSize: 0, diskSize: 1 << 20, icount: 0, unknownExtra: Buffer.alloc(0) },
      { l1TableOffset: 0x40000, l1Size: 2, id: '7', name: 'with spaces', dateSec: 4, dateNsec: 5, vmClockNsec: 0, vmStateSize: 2 ** 33, diskSize: 2 << 20, icount: -1, unknownExtra: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]) },
    ];
    const bytes = serializeSnapshotTable(list);
    const p = path.join(dir, 't');
    fs.writeFileSync(p, Buffer.concat([Buffer.alloc(65536), bytes]));
    const file = FileNode.open(p, { readOnly: true });
    try {
      const back = await readSnapshotTable(file, 65536, 2, 65536, 0);
      assert.deepEqual(back.snapshots, list);
      assert.equal(back.size, bytes.length);
    } finally {
      await file.close();
    }
    // qemu's columns: ID 9 wide, a space, tag 16 wide, a space, size 8, date 20, clock 13, icount 11 (empty for -1)
    const t = snapshotTable(list.map(snapshotInfo)).split('\n');
    assert.equal(t[2].length, 79);
    assert.match(t[2], /^1         a                     0 B .{19} 00:00:03\.000          0$/);
    assert.match(t[3], /^7         with spaces         8 GiB .{19} 00:00:00\.000           $/);
    assert.deepEqual([0, 1000, 1023, 1024, 1536, 2 ** 30].map(sizeToStr), ['0 B', '0.977 KiB', '0.999 KiB', '1 KiB', '1.5 KiB', '1 GiB']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('damaged snapshot tables and bitmap directories give typed errors or data, and read-only opens change nothing', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-snf-'));
  const rnd = prng(20261203);
  try {
    for (const seed of ['qcow2-snapshots', 'qcow2-bitmaps']) {
      const orig = fs.readFileSync(path.join(images, `${seed}.qcow2`));
      const tableAt = seed === 'qcow2-snapshots' ? Number(orig.readBigUInt64BE(64)) : Number(orig.readBigUInt64BE(orig.indexOf(Buffer.from([0x23, 0x85, 0x28, 0x75])) + 24));
      for (let i = 0; i < 150; i++) {
        const img = Buffer.from(orig);
        for (let f = 1 + rnd(3); f > 0; f--) img[tableAt + rnd(Math.min(160, img.length - tableAt))] = rnd(256);
        const p = path.join(dir, `m${i}.qcow2`);
        fs.writeFileSync(p, img);
        const before = createHash('sha256').update(img).digest('hex');
        const t0 = Date.now();
        for (const [what, fn] of [['info', () => imageInfo(p)], ['check', () => checkImage(p, { format: 'qcow2' })]] as const) {
          try {
            await fn();
          } catch (e) {
            assert.ok(e instanceof BlockError, `${seed} mutation ${i}: ${what} threw ${(e as Error).stack}`);
          }
        }
        assert.ok(Date.now() - t0 < 10_000, `${seed} mutation ${i} took ${Date.now() - t0} ms`);
        assert.equal(createHash('sha256').update(fs.readFileSync(p)).digest('hex'), before, `${seed} mutation ${i}: the file changed`);
        fs.rmSync(p);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
