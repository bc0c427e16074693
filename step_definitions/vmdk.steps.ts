// vmdk steps: the descriptor of a created image, images compared outside their CIDs,
// descriptors naming extents, hostile images.
import { Given, Then, When, type DataTable } from '@cucumber/cucumber';
import assert from 'node:assert/strict';
import { open, truncate, writeFile } from 'node:fs/promises';
import type { IoCommand } from '../adapters/adapter.js';
import { sha256File } from '../adapters/qemu.js';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt, names } from './support/errors.js';
import { toolAvailable } from './support/tools.js';
import { parseSize } from './support/units.js';
import { UNBOUNDED_IN_QEMU, makeVmdkBase, vmdkDefect, vmdkDifferences, type VmdkDefect } from './support/vmdk-images.js';

/** The descriptor of a vmdk: the whole file when it starts as text, else the embedded one (sparse header fields descriptorOffset/Size, in sectors). */
async function vmdkDescriptor(filename: string): Promise<string> {
  const fh = await open(filename, 'r');
  try {
    const head = Buffer.alloc(512);
    await fh.read(head, 0, 512, 0);
    if (head.readUInt32LE(0) !== 0x564d444b) {
      const text = Buffer.alloc(64 * 1024); // bounded: descriptors qemu writes are far smaller
      const { bytesRead } = await fh.read(text, 0, text.length, 0);
      return text.subarray(0, bytesRead).toString('latin1');
    }
    const offset = Number(head.readBigUInt64LE(28)) * 512;
    const size = Math.min(Number(head.readBigUInt64LE(36)) * 512, 64 * 1024);
    const text = Buffer.alloc(size);
    const { bytesRead } = await fh.read(text, 0, size, offset);
    return text.subarray(0, bytesRead).toString('latin1').replace(/\0+$/, '');
  } finally {
    await fh.close();
  }
}

Then('the vmdk descriptor has the line {string}', async function (this: QbcWorld, line: string) {
  assert.ok(this.lastTarget, 'no image was created');
  const text = await vmdkDescriptor(this.lastTarget.filename);
  const lines = text.split('\n').map((l) => l.trim());
  assert.ok(lines.includes(line), `descriptor of ${this.lastTarget.filename} lacks ${JSON.stringify(line)}:\n${text}`);
});

// --- images written in separate opens, compared with the oracle's outside the CIDs ---

interface VmdkHistory { size: number; options: string; writes: IoCommand[] }
const vmdkHistory = new WeakMap<QbcWorld, VmdkHistory>();

Given('a {size} vmdk image made with {string} and written in separate opens:', async function (this: QbcWorld, size: number, options: string, table: DataTable) {
  const skip = this.needs('vmdk', 'write');
  if (skip) return skip;
  const img = this.declare('image', 'vmdk');
  await this.iut.create({ format: 'vmdk', filename: img.filename, size, ...(options ? { options } : {}) });
  const writes: IoCommand[] = [];
  for (const row of table.hashes()) {
    const offset = parseSize(row.offset);
    const length = parseSize(row.length);
    const cmd: IoCommand = row.pattern === 'zeroes' ? { op: 'zero', offset, length } : { op: 'write', offset, length, pattern: Number(row.pattern) };
    await this.iut.io(img, [cmd]);
    writes.push(cmd);
  }
  vmdkHistory.set(this, { size, options, writes });
  return undefined;
});

Then('the oracle makes the same vmdk files apart from the CIDs', async function (this: QbcWorld) {
  const oracle = this.oracle;
  if (!oracle) return this.notApplicable('no oracle configured');
  const skip = this.needs('vmdk', 'write', oracle);
  if (skip) return skip;
  const h = vmdkHistory.get(this);
  assert.ok(h, 'the scenario did not record how its image was made');
  const theirs = this.path('oracle-made.vmdk');
  await oracle.create({ format: 'vmdk', filename: theirs, size: h.size, ...(h.options ? { options: h.options } : {}) });
  for (const w of h.writes) await oracle.io({ filename: theirs, format: 'vmdk' }, [w]);
  assert.deepEqual(await vmdkDifferences(this.image().filename, theirs), [], `${this.iut.name} and ${oracle.name} made different vmdk files`);
  return undefined;
});

// --- a descriptor naming extents of its own choosing ---

Given('a vmdk descriptor file naming the extents:', async function (this: QbcWorld, table: DataTable) {
  const skip = this.needs('vmdk', 'write');
  if (skip) return skip;
  const img = this.declare('image', 'vmdk');
  const lines: string[] = [];
  for (const [i, row] of table.hashes().entries()) {
    const size = parseSize(row.size);
    if (row.type === 'FLAT') {
      const name = `image-e${i + 1}.raw`;
      await writeFile(this.path(name), '');
      await truncate(this.path(name), size);
      lines.push(`RW ${size / 512} FLAT "${name}" 0\n`);
    } else {
      // a sparse extent is a monolithicSparse file (its own descriptor is not read)
      const name = `image-e${i + 1}.vmdk`;
      await this.iut.create({ format: 'vmdk', filename: this.path(name), size });
      lines.push(`RW ${size / 512} SPARSE "${name}"\n`);
    }
  }
  await writeFile(img.filename, '# Disk DescriptorFile\nversion=1\nCID=2468ace0\nparentCID=ffffffff\ncreateType="twoGbMaxExtentSparse"\n\n# Extent description\n' +
    lines.join('') + '\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = "4"\nddb.adapterType = "ide"\n');
  return undefined;
});

Then('the image info lists {int} extent(s)', async function (this: QbcWorld, n: number) {
  const info = await this.iut.info(this.image());
  const extents = (info['format-specific']?.data as { extents?: unknown[] } | undefined)?.extents ?? [];
  assert.equal(extents.length, n, `extents in ${JSON.stringify(info['format-specific'])}`);
});

// --- hostile images ---

Given(/^a vmdk image whose (.+)$/, async function (this: QbcWorld, description: string) {
  const d = vmdkDefect(description);
  for (const tool of ['qemu-img', 'qemu-io']) {
    if (!(await toolAvailable(tool))) return this.notApplicable(`${tool} is needed to make the valid image that is then damaged`);
  }
  // qemu 7.2 opens whatever such a descriptor names, for minutes: the capability says who bounds it
  const skip = this.needs(UNBOUNDED_IN_QEMU.has(description) ? 'vmdk+bounds' : 'vmdk', 'read');
  if (skip) return skip;
  const img = this.declare('image', 'vmdk');
  await makeVmdkBase(d.base, img.filename);
  await d.apply(img.filename);
  vmdkDefects.set(this, d);
  this.sha256Before = await sha256File(img.filename);
  return undefined;
});

const vmdkDefects = new WeakMap<QbcWorld, VmdkDefect>();

Then('the vmdk open is refused naming the defect', function (this: QbcWorld) {
  const d = vmdkDefects.get(this);
  assert.ok(d, 'no vmdk defect was applied');
  assertRefusalNaming('opening', this.lastError, []);
  const msg = (this.lastError as Error).message;
  assert.ok(d.words.some((w) => names(msg, w)), `opening failed, but the message names none of ${d.words.map((w) => `"${w}"`).join(', ')}:\n${msg}`);
});

When('the vmdk image is checked', async function (this: QbcWorld) {
  const skip = this.needs('vmdk', 'check');
  if (skip) return skip;
  this.lastError = await attempt(() => this.iut.check(this.image()));
  return undefined;
});

Then('the check fails naming {string}', function (this: QbcWorld, word: string) {
  // qemu-img's vmdk check stops at the first bad grain and fails as a whole (exit 1, "Check failed")
  assertRefusalNaming('the check', this.lastError, [word]);
});
