/**
 * Steps of the read-only formats (bochs, cloop, dmg): images made by their own
 * producers from a raw disk the scenario describes, the guest bytes judged
 * against that disk, refused writes and creation, and hostile images.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Given, Then, When, type DataTable } from '@cucumber/cucumber';
import { execa } from 'execa';
import { sha256File } from '../adapters/qemu.js';
import { missingCapability } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt, names } from './support/errors.js';
import { toolAvailable } from './support/tools.js';
import { parseSize } from './support/units.js';
import { damage, produce, producerTool, rawSource, readonlyDefect, type ReadonlyDefect, type SourceWrite } from './support/readonly-images.js';

const disks = new WeakMap<QbcWorld, { size: number; writes: SourceWrite[] }>();
const defects = new WeakMap<QbcWorld, ReadonlyDefect>();

function parseParams(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of text.split(/\s+/).filter(Boolean)) {
    const [k, v] = kv.split('=');
    if (!k || v === undefined) throw new Error(`producer parameter "${kv}" is not key=value`);
    out[k] = v;
  }
  return out;
}

function tableWrites(table: DataTable | undefined): SourceWrite[] {
  return (table?.hashes() ?? []).map((r) => ({ offset: parseSize(r.offset!), length: parseSize(r.length!), pattern: Number(r.pattern) }));
}

async function made(world: QbcWorld, size: number, format: string, tool: string, params: string, table?: DataTable): Promise<'skipped' | undefined> {
  if (producerTool(format) !== tool) throw new Error(`${format} images are made by ${producerTool(format)}, not ${tool}`);
  if (!(await toolAvailable(tool))) return world.notApplicable(`${tool}, the producer of ${format} images, is not installed`);
  const skip = world.needs(format, 'read');
  if (skip) return skip;
  const img = world.declare('image', format);
  const writes = tableWrites(table);
  await produce(format, img.filename, size, writes, parseParams(params));
  disks.set(world, { size, writes });
  return undefined;
}

Given(/^a (\d+ (?:KiB|MiB)) (bochs|cloop|dmg) image made by (\S+) from a disk written with:$/, function (this: QbcWorld, size: string, format: string, tool: string, table: DataTable) {
  return made(this, parseSize(size), format, tool, '', table);
});

Given(/^a (\d+ (?:KiB|MiB)) (bochs|cloop|dmg) image made by (\S+) with "([^"]*)" from a disk written with:$/, function (this: QbcWorld, size: string, format: string, tool: string, params: string, table: DataTable) {
  return made(this, parseSize(size), format, tool, params, table);
});

Given(/^a (\d+ (?:KiB|MiB)) (bochs|cloop|dmg) image made by (\S+) from an empty disk$/, function (this: QbcWorld, size: string, format: string, tool: string) {
  return made(this, parseSize(size), format, tool, '');
});

function diskSha256(size: number, writes: SourceWrite[]): string {
  return createHash('sha256').update(rawSource(size, writes)).digest('hex');
}

Then('the guest bytes are those of the disk it was made from', async function (this: QbcWorld) {
  const img = this.image();
  const skip = this.needs(img.format, 'read');
  if (skip) return skip;
  const disk = disks.get(this);
  assert.ok(disk, 'the scenario did not make its image from a disk');
  // without info (a third-party reader), the hash of exactly disk.size bytes still pins the size
  if (this.iut.capabilities.formats[img.format]?.includes('info')) {
    const info = await this.iut.info(img);
    assert.equal(info['virtual-size'], disk.size, 'virtual size');
  }
  assert.equal(await this.iut.guestSha256(img), diskSha256(disk.size, disk.writes), `guest bytes of ${img.filename}`);
  return undefined;
});

When('the image is probed by its bytes and name', async function (this: QbcWorld) {
  const img = this.image();
  const skip = this.needsProbing(img.format);
  if (skip) return skip;
  const info = await this.iut.info({ filename: img.filename });
  this.lastInfo = info;
  return undefined;
});

Then('it is recognised as {word}', function (this: QbcWorld, format: string) {
  assert.equal(this.lastInfo?.format, format, 'probed format');
});

When('the image is renamed to {string}', async function (this: QbcWorld, name: string) {
  const { rename } = await import('node:fs/promises');
  const img = this.image();
  const to = this.path(name);
  await rename(img.filename, to);
  img.filename = to;
});

// --- refusals ---

When('a write to the read-only image is attempted', async function (this: QbcWorld) {
  const img = this.image();
  const skip = this.needs(img.format, 'read');
  if (skip) return skip;
  this.sha256Before = await sha256File(img.filename);
  this.lastError = await attempt(() => this.iut.io(img, [{ op: 'write', offset: 0, length: 512, pattern: 0x5a }]));
  return undefined;
});

Then('the write is refused naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('the write', this.lastError, [word]);
});

When(/^a (\d+ (?:KiB|MiB)) (bochs|cloop|dmg) image creation is attempted$/, async function (this: QbcWorld, size: string, format: string) {
  const skip = this.needs(format, 'info');
  if (skip) return skip;
  // the refusal is that of a create that exists (qemu-img create) turning down a read-only format
  if (!Object.values(this.iut.capabilities.formats).some((ops) => ops.includes('create'))) {
    return this.notApplicable(`${this.iut.name} creates no images at all, so it has no create to refuse ${format} with`);
  }
  const img = this.declare('image', format);
  this.lastTarget = img;
  this.lastError = await attempt(() => this.iut.create({ format, filename: img.filename, size: parseSize(size) }));
  return undefined;
});

Then('the creation is refused naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('creation', this.lastError, [word]);
});

// --- hostile images ---

Given(/^a (bochs|cloop|dmg) image whose (.+)$/, async function (this: QbcWorld, format: string, description: string) {
  const defect = readonlyDefect(format, description);
  const tool = producerTool(format);
  if (!(await toolAvailable(tool))) return this.notApplicable(`${tool} is needed to make the valid image that is then damaged`);
  const skip = this.needs(format, 'info');
  if (skip) return skip;
  const img = this.declare('image', format);
  // A 1 MiB disk with data in its first and last 64 KiB, so tables have several live entries.
  await produce(format, img.filename, 1 << 20, [{ offset: 0, length: 65536, pattern: 0x11 }, { offset: (1 << 20) - 65536, length: 65536, pattern: 0x22 }], format === 'cloop' ? { block: '16384', level: '1' } : format === 'dmg' ? { layout: 'zlib', chunk: '64' } : {});
  await damage(img.filename, defect);
  defects.set(this, defect);
  this.sha256Before = await sha256File(img.filename);
  return undefined;
});

When('the whole image is read', async function (this: QbcWorld) {
  const img = this.image();
  const skip = this.needs(img.format, 'read');
  if (skip) return skip;
  this.lastError = await attempt(() => this.iut.guestSha256(img));
  return undefined;
});

Then('the read is refused naming the damaged field', function (this: QbcWorld) {
  const defect = defects.get(this);
  assert.ok(defect, 'no defect was applied to the image');
  assertRefusalNaming('reading the image', this.lastError, []);
  const msg = (this.lastError as Error).message;
  assert.ok(defect.words.some((w) => names(msg, w)), `the read failed, but the message names none of ${defect.words.map((w) => `"${w}"`).join(', ')}:\n${msg}`);
});

Then('the check reports that the format has no check', function (this: QbcWorld) {
  const r = this.lastCheck;
  assert.ok(r, 'the image was not checked');
  assert.equal(r.exitCode, 63, `qemu-img check exits 63 for a format without a check; got ${JSON.stringify(r)}`);
});

Then('these ranges read back in one open:', async function (this: QbcWorld, table: DataTable) {
  const img = this.image();
  const skip = this.needs(img.format, 'read');
  if (skip) return skip;
  const reads = table.hashes().map((r) => ({ op: 'read' as const, offset: parseSize(r.offset!), length: parseSize(r.length!), pattern: r.pattern === 'zeroes' ? 0 : Number(r.pattern) }));
  try {
    await this.iut.io(img, reads);
  } catch (err) {
    throw new Error(`the ranges do not all read back as the disk: ${(err as Error).message}`);
  }
  return undefined;
});

Then('dmg2img extracts the disk it was made from', async function (this: QbcWorld) {
  if (!(await toolAvailable('dmg2img'))) return this.notApplicable('dmg2img is not installed');
  const disk = disks.get(this);
  assert.ok(disk, 'the scenario did not make its image from a disk');
  const out = this.path('dmg2img.raw');
  await execa('dmg2img', ['-s', this.image().filename, out], { timeout: 60_000, stdin: 'ignore' });
  assert.equal(createHash('sha256').update(await readFile(out)).digest('hex'), diskSha256(disk.size, disk.writes), 'the bytes dmg2img extracted');
  return undefined;
});
