/**
 * Virtual FAT (vvfat): a directory made in the scenario's scratch directory is
 * opened as fat:DIR (or json:/option forms; {dir} in a name is that directory),
 * converted to a raw image by the implementation or the oracle, and the raw
 * image is judged by tools that know FAT, not by the implementations:
 * fsck.fat -n, mtools' mcopy -s (every file byte-identical), mlabel and mdir.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Given, Then, When } from '@cucumber/cucumber';
import { execa } from 'execa';
import type { Adapter } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt } from './support/errors.js';
import { bootSector, diffTrees, extractFat, fatLabel, fsckFat, listTree, makeTree, volumeOffset } from './support/vvfat-tree.js';
import { changedRuns, cutOut, editWithMtools, forgeRootEntry } from './support/vvfat-edit.js';

interface VvfatState {
  dir: string;
  raw?: string;
  /** the raw image as a guest changed it (mtools or a forged entry) */
  edited?: string;
  error?: unknown;
  tried?: string;
  /** everything in the scratch directory outside DIR, before a write-back */
  outside?: Map<string, string>;
}

const states = new WeakMap<QbcWorld, VvfatState>();

function state(world: QbcWorld): VvfatState {
  const s = states.get(world);
  if (!s) throw new Error('no vvfat directory in this scenario');
  return s;
}

function newDir(world: QbcWorld): VvfatState {
  const dir = world.path('fatdir');
  fs.mkdirSync(dir, { recursive: true });
  const s: VvfatState = { dir };
  states.set(world, s);
  return s;
}

function nameOf(world: QbcWorld, text: string): string {
  return text.replaceAll('{dir}', state(world).dir);
}

function role(world: QbcWorld, who: string): Adapter | 'skipped' {
  const a = who === 'implementation' ? world.iut : who === 'oracle' ? world.oracle : undefined;
  if (a === undefined) throw new Error(`unknown role "${who}" (implementation or oracle)`);
  if (a === null) return world.notApplicable('no oracle (--oracle none)');
  if (!a.capabilities.protocols.includes('vvfat')) return world.notApplicable(`${a.name} does not implement the vvfat protocol`);
  return world.needs('raw', 'convert', a) ?? a;
}

Given('a vvfat directory tree of {int} files in nested directories', function (this: QbcWorld, count: number) {
  makeTree(newDir(this).dir, count);
});

Given('an empty vvfat directory', function (this: QbcWorld) {
  newDir(this);
});

Given('a vvfat directory with a file named {string} of {size}', function (this: QbcWorld, name: string, size: number) {
  const s = states.get(this) ?? newDir(this);
  const buf = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + name.length) & 0xff;
  fs.mkdirSync(path.dirname(path.join(s.dir, name)), { recursive: true });
  fs.writeFileSync(path.join(s.dir, name), buf);
});

When('the {word} converts {string} to a raw image', async function (this: QbcWorld, who: string, name: string) {
  const a = role(this, who);
  if (a === 'skipped') return a;
  const s = state(this);
  s.raw = this.path(`vvfat-${who}.raw`);
  await a.convert({ source: { filename: nameOf(this, name) }, target: { filename: s.raw, format: 'raw' } });
  return undefined;
});

When('the {word} tries to convert {string} to a raw image', async function (this: QbcWorld, who: string, name: string) {
  const a = role(this, who);
  if (a === 'skipped') return a;
  const s = state(this);
  s.raw = this.path(`vvfat-${who}.raw`);
  s.tried = `${a.name}: convert ${nameOf(this, name)}`;
  s.error = await attempt(() => a.convert({ source: { filename: nameOf(this, name) }, target: { filename: s.raw!, format: 'raw' } }));
  return undefined;
});

When('the {word} tries to read the info of {string}', async function (this: QbcWorld, who: string, name: string) {
  const a = role(this, who);
  if (a === 'skipped') return a;
  const s = state(this);
  s.tried = `${a.name}: info ${nameOf(this, name)}`;
  s.error = await attempt(() => a.info({ filename: nameOf(this, name) }));
  return undefined;
});

Then('the vvfat attempt is refused with {string}', function (this: QbcWorld, words: string) {
  const s = state(this);
  assertRefusalNaming(s.tried ?? 'the attempt', s.error, [nameOf(this, words)]);
  if (s.raw && s.tried?.includes('convert') && fs.existsSync(s.raw) && fs.statSync(s.raw).size > 0) {
    throw new Error(`the refused convert left a ${fs.statSync(s.raw).size}-byte output ${s.raw}`);
  }
});

async function showsInfo(world: QbcWorld, who: string, name: string, imageOpts: boolean, format: string, size: number, shown: string): Promise<'skipped' | undefined> {
  const a = role(world, who);
  if (a === 'skipped') return a;
  const info = await a.info({ filename: nameOf(world, name), imageOpts });
  if (info.format !== format) throw new Error(`${a.name} shows format ${String(info.format)}, expected ${format}`);
  if (info['virtual-size'] !== size) throw new Error(`${a.name} shows a virtual size of ${String(info['virtual-size'])}, expected ${size}`);
  if (info.filename !== nameOf(world, shown)) throw new Error(`${a.name} names the image\n  ${String(info.filename)}\nexpected\n  ${nameOf(world, shown)}`);
  return undefined;
}

Then('the {word} shows {string} with format {string}, a virtual size of {size} and the name {string}', function (this: QbcWorld, who: string, name: string, format: string, size: number, shown: string) {
  return showsInfo(this, who, name, false, format, size, shown);
});

Then('the {word} shows the option list {string} with format {string}, a virtual size of {size} and the name {string}', function (this: QbcWorld, who: string, name: string, format: string, size: number, shown: string) {
  return showsInfo(this, who, name, true, format, size, shown);
});

function raw(world: QbcWorld): string {
  const s = state(world);
  if (!s.raw || !fs.existsSync(s.raw)) throw new Error('no raw image was converted in this scenario');
  return s.raw;
}

Then('the raw image is {size} long', function (this: QbcWorld, size: number) {
  const got = fs.statSync(raw(this)).size;
  if (got !== size) throw new Error(`the raw image is ${got} bytes, expected ${size}`);
});

Then('the raw image has its FAT volume at byte {int}', function (this: QbcWorld, offset: number) {
  const got = volumeOffset(raw(this));
  if (got !== offset) throw new Error(`the FAT volume starts at byte ${got}, expected ${offset}`);
});

Then('the raw image passes fsck.fat -n', async function (this: QbcWorld) {
  const r = await fsckFat(raw(this), this.scratch);
  if (!r.ok) throw new Error(`fsck.fat -n found problems:\n${r.output}`);
});

Then('every file of the directory extracts byte-identical from the raw image with mtools', async function (this: QbcWorld) {
  const out = this.path('extracted');
  fs.rmSync(out, { recursive: true, force: true });
  await extractFat(raw(this), out);
  const d = diffTrees(listTree(state(this).dir), listTree(out));
  if (d) throw new Error(`mcopy -s does not give back the directory:\n${d.split('\n').slice(0, 20).join('\n')}`);
});

Then('the raw image\'s FAT is FAT{int} by its cluster count, with {int} sectors per cluster and the type string {string}', function (this: QbcWorld, bits: number, spc: number, type: string) {
  const b = bootSector(raw(this));
  const byCount = b.clusters < 4085 ? 12 : b.clusters < 65525 ? 16 : 32;
  if (byCount !== bits) throw new Error(`the volume has ${b.clusters} clusters, which makes it FAT${byCount}, expected FAT${bits}`);
  if (b.sectorsPerCluster !== spc) throw new Error(`the boot sector says ${b.sectorsPerCluster} sectors per cluster, expected ${spc}`);
  if (b.typeString.trim() !== type) throw new Error(`the boot sector's type string is "${b.typeString}", expected "${type}"`);
});

Then('the raw image\'s volume label is {string}', async function (this: QbcWorld, label: string) {
  const got = await fatLabel(raw(this));
  if (got !== label) throw new Error(`mlabel reads the label "${got}", expected "${label}"`);
});

Then('mdir lists {string} in the raw image with the short name {string}', async function (this: QbcWorld, long: string, short: string) {
  const img = raw(this);
  const r = await execa('mdir', ['-a', '-i', `${img}@@${volumeOffset(img)}`, '::'], { reject: false, timeout: 30_000, env: { ...process.env, MTOOLS_SKIP_CHECK: '1' }, all: true });
  const [base, ext = ''] = short.split('.');
  const want = `${base!.padEnd(8)} ${ext.padEnd(3)}`;
  const line = String(r.all).split('\n').find((l) => l.endsWith(`  ${long}`));
  if (!line) throw new Error(`mdir does not list "${long}":\n${String(r.all)}`);
  if (!line.startsWith(want)) throw new Error(`mdir lists "${long}" as\n  ${line}\nexpected the short name "${want}"`);
});

/** The adapter for a fat:rw: write, or 'skipped' when it does not write vvfat back. */
function rwRole(world: QbcWorld, who: string): Adapter | 'skipped' {
  const a = role(world, who);
  if (a === 'skipped') return a;
  if (!a.capabilities.protocols.includes('vvfat-rw')) {
    return world.notApplicable(`${a.name} does not write vvfat images back to the directory${a.capabilities.notes?.['vvfat-rw'] ? `: ${a.capabilities.notes['vvfat-rw']}` : ''}`);
  }
  return a;
}

When('the {word} writes {size} of pattern {pattern} at offset {int} of {string} as a raw image', async function (this: QbcWorld, who: string, length: number, pattern: number, offset: number, name: string) {
  const a = rwRole(this, who);
  if (a === 'skipped') return a;
  await a.io({ filename: nameOf(this, name), format: 'raw' }, [{ op: 'write', offset, length, pattern }]);
  return undefined;
});

When('the {word} tries to write {size} of pattern {pattern} at offset {int} of {string} as a raw image', async function (this: QbcWorld, who: string, length: number, pattern: number, offset: number, name: string) {
  const a = rwRole(this, who);
  if (a === 'skipped') return a;
  const s = state(this);
  s.tried = `${a.name}: io ${nameOf(this, name)}`;
  s.error = await attempt(() => a.io({ filename: nameOf(this, name), format: 'raw' }, [{ op: 'write', offset, length, pattern }]));
  return undefined;
});

// --- rw: a guest's edit, made by mtools (or forged) on a raw copy, written back sector by sector ---

async function editedCopy(world: QbcWorld): Promise<string> {
  const s = state(world);
  if (!s.edited) {
    s.edited = world.path('vvfat-edited.raw');
    await execa('cp', ['--sparse=always', raw(world), s.edited]); // 504 MiB, nearly all holes
  }
  return s.edited;
}

When('the raw image is edited with mtools: {string}', async function (this: QbcWorld, edits: string) {
  await editWithMtools(await editedCopy(this), edits, this.scratch);
});

When('a file entry named {string} holding {string} is forged into the raw image\'s root directory', async function (this: QbcWorld, name: string, text: string) {
  forgeRootEntry(await editedCopy(this), name, Buffer.from(text));
});

/**
 * Everything below the scratch directory except DIR, by kind, size and mtime
 * (the raw images there are too big to hold): what a write-back must never touch.
 */
function outsideDir(world: QbcWorld): Map<string, string> {
  const dir = state(world).dir;
  const out = new Map<string, string>();
  const walk = (at: string): void => {
    for (const e of fs.readdirSync(at, { withFileTypes: true })) {
      const p = path.join(at, e.name);
      if (p === dir) continue;
      const st = fs.lstatSync(p);
      out.set(path.relative(world.scratch, p), e.isDirectory() ? 'directory' : `${st.size} bytes, modified ${st.mtimeMs}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(world.scratch);
  return out;
}

async function writeBackEdits(world: QbcWorld, who: string, name: string, trying: boolean): Promise<'skipped' | undefined> {
  const a = rwRole(world, who);
  if (a === 'skipped') return a;
  const s = state(world);
  const runs = changedRuns(raw(world), await editedCopy(world));
  if (runs.length === 0) throw new Error('the edit changed no sector of the raw image');
  const chunks = world.path('vvfat-chunks');
  fs.mkdirSync(chunks, { recursive: true });
  const commands = runs.map((r, i) => {
    const file = path.join(chunks, `run-${i}`);
    cutOut(s.edited!, r.offset, r.length, file);
    return { op: 'write-file' as const, offset: r.offset, length: r.length, file };
  });
  world.attach(`${runs.length} writes: ${runs.map((r) => `${r.length} bytes at ${r.offset}`).join(', ')}`, 'text/plain');
  s.outside = outsideDir(world);
  s.tried = `${a.name}: io ${nameOf(world, name)}`;
  const io = (): Promise<unknown> => a.io({ filename: nameOf(world, name), format: 'raw' }, commands);
  if (trying) s.error = await attempt(io);
  else await io();
  return undefined;
}

When('the {word} writes the changed sectors back through {string}', function (this: QbcWorld, who: string, name: string) {
  return writeBackEdits(this, who, name, false);
});

When('the {word} tries to write the changed sectors back through {string}', function (this: QbcWorld, who: string, name: string) {
  return writeBackEdits(this, who, name, true);
});

Then('the directory holds exactly the files mtools extracts from the edited image', async function (this: QbcWorld) {
  const s = state(this);
  const out = this.path('extracted-edited');
  fs.rmSync(out, { recursive: true, force: true });
  await extractFat(await editedCopy(this), out);
  const d = diffTrees(listTree(out), listTree(s.dir));
  if (d) throw new Error(`the directory after the write-back is not the edited volume's tree:\n${d.split('\n').slice(0, 20).join('\n')}`);
});

Then('nothing outside the directory was written', function (this: QbcWorld) {
  const s = state(this);
  if (!s.outside) throw new Error('no write-back was tried in this scenario');
  const now = outsideDir(this);
  const d = [...new Set([...s.outside.keys(), ...now.keys()])].filter((k) => s.outside!.get(k) !== now.get(k));
  if (d.length > 0) throw new Error(`the write-back changed what is outside ${s.dir}:\n${d.map((k) => `  ${k}: ${s.outside!.get(k) ?? 'absent'} -> ${now.get(k) ?? 'absent'}`).join('\n')}`);
});

Then('the directory holds only {string}', function (this: QbcWorld, names: string) {
  const got = [...listTree(state(this).dir).keys()].sort();
  const want = names.split(',').map((n) => n.trim()).sort();
  if (got.join('\n') !== want.join('\n')) throw new Error(`the directory holds ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
});

Then('the host file {string} of the directory holds {size} of pattern {pattern}', function (this: QbcWorld, name: string, length: number, pattern: number) {
  const got = fs.readFileSync(path.join(state(this).dir, name));
  if (!got.equals(Buffer.alloc(length, pattern))) {
    throw new Error(`${name} holds ${got.length} bytes, first ${got.subarray(0, 16).toString('hex')}, expected ${length} bytes of 0x${pattern.toString(16)}`);
  }
});

// --- FAT file-system readers (capability files.fat: mtools and fsck.fat as the implementation) ---

function fileReader(world: QbcWorld, op: 'extract' | 'check'): Adapter | 'skipped' {
  const a = world.iut;
  if (!a.capabilities.files?.fat?.includes(op)) return world.notApplicable(`${a.name} does not ${op === 'extract' ? 'extract the files of' : 'check'} FAT volumes (capability files.fat)`);
  if (op === 'extract' && !a.extractFiles) return world.notApplicable(`${a.name} declares files.fat extract but has no extractFiles`);
  if (op === 'check' && !a.checkFilesystem) return world.notApplicable(`${a.name} declares files.fat check but has no checkFilesystem`);
  return a;
}

Given('the implementation reads FAT file systems', function (this: QbcWorld) {
  const a = fileReader(this, 'extract');
  return a === 'skipped' ? a : fileReader(this, 'check') === 'skipped' ? 'skipped' : undefined;
});

Then('the implementation extracts every file of the directory byte-identical from the raw image', async function (this: QbcWorld) {
  const a = fileReader(this, 'extract');
  if (a === 'skipped') return a;
  const out = this.path('extracted-by-implementation');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out);
  await a.extractFiles!({ filename: raw(this), format: 'raw' }, out);
  const d = diffTrees(listTree(state(this).dir), listTree(out));
  if (d) throw new Error(`${a.name} does not give back the directory:\n${d.split('\n').slice(0, 20).join('\n')}`);
  return undefined;
});

Then('the implementation\'s check finds the raw image\'s FAT volume {word}', async function (this: QbcWorld, verdict: string) {
  if (verdict !== 'clean' && verdict !== 'damaged') throw new Error(`unknown verdict "${verdict}" (clean or damaged)`);
  const a = fileReader(this, 'check');
  if (a === 'skipped') return a;
  const before = fs.readFileSync(raw(this));
  const r = await a.checkFilesystem!({ filename: raw(this), format: 'raw' });
  if (!before.equals(fs.readFileSync(raw(this)))) throw new Error(`${a.name}'s check changed the image`);
  if (r.clean !== (verdict === 'clean')) throw new Error(`${a.name} finds the volume ${r.clean ? 'clean' : 'damaged'}, expected ${verdict}:\n${r.output}`);
  return undefined;
});

/** Frees clusters 2 and 3 in the first FAT copy only: the second copy disagrees, and the files there lose their chains. */
When('the first FAT of the raw image marks clusters 2 and 3 free', function (this: QbcWorld) {
  const img = raw(this);
  const b = bootSector(img);
  const fd = fs.openSync(img, 'r+');
  try {
    const boot = Buffer.alloc(512);
    const vol = volumeOffset(img);
    fs.readSync(fd, boot, 0, 512, vol);
    const fat = vol + boot.readUInt16LE(14) * 512;
    // FAT12 packs entries 2 and 3 into bytes 3..5; FAT16 has them at bytes 4..7
    if (b.clusters < 4085) fs.writeSync(fd, Buffer.alloc(3), 0, 3, fat + 3);
    else fs.writeSync(fd, Buffer.alloc(4), 0, 4, fat + 4);
  } finally {
    fs.closeSync(fd);
  }
});
