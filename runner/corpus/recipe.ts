/**
 * Corpus recipes: how each golden image is made, in the suite's own terms
 * (the Adapter's CreateRequest fields, IoCommands and a convert step), so the
 * same recipe can be replayed by real qemu-img and by any implementation.
 */
import { readFile } from 'node:fs/promises';
import type { IoCommand, SecretObject } from '../../adapters/adapter.js';

export interface RecipeCreate {
  format: string;
  /** bytes; omitted when the backing file gives the size */
  size?: number;
  /** `-o` text exactly as a user types it */
  options?: string;
  /** relative name, resolved next to the new image (so the corpus can move) */
  backingFile?: string;
  backingFormat?: string;
}

export interface RecipeConvert {
  /** target format; the converted image is the golden image */
  format: string;
  /** `-o` for the target */
  options?: string;
  /** `-c` */
  compress?: boolean;
}

/**
 * The I/O is done by a writer that is killed before it closes the image
 * (qemu-io ... -c abort), which leaves what a host crash would leave.
 */
export interface RecipeCrash {
  /** qemu-io -t; writeback keeps metadata in caches that never reach the disk */
  cache: 'writeback' | 'writethrough';
  /** extra qcow2 open options (e.g. a tiny refcount cache that forces early evictions) */
  openOptions?: Record<string, string>;
}

/**
 * A field qemu-img fills with a random or time-dependent value (a UUID, a
 * timestamp, a vmdk CID) or a checksum over such a field. Byte identity is
 * judged with every mask's bytes zeroed in both files.
 */
export interface RecipeMask {
  /** the format's own name for the field, e.g. vdi.uuid_image */
  field: string;
  /** byte offset; negative counts from the end of the file (footers) */
  offset?: number;
  length?: number;
  /** instead of offset/length: a regular expression over the file read as latin1; matches are zeroed */
  regex?: string;
  /**
   * With regex: cut each match out of the NUL-terminated text it sits in (the
   * text's later bytes move back, zeroes fill its end) instead of zeroing it, for
   * random fields of varying width such as a vmdk CID (unpadded hex).
   */
  cut?: boolean;
  /** the extra file of a several-file image the field is in (default: the image file) */
  file?: string;
  /**
   * This field is a checksum over a range that holds masked fields (a vpc footer's,
   * a vhdx header's CRC-32C): after masking it is recomputed over the masked bytes
   * (this field counted as zero), but only when the file's own value was right, so
   * a wrong checksum still shows as a difference.
   */
  checksum?: RecipeMaskChecksum;
}

export interface RecipeMaskChecksum {
  /** vpc: one's complement of the byte sum, big endian u32; crc32c: CRC-32C, little endian u32 */
  algorithm: 'vpc' | 'crc32c';
  /** the range summed; a negative offset counts from the end of the file */
  offset: number;
  length: number;
}

/**
 * An image made by a producer other than qemu-img (bximage, create_compressed_fs,
 * cryptsetup, the reference's own fixture writers). Arguments go to the command
 * as an array (never a shell); {image}, {source}, {dir} and {repo} are replaced by the
 * golden image's path, the raw source's path and the scratch directory.
 */
export interface RecipeProduce {
  command: string;
  args: string[];
  /** a raw source image made first with qemu-img create and qemu-io writes, for producers that read one */
  source?: { size: number; io?: IoCommand[] };
  /** small files written into the scratch directory first (a key file, say): plain name -> text */
  files?: Record<string, string>;
}

export interface Recipe {
  id: string;
  description: string;
  /** @spec ids of the manual / 7.2 items the image exercises */
  spec: string[];
  tags: string[];
  create: RecipeCreate;
  io?: IoCommand[];
  crash?: RecipeCrash;
  convert?: RecipeConvert;
  /** qemu-img 7.2 makes the same bytes every time and byte identity is a fair demand */
  deterministic: boolean;
  /** why not deterministic, or why reproduction cannot be asked of an implementation */
  reason?: string;
  /** ids of recipes whose images this one needs (backing files) */
  depends?: string[];
  /** random fields excluded from byte identity (the manifest repeats them) */
  mask?: RecipeMask[];
  /** made by another producer instead of qemu-img create (create then only names format and size) */
  produce?: RecipeProduce;
  /**
   * The other files the image is made of, as qemu-img names them next to it (a
   * vmdk descriptor's extents: NAME-flat.vmdk, NAME-s001.vmdk, ...). Recorded,
   * staged and compared with the image file.
   */
  extraFiles?: string[];
  /**
   * Secret objects of an encrypted image: id -> passphrase. qemu-img gets each as
   * `--object secret,id=ID,file=PATH` (a 0600 file, never data= on a command line); the
   * image opens with the secret its options name (key-secret= / encrypt.key-secret=).
   */
  secrets?: Record<string, string>;
}

/** The secrets and key-secret id an encrypted recipe's image opens with (undefined: not encrypted). */
export function recipeKey(r: Pick<Recipe, 'create' | 'convert' | 'secrets'>): { secrets: SecretObject[]; keySecret: string } | undefined {
  if (!r.secrets) return undefined;
  const opts = r.convert ? r.convert.options : r.create.options;
  const m = /(?:^|,)(?:encrypt\.)?key-secret=([^,]+)/.exec(opts ?? '');
  if (!m) return undefined;
  return { secrets: Object.entries(r.secrets).map(([id, data]) => ({ id, data })), keySecret: m[1] };
}

const FORMAT_EXT: Record<string, string> = { raw: 'raw', qcow2: 'qcow2' };

export function extensionOf(format: string): string {
  return FORMAT_EXT[format] ?? format;
}

/** Format of the golden image: the convert target when there is one. */
export function imageFormat(r: Recipe): string {
  return r.convert ? r.convert.format : r.create.format;
}

export function imageFileName(r: Recipe): string {
  return `${r.id}.${extensionOf(imageFormat(r))}`;
}

export class RecipeError extends Error {
  constructor(readonly recipe: string, readonly field: string, message: string) {
    super(`recipe ${recipe}: ${field}: ${message}`);
    this.name = 'RecipeError';
  }
}

const ID_RE = /^[a-z0-9][a-z0-9.-]*$/;
const FORMAT_RE = /^[a-z][a-z0-9]*$/;
const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function isUint(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function checkIo(id: string, io: unknown, i: number): void {
  const f = `io[${i}]`;
  if (typeof io !== 'object' || io === null) throw new RecipeError(id, f, 'must be an object');
  const c = io as Record<string, unknown>;
  if (!['write', 'zero', 'discard', 'read'].includes(c.op as string)) {
    throw new RecipeError(id, `${f}.op`, `${String(c.op)} is not one of write, zero, discard, read`);
  }
  if (!isUint(c.offset)) throw new RecipeError(id, `${f}.offset`, 'must be a non-negative integer');
  if (!isUint(c.length) || c.length === 0) throw new RecipeError(id, `${f}.length`, 'must be a positive integer');
  if (c.op === 'write' || c.op === 'read') {
    if (!isUint(c.pattern) || c.pattern > 255) throw new RecipeError(id, `${f}.pattern`, 'must be a byte 0..255');
  }
}

function checkMask(id: string, m: RecipeMask, i: number): void {
  const f = `mask[${i}]`;
  if (typeof m !== 'object' || m === null || typeof m.field !== 'string' || !m.field) throw new RecipeError(id, `${f}.field`, 'required');
  if (m.regex !== undefined) {
    if (m.offset !== undefined || m.length !== undefined) throw new RecipeError(id, f, 'regex or offset/length, not both');
    try {
      new RegExp(m.regex, 'g');
    } catch (e) {
      throw new RecipeError(id, `${f}.regex`, (e as Error).message);
    }
  } else {
    if (!Number.isSafeInteger(m.offset)) throw new RecipeError(id, `${f}.offset`, 'an integer (negative: from the end)');
    if (!isUint(m.length) || m.length === 0) throw new RecipeError(id, `${f}.length`, 'a positive integer');
  }
  if (m.cut !== undefined && (typeof m.cut !== 'boolean' || m.regex === undefined)) throw new RecipeError(id, `${f}.cut`, 'a boolean, with regex only');
  if (m.file !== undefined && !FILE_NAME_RE.test(m.file)) throw new RecipeError(id, `${f}.file`, 'a plain file name');
  if (m.checksum !== undefined) {
    const c = m.checksum;
    if (m.regex !== undefined || m.length !== 4) throw new RecipeError(id, `${f}.checksum`, 'a checksum mask is a 4-byte offset/length field');
    if (c.algorithm !== 'vpc' && c.algorithm !== 'crc32c') throw new RecipeError(id, `${f}.checksum.algorithm`, 'vpc or crc32c');
    if (!Number.isSafeInteger(c.offset)) throw new RecipeError(id, `${f}.checksum.offset`, 'an integer (negative: from the end)');
    if (!isUint(c.length) || c.length === 0) throw new RecipeError(id, `${f}.checksum.length`, 'a positive integer');
  }
}

function checkProduce(id: string, r: Recipe): void {
  const p = r.produce!;
  if (typeof p.command !== 'string' || !p.command) throw new RecipeError(id, 'produce.command', 'required');
  if (!Array.isArray(p.args) || !p.args.every((a) => typeof a === 'string')) throw new RecipeError(id, 'produce.args', 'an array of strings');
  if (!p.args.some((a) => a.includes('{image}'))) throw new RecipeError(id, 'produce.args', 'must name {image}, the file the producer writes');
  if (r.io || r.crash || r.convert || r.create.backingFile) throw new RecipeError(id, 'produce', 'io, crash, convert and backing files belong to qemu-img recipes; give the producer a source instead');
  if (p.source) {
    if (!isUint(p.source.size) || p.source.size === 0) throw new RecipeError(id, 'produce.source.size', 'a positive integer');
    (p.source.io ?? []).forEach((c, i) => checkIo(id, c, i));
  }
  for (const name of Object.keys(p.files ?? {})) {
    if (!FILE_NAME_RE.test(name)) throw new RecipeError(id, 'produce.files', `${name} is not a plain file name`);
    if (typeof p.files![name] !== 'string') throw new RecipeError(id, `produce.files.${name}`, 'text content');
  }
}

/** Structural validation with errors naming the recipe and field. */
export function validateRecipes(list: unknown): Recipe[] {
  if (!Array.isArray(list)) throw new RecipeError('(file)', 'recipes', 'must be an array');
  const seen = new Map<string, Recipe>();
  for (const [n, raw] of list.entries()) {
    const r = raw as Recipe;
    const id = typeof r?.id === 'string' ? r.id : `#${n}`;
    if (typeof r?.id !== 'string' || !ID_RE.test(r.id)) throw new RecipeError(id, 'id', 'must match ' + ID_RE);
    if (seen.has(r.id)) throw new RecipeError(id, 'id', 'duplicate');
    if (typeof r.description !== 'string' || !r.description) throw new RecipeError(id, 'description', 'required');
    if (!Array.isArray(r.spec) || r.spec.length === 0 || !r.spec.every((s) => typeof s === 'string')) {
      throw new RecipeError(id, 'spec', 'must be a non-empty array of @spec ids');
    }
    if (!Array.isArray(r.tags) || !r.tags.every((s) => typeof s === 'string')) throw new RecipeError(id, 'tags', 'must be an array of strings');
    if (typeof r.create !== 'object' || r.create === null) throw new RecipeError(id, 'create', 'required');
    if (!FORMAT_RE.test(r.create.format ?? '')) throw new RecipeError(id, 'create.format', `${String(r.create.format)} is not a format name`);
    if (r.create.size !== undefined && !isUint(r.create.size)) throw new RecipeError(id, 'create.size', 'must be a non-negative integer');
    if (r.create.size === undefined && !r.create.backingFile) throw new RecipeError(id, 'create.size', 'required without a backing file');
    if (r.create.backingFile !== undefined) {
      if (r.create.backingFile.startsWith('/')) throw new RecipeError(id, 'create.backingFile', 'must be relative so the corpus can move');
      if (!r.create.backingFormat) throw new RecipeError(id, 'create.backingFormat', 'required with a backing file (qemu-img 7.2 insists)');
    }
    (r.io ?? []).forEach((c, i) => checkIo(id, c, i));
    if (r.crash && !['writeback', 'writethrough'].includes(r.crash.cache)) throw new RecipeError(id, 'crash.cache', 'writeback or writethrough');
    if (r.crash && !r.io?.length) throw new RecipeError(id, 'crash', 'a crash needs io to interrupt');
    if (r.convert && !FORMAT_RE.test(r.convert.format ?? '')) throw new RecipeError(id, 'convert.format', `${String(r.convert.format)} is not a format name`);
    (r.mask ?? []).forEach((m, i) => checkMask(id, m, i));
    if (r.mask && (!Array.isArray(r.mask) || r.mask.length === 0)) throw new RecipeError(id, 'mask', 'a non-empty array when present');
    if (r.mask && !r.deterministic) throw new RecipeError(id, 'mask', 'masks refine byte identity, so the recipe must be deterministic');
    if (r.produce) checkProduce(id, r);
    if (r.extraFiles !== undefined) {
      if (!Array.isArray(r.extraFiles) || r.extraFiles.length === 0) throw new RecipeError(id, 'extraFiles', 'a non-empty array of file names when present');
      for (const f of r.extraFiles) {
        if (typeof f !== 'string' || !FILE_NAME_RE.test(f)) throw new RecipeError(id, 'extraFiles', `${String(f)} is not a plain file name`);
        if (f === imageFileName(r)) throw new RecipeError(id, 'extraFiles', `${f} is the image file itself`);
      }
      if (new Set(r.extraFiles).size !== r.extraFiles.length) throw new RecipeError(id, 'extraFiles', 'a file is named twice');
    }
    if (r.secrets !== undefined) {
      if (typeof r.secrets !== 'object' || r.secrets === null || !Object.keys(r.secrets).length) throw new RecipeError(id, 'secrets', 'an object of secret id -> passphrase');
      for (const [k, v] of Object.entries(r.secrets)) {
        if (!FILE_NAME_RE.test(k) || typeof v !== 'string') throw new RecipeError(id, `secrets.${k}`, 'a plain id and a text passphrase');
      }
      if (r.produce || r.crash || r.create.backingFile) throw new RecipeError(id, 'secrets', 'only for qemu-img recipes without crash or backing files');
      if (!recipeKey(r)) throw new RecipeError(id, 'secrets', 'the image options name no key-secret');
    }
    if (typeof r.deterministic !== 'boolean') throw new RecipeError(id, 'deterministic', 'must be true or false');
    if (!r.deterministic && !r.reason) throw new RecipeError(id, 'reason', 'a non-deterministic recipe says why');
    for (const d of r.depends ?? []) {
      if (!seen.has(d)) throw new RecipeError(id, 'depends', `${d} is not an earlier recipe`);
    }
    if (r.create.backingFile) {
      const dep = (r.depends ?? []).map((d) => seen.get(d)!).find((d) => imageFileName(d) === r.create.backingFile);
      if (!dep) throw new RecipeError(id, 'create.backingFile', `${r.create.backingFile} is not the image of a recipe in depends`);
    }
    seen.set(r.id, r);
  }
  return [...seen.values()];
}

export async function loadRecipes(file: string): Promise<Recipe[]> {
  const text = await readFile(file, 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new RecipeError('(file)', file, `not JSON: ${(e as Error).message}`);
  }
  const list = (parsed as { recipes?: unknown }).recipes ?? parsed;
  return validateRecipes(list);
}

/** The recipe and every recipe it depends on, dependencies first. */
export function withDependencies(all: Recipe[], id: string): Recipe[] {
  const byId = new Map(all.map((r) => [r.id, r]));
  const out: Recipe[] = [];
  const visit = (rid: string): void => {
    const r = byId.get(rid);
    if (!r) throw new RecipeError(rid, 'id', 'no such recipe');
    if (out.includes(r)) return;
    for (const d of r.depends ?? []) visit(d);
    out.push(r);
  };
  visit(id);
  return out;
}
