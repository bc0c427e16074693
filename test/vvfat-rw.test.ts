/**
 * vvfat rw in the reference: guest writes reach the directory on flush, the
 * disk reads the same before and after a write-back, a second edit after the
 * first works from the new state; and the hostile cases: a loop in a chain, a
 * cross-link, names that are not one path component, a host name the image
 * does not own, a link swapped to point out of DIR while the image is open,
 * writes to the boot sector. Each hostile case must end in a typed error with
 * the directory and everything outside it as they were.
 *
 * The guest is played by editing a dump of the disk (bytes at the offsets of
 * vvfat's fixed layout, or the forging helper the scenarios use) and writing
 * the changed sectors back through the node, as a guest would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlockError } from '../reference/errors.js';
import { openImage } from '../reference/graph/open.js';
import type { BlockNode } from '../reference/node.js';
import { changedRuns, forgeRootEntry } from '../step_definitions/support/vvfat-edit.js';
import { dumpNode } from '../step_definitions/support/vvfat-tree.js';

// vvfat's hard disk: FAT16 volume at sector 63, 252 sectors per FAT, 512 root entries, 8 KiB clusters
const FAT1 = 32768;
const FAT_BYTES = 252 * 512;
const ROOT = FAT1 + 2 * FAT_BYTES;
const DATA = ROOT + 512 * 32;
const CLUSTER = 8192;
// Every edit here lands in the boot sector, the FATs, the root or the first few clusters, so
// the guest's view is the disk's first 4 MiB; reading all 504 MiB took 8 s per test.
const GUEST_VIEW = 4 << 20;

function scratch(): { top: string; dir: string } {
  const top = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-vvfat-rw-'));
  const dir = path.join(top, 'dir');
  fs.mkdirSync(dir);
  return { top, dir };
}

/** Open fat:rw:DIR writable, let `edit` change a dump of the disk, write the changed sectors back. */
async function guestEdit(top: string, dir: string, edit: (disk: string) => void): Promise<BlockNode> {
  const node = await openImage(`fat:rw:${dir}`, { readOnly: false, format: 'raw' });
  const before = path.join(top, 'before.raw');
  const after = path.join(top, 'after.raw');
  await dumpNode(node, before, GUEST_VIEW);
  fs.copyFileSync(before, after);
  edit(after);
  const fd = fs.openSync(after, 'r');
  try {
    for (const r of changedRuns(before, after)) {
      const b = Buffer.alloc(r.length);
      fs.readSync(fd, b, 0, r.length, r.offset);
      await node.write(r.offset, b);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(before);
  }
  return node;
}

function patch(disk: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(disk, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, offset);
  fs.closeSync(fd);
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}

/** Both FATs' entry for a cluster. */
function setFat(disk: string, cluster: number, value: number): void {
  patch(disk, FAT1 + cluster * 2, u16(value));
  patch(disk, FAT1 + FAT_BYTES + cluster * 2, u16(value));
}

/** The byte offset of a root entry by its 8.3 name. */
function rootEntry(disk: string, short: string): number {
  const root = Buffer.alloc(512 * 32);
  const fd = fs.openSync(disk, 'r');
  fs.readSync(fd, root, 0, root.length, ROOT);
  fs.closeSync(fd);
  for (let at = 0; at < root.length; at += 32) if (root.toString('latin1', at, at + 11) === short) return ROOT + at;
  throw new Error(`no root entry ${short}`);
}

/** A tree by kind, link target and content, never following a link. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      if (st.isSymbolicLink()) out.set(r, `link to ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(r, 'directory');
        walk(r);
      } else out.set(r, fs.readFileSync(p).toString('hex'));
    }
  };
  walk('');
  return out;
}

const isTyped = (code: string, re: RegExp) => (e: unknown): boolean => e instanceof BlockError && e.code === code && re.test(e.message);

test('a guest write to a file reaches the host on flush; the disk reads the same after; a rename after that works from the new state', async () => {
  const { top, dir } = scratch();
  try {
    fs.writeFileSync(path.join(dir, 'a.txt'), Buffer.alloc(5000, 0x61));
    const node = await guestEdit(top, dir, (disk) => patch(disk, DATA, Buffer.alloc(512, 0x62)));
    const seen = await node.read(DATA, 5000);
    await node.flush();
    const want = Buffer.concat([Buffer.alloc(512, 0x62), Buffer.alloc(4488, 0x61)]);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'a.txt')), want);
    assert.deepEqual(await node.read(DATA, 5000), seen, 'the write-back changed what the disk reads');
    // rename a.txt to an 8.3 name with no long name: the long-name entries deleted, the short name rewritten
    const at = rootEntry(path.join(top, 'after.raw'), 'A       TXT');
    const entries = await node.read(ROOT, 512);
    for (let e = 32; e < at - ROOT; e += 32) entries[e] = 0xe5;
    entries.write('RENAMED TXT', at - ROOT, 'latin1');
    await node.write(ROOT, entries);
    await node.close();
    assert.deepEqual(fs.readdirSync(dir), ['RENAMED.TXT']);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'RENAMED.TXT')), want);
  } finally {
    fs.rmSync(top, { recursive: true, force: true });
  }
});

test('the MBR and the boot sector cannot be written (QEMU: "Tried to write to protected bootsector")', async () => {
  const { top, dir } = scratch();
  try {
    const node = await openImage(`fat:rw:${dir}`, { readOnly: false, format: 'raw' });
    await assert.rejects(node.write(0, Buffer.alloc(512)), isTyped('read-only', /protected bootsector/));
    await assert.rejects(node.write(32256, Buffer.alloc(1)), isTyped('read-only', /protected bootsector/));
    await node.close();
  } finally {
    fs.rmSync(top, { recursive: true, force: true });
  }
});

/** A hostile edit: the write-back (at close) must fail typed, and nothing in or outside DIR change. */
async function refused(setup: (dir: string, top: string) => void, edit: (disk: string, dir: string, top: string) => void, code: string, re: RegExp): Promise<void> {
  const { top, dir } = scratch();
  try {
    setup(dir, top);
    const outside = path.join(top, 'outside');
    fs.mkdirSync(outside, { recursive: true });
    fs.writeFileSync(path.join(outside, 'keep'), 'outside');
    const node = await guestEdit(top, dir, (disk) => edit(disk, dir, top));
    const inDir = snapshot(dir);
    const around = fs.readdirSync(top).sort();
    await assert.rejects(node.close(), isTyped(code, re));
    assert.deepEqual(snapshot(dir), inDir, 'the directory changed');
    assert.deepEqual(fs.readdirSync(top).sort(), around, 'something appeared next to the directory');
    assert.deepEqual(snapshot(outside), new Map([['keep', Buffer.from('outside').toString('hex')]]));
  } finally {
    fs.rmSync(top, { recursive: true, force: true });
  }
}

test('a loop in a file\'s chain is refused, naming the entry and the cluster', async () => {
  await refused(
    (dir) => fs.writeFileSync(path.join(dir, 'a.txt'), Buffer.alloc(20000, 1)),
    (disk) => {
      setFat(disk, 3, 2); // a.txt is clusters 2, 3, 4: 3 now leads back to 2
      patch(disk, DATA, Buffer.alloc(16, 9)); // and a change, so there is something to write back
    },
    'corrupt', /\/a\.txt: cluster 2 is already part of another chain/,
  );
});

test('two entries sharing a cluster (a cross-link) are refused', async () => {
  await refused(
    (dir) => {
      fs.writeFileSync(path.join(dir, 'a.txt'), Buffer.alloc(100, 1));
      fs.writeFileSync(path.join(dir, 'b.txt'), Buffer.alloc(100, 2));
    },
    (disk) => patch(disk, rootEntry(disk, 'B       TXT') + 26, u16(2)), // b.txt now starts at a.txt's cluster
    'corrupt', /\/b\.txt: cluster 2 is already part of another chain/,
  );
});

test('a chain that leaves the volume is refused', async () => {
  await refused(
    (dir) => fs.writeFileSync(path.join(dir, 'a.txt'), Buffer.alloc(10000, 1)),
    (disk) => setFat(disk, 2, 0xfff0),
    'corrupt', /cluster 65520 is outside the volume's clusters/,
  );
});

for (const name of ['..', '../escape.txt', 'sub/../../escape.txt', 'back\\slash']) {
  test(`a guest entry named ${JSON.stringify(name)} is refused and nothing is written anywhere`, async () => {
    await refused(
      (dir) => fs.writeFileSync(path.join(dir, 'a.txt'), 'a'),
      (disk) => forgeRootEntry(disk, name, Buffer.from('escaped')),
      'corrupt', /is not a single file name/,
    );
  });
}

test('a new guest file at the name of a host entry the image does not show (a link out of DIR) is refused, and the link\'s target is untouched', async () => {
  await refused(
    (dir, top) => {
      fs.mkdirSync(path.join(top, 'outside'));
      fs.writeFileSync(path.join(top, 'outside', 'keep'), 'outside');
      fs.symlinkSync(path.join(top, 'outside'), path.join(dir, 'link'));
    },
    (disk) => forgeRootEntry(disk, 'link', Buffer.from('escaped')),
    'exists', /link exists on the host and is not the image's/,
  );
});

test('a directory link swapped to point out of DIR while open: the write-back into it is refused', async () => {
  const { top, dir } = scratch();
  try {
    fs.mkdirSync(path.join(dir, 'real'));
    fs.writeFileSync(path.join(dir, 'real', 'x.txt'), 'x');
    fs.symlinkSync('real', path.join(dir, 'ln')); // inside DIR: vvfat shows it as a directory
    const outside = path.join(top, 'outside');
    fs.mkdirSync(outside);
    const node = await guestEdit(top, dir, () => {});
    // the guest grows ln/x.txt to a full sector, after the host pointed ln elsewhere
    fs.unlinkSync(path.join(dir, 'ln'));
    fs.symlinkSync(outside, path.join(dir, 'ln'));
    const disk = path.join(top, 'after.raw');
    const lnDir = Buffer.alloc(512);
    const fd = fs.openSync(disk, 'r');
    // ln and real each own one directory cluster (2 and 3 in sorted order: ln, real), x.txt's data follows
    fs.readSync(fd, lnDir, 0, 512, DATA);
    fs.closeSync(fd);
    let at = -1;
    for (let e = 0; e < 512; e += 32) if (lnDir.toString('latin1', e, e + 11) === 'X       TXT') at = e;
    assert.ok(at >= 0, 'x.txt in the first directory cluster');
    const cluster = lnDir.readUInt16LE(at + 26);
    await node.write(DATA + (cluster - 2) * CLUSTER, Buffer.alloc(512, 0x7a));
    await assert.rejects(node.close(), isTyped('io', /outside/));
    assert.deepEqual(fs.readdirSync(outside), []);
    assert.equal(fs.readFileSync(path.join(dir, 'real', 'x.txt'), 'utf8'), 'x');
  } finally {
    fs.rmSync(top, { recursive: true, force: true });
  }
});
