/**
 * vvfat in the reference: the 200-file tree through fsck.fat and mtools, the
 * short names QEMU 7.2 makes (checked against what qemu-img 7.2 produced for the
 * same names), hostile trees (links out of DIR and into a loop, names that are
 * not UTF-8), the root directory's 512-entry limit, file data read lazily (a
 * sparse 1 GiB file costs nothing at open) and a host-side change while open,
 * and that without rw no write ever reaches the directory (rw: vvfat-rw.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlockError } from '../reference/errors.js';
import { openImage } from '../reference/graph/open.js';
import type { BlockNode } from '../reference/node.js';
import { shortName, vvfatGeometry } from '../reference/protocols/vvfat.js';
import { diffTrees, dumpNode, extractFat, fsckFat, listTree, makeTree } from '../step_definitions/support/vvfat-tree.js';

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const tools = has('fsck.fat') && has('mcopy');

function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-vvfat-'));
}

test('the 200-file tree as fat:12: passes fsck.fat -n and mcopy -s gives every file back', { skip: tools ? false : 'fsck.fat or mtools not installed' }, async () => {
  const dir = scratch();
  try {
    makeTree(path.join(dir, 'tree'), 200);
    const node = await openImage(`fat:12:${path.join(dir, 'tree')}`);
    assert.equal(node.size(), 64 * 16 * 63 * 512);
    await dumpNode(node, path.join(dir, 'disk.raw'));
    // block status: what it calls zero reads as zeroes, and the extents tile the disk
    let zeroRuns = 0;
    for (let off = 0; off < node.size();) {
      const st = await node.blockStatus(off, node.size() - off);
      assert.ok(st.length > 0 && st.offset === off);
      if (st.zero) {
        zeroRuns++;
        const b = await node.read(off, Math.min(st.length, 1 << 20));
        assert.ok(b.every((x) => x === 0), `zero extent at ${off} reads data`);
      }
      off += st.length;
    }
    assert.ok(zeroRuns >= 1);
    await node.close();
    const f = await fsckFat(path.join(dir, 'disk.raw'), dir);
    assert.ok(f.ok, f.output);
    await extractFat(path.join(dir, 'disk.raw'), path.join(dir, 'out'));
    assert.equal(diffTrees(listTree(path.join(dir, 'tree')), listTree(path.join(dir, 'out'))), '');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('short names as qemu-img 7.2 made them for the same names', () => {
  // in one directory, in this order (what mdir showed for 7.2's image)
  const taken = new Set<string>();
  const cases: Array<[string, string]> = [
    ['.hidden', 'HIDDEN~1   '], ['a b.c', 'AB~1    C  '], ['x.tar.gz', 'X~1     GZ '], ['ABCDEFGHIJ.TXT2', 'ABCDEF~1TXT'],
    ['README', 'README     '], ['abcdefghik.txt', 'ABCDEF~2TXT'], ['abcdefghij.txt', 'ABCDEF~3TXT'], ['readme', 'README~1   '],
    ['café.txt', 'CAF~1   TXT'], ['Long File Name.txt', 'LONGFI~1TXT'], ['a.txt', 'A       TXT'],
  ];
  for (const [name, want] of cases) assert.equal(shortName(name, taken).toString('latin1'), want, name);
});

test('geometry: the sizes QEMU 7.2 picks', () => {
  const sizes = (t: number, f: boolean) => vvfatGeometry(t, f).totalSectors * 512;
  assert.equal(sizes(0, false), 528482304);
  assert.equal(sizes(12, false), 33030144);
  assert.equal(sizes(32, false), 528482304);
  assert.equal(sizes(0, true), 2949120);
  assert.equal(sizes(12, true), 1474560);
  assert.equal(vvfatGeometry(0, false).sectorsPerFat, 252);
  assert.equal(vvfatGeometry(0, false).clusterCount, 64474);
  assert.throws(() => vvfatGeometry(24, false), (e: unknown) => e instanceof BlockError && e.option === 'fat-type');
});

async function names(node: BlockNode, dir: string): Promise<string[]> {
  const file = path.join(dir, 'img.raw');
  await dumpNode(node, file);
  const r = spawnSync('mdir', ['-/', '-a', '-b', '-i', `${file}@@0`, '::'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' }, encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).sort();
}

test('links out of DIR are not followed, a link to an ancestor is not a loop, and a non-UTF-8 name is left out', { skip: has('mdir') ? false : 'mtools not installed' }, async () => {
  const dir = scratch();
  try {
    const d = path.join(dir, 'd');
    fs.mkdirSync(path.join(d, 'in'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'outside'));
    fs.writeFileSync(path.join(dir, 'outside', 'secret.txt'), 'secret');
    fs.writeFileSync(path.join(d, 'in', 'real.txt'), 'ok');
    fs.symlinkSync('../../outside/secret.txt', path.join(d, 'in', 'out-file'));
    fs.symlinkSync('../../outside', path.join(d, 'in', 'out-dir'));
    fs.symlinkSync('/etc/passwd', path.join(d, 'passwd'));
    fs.symlinkSync('..', path.join(d, 'in', 'up'));
    fs.symlinkSync('real.txt', path.join(d, 'in', 'inside-link'));
    fs.writeFileSync(Buffer.concat([Buffer.from(d + '/'), Buffer.from([0xff, 0xfe]), Buffer.from('.bin')]), 'x');
    const node = await openImage(`fat:floppy:${d}`);
    const listed = await names(node, dir);
    await node.close();
    assert.deepEqual(listed, ['::/in/', '::/in/inside-link', '::/in/real.txt'].sort());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('more than 512 root entries are refused as QEMU refuses them', async () => {
  const dir = scratch();
  try {
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, `file${i}.txt`), '');
    await assert.rejects(openImage(`fat:floppy:${dir}`), (e: unknown) => e instanceof BlockError && /Too many entries in root directory/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('file data is read lazily: a sparse 400 MiB file opens without being read; a host change shows, up to the size seen at open', async () => {
  const dir = scratch();
  try {
    const big = path.join(dir, 'big.bin');
    fs.writeFileSync(path.join(dir, 'a.txt'), 'aaaa');
    const fd = fs.openSync(big, 'w');
    fs.ftruncateSync(fd, 400 * 1024 * 1024);
    fs.closeSync(fd);
    const before = process.memoryUsage().rss;
    const node = await openImage(`fat:${dir}`);
    assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'open does not load the files');
    // the first data cluster after the root directory belongs to the first name: a.txt
    const dataStart = (63 + 1 + 2 * 252 + 32) * 512;
    assert.equal((await node.read(dataStart, 4)).toString(), 'aaaa');
    fs.writeFileSync(path.join(dir, 'a.txt'), 'bbbbbbbb');
    const b = await node.read(dataStart, 8);
    assert.equal(b.toString('latin1'), 'bbbb\0\0\0\0');
    await node.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('without rw nothing is written to the directory: writes are refused, and rw on a read-only open is refused, typed', async () => {
  const dir = scratch();
  try {
    fs.writeFileSync(path.join(dir, 'a.txt'), 'keep');
    await assert.rejects(openImage(`fat:rw:${dir}`), (e: unknown) => e instanceof BlockError && /Unable to set VVFAT to 'rw' when drive is read-only/.test(e.message));
    await assert.rejects(openImage(`fat:${dir}`, { readOnly: false }), (e: unknown) => e instanceof BlockError && /Image is read-only/.test(e.message));
    const node = await openImage(`fat:${dir}`);
    await assert.rejects(node.write(0, Buffer.alloc(512)), (e: unknown) => e instanceof BlockError && e.code === 'read-only');
    await node.close();
    assert.deepEqual(fs.readdirSync(dir), ['a.txt']);
    assert.equal(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8'), 'keep');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
