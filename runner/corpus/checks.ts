/**
 * The comparisons of one golden image against an implementation, shared by
 * `qbc corpus verify` and the corpus step definitions. Each returns the list
 * of differences (empty: as recorded).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { missingCapability, type Adapter, type ImageRef, type Operation } from '../../adapters/adapter.js';
import { existsSync } from 'node:fs';
import { maskedSha256, sha256File, sparseCopy } from './files.js';
import type { Corpus, CorpusItem } from './corpus-set.js';
import { checkExitCode, diffJson, normaliseCheck, normaliseInfo, normaliseMap, type Json } from './normalise.js';
import { CORPUS_DIR } from './paths.js';
import { extensionOf, recipeKey } from './recipe.js';

function baseName(file: string): string {
  return file.slice(file.lastIndexOf('/') + 1);
}

export function entryFileName(e: CorpusItem): string {
  return baseName(e.file);
}

/**
 * The other files of a several-file image (a vmdk's extents) in dir against the
 * golden ones: byte-identical, or outside the masks when the recipe has them.
 */
export async function extraFilesDiff(e: CorpusItem, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const x of e.extraFiles ?? []) {
    const name = baseName(x.file);
    const mine = join(dir, name);
    if (!existsSync(mine)) {
      out.push(`${name}: not made`);
      continue;
    }
    if (e.mask) {
      const got = await maskedSha256(mine, e.mask);
      const want = await maskedSha256(join(CORPUS_DIR, x.file), e.mask);
      if (got !== want) out.push(`${name} differs from the golden file outside the masked fields: masked sha256 ${got}, golden ${want}`);
    } else {
      const sha = await sha256File(mine);
      if (sha !== x.fileSha256) out.push(`${name}: sha256 ${sha}, golden ${x.fileSha256}`);
    }
  }
  return out;
}

/** The entry and its backing images, bottom first. */
export function chainOf(c: Corpus, e: CorpusItem): CorpusItem[] {
  const byId = new Map(c.items.map((x) => [x.id, x]));
  const out: CorpusItem[] = [];
  const visit = (x: CorpusItem): void => {
    if (out.includes(x)) return;
    for (const d of x.depends ?? []) {
      const dep = byId.get(d);
      if (!dep) throw new Error(`corpus entry ${x.id} depends on ${d}, which is not in the manifest`);
      visit(dep);
    }
    out.push(x);
  };
  visit(e);
  return out;
}

/**
 * Copies the image and its backing files into dir in the canonical sparse
 * layout (see files.ts), so an implementation never touches the golden files
 * and host holes are the same as when the manifest was recorded.
 */
export async function stageEntry(c: Corpus, e: CorpusItem, dir: string, only: 'chain' | 'backing' = 'chain'): Promise<ImageRef & { format: string }> {
  await mkdir(dir, { recursive: true });
  const chain = chainOf(c, e);
  for (const x of only === 'chain' ? chain : chain.slice(0, -1)) {
    await sparseCopy(join(CORPUS_DIR, x.file), join(dir, entryFileName(x)));
    for (const f of x.extraFiles ?? []) await sparseCopy(join(CORPUS_DIR, f.file), join(dir, baseName(f.file)));
  }
  // an encrypted image opens with the recipe's secrets
  return { filename: join(dir, entryFileName(e)), format: e.format, ...recipeKey({ ...e.recipe, secrets: e.secrets }) };
}

/** Reading the image needs 'read'; info, map and check are compared where the IUT has them. */
export function readGap(a: Adapter, e: CorpusItem): string | null {
  return missingCapability(a, e.format, 'read');
}

/** The parts of reading (info, map, check) the IUT has no operation for: a reader-only implementation is judged on its guest bytes. */
export function readPartsMissing(a: Adapter, e: CorpusItem): Operation[] {
  const ops: Operation[] = ['info', 'map'];
  if (e.check !== null) ops.push('check');
  return ops.filter((op) => missingCapability(a, e.format, op) !== null);
}

/** The recipe cannot be replayed through the Adapter, or the IUT lacks an operation for it. */
export function recreateGap(a: Adapter, e: CorpusItem): string | null {
  if (e.crash) return e.reason ?? 'the recipe kills its writer, which the Adapter interface cannot express';
  if (e.produce) return `made by ${e.produce.command}, not by qemu-img: implementations are asked to read it, not to be ${e.produce.command}`;
  const c = e.recipe.create;
  const need: [string, Operation][] = [[c.format, 'create']];
  if (e.recipe.io?.length) need.push([c.format, 'write']);
  if (e.recipe.convert) need.push([e.recipe.convert.format, 'convert']);
  for (const [fmt, op] of need) {
    const why = missingCapability(a, fmt, op);
    if (why) return why;
  }
  return null;
}

/**
 * The recorded info against the implementation's. An implementation that declares the fields it
 * reports (Capabilities.infoFields: a header dump has no dirty flag) is judged on those alone,
 * on both sides, as the oracle comparison judges it.
 */
export async function infoDiff(a: Adapter, e: CorpusItem, img: ImageRef): Promise<string[]> {
  const info = normaliseInfo(await a.info(img), img.filename);
  const fields = a.capabilities.infoFields?.[e.format];
  const judged = (i: Record<string, Json>) => (fields ? reportedOnly(i, fields) : i);
  return diffJson(judged(e.info), judged(info)).map((d) => `info ${d}`);
}

/** The top-level fields named in `fields`, and the format-specific data named as 'format-specific.<name>'. */
function reportedOnly(info: Record<string, Json>, fields: string[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(info)) if (fields.includes(k)) out[k] = v;
  const spec = info['format-specific'] as { type?: Json; data?: Record<string, Json> } | undefined;
  const specFields = fields.filter((f) => f.startsWith('format-specific.')).map((f) => f.slice('format-specific.'.length));
  if (spec && typeof spec === 'object' && spec.data && specFields.length) {
    out['format-specific'] = { type: spec.type ?? null, data: Object.fromEntries(Object.entries(spec.data).filter(([k]) => specFields.includes(k))) };
  }
  return out;
}

export async function mapDiff(a: Adapter, e: CorpusItem, img: ImageRef): Promise<string[]> {
  const map = normaliseMap(await a.map(img));
  return diffJson(e.map as Json, map as Json).map((d) => `map ${d}`);
}

export async function checkDiff(a: Adapter, e: CorpusItem, img: ImageRef): Promise<string[]> {
  if (e.check === null) return [];
  const raw = await a.check(img);
  const check = normaliseCheck(raw);
  if (check === null) return [`check: recorded a result, the implementation says the format has no check`];
  const expected = { ...e.check };
  // the file name is an echo of the input, not a result; an IUT may leave it out
  if (!('filename' in check)) delete expected.filename;
  const out = diffJson(expected, check).map((d) => `check ${d}`);
  const exit = raw.exitCode;
  if (exit !== checkExitCode(e.check)) out.push(`check exit status ${exit}, ${checkExitCode(e.check)} expected for the recorded counters`);
  return out;
}

export async function guestDiff(a: Adapter, e: CorpusItem, img: ImageRef): Promise<string[]> {
  const sha = await a.guestSha256(img);
  return sha === e.guestSha256 ? [] : [`guest sha256 ${sha} observed, ${e.guestSha256} recorded`];
}

/** Replays the recipe with the implementation in dir (backing images staged there); returns the image. */
export async function recreate(a: Adapter, c: Corpus, e: CorpusItem, dir: string): Promise<ImageRef & { format: string }> {
  await stageEntry(c, e, dir, 'backing');
  const key = recipeKey({ ...e.recipe, secrets: e.secrets });
  const target = { filename: join(dir, entryFileName(e)), format: e.format, ...key };
  const cr = e.recipe.create;
  const first = e.recipe.convert ? { filename: join(dir, `${e.id}.src.${extensionOf(cr.format)}`), format: cr.format } : target;
  await a.create({ format: cr.format, filename: first.filename, size: cr.size, options: cr.options, backingFile: cr.backingFile, backingFormat: cr.backingFormat, ...(key ? { secrets: key.secrets } : {}) });
  if (e.recipe.io?.length) await a.io(first, e.recipe.io);
  if (e.recipe.convert) {
    const cv = e.recipe.convert;
    await a.convert({ source: first, target: { filename: target.filename, format: cv.format, ...key }, options: cv.options, compress: cv.compress });
  }
  return target;
}

/** The file hashes of the staged chain, to prove reads left them alone. */
export async function chainHashes(c: Corpus, e: CorpusItem, dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const x of chainOf(c, e)) {
    out.set(x.id, await sha256File(join(dir, entryFileName(x))));
    for (const f of x.extraFiles ?? []) out.set(`${x.id} (${baseName(f.file)})`, await sha256File(join(dir, baseName(f.file))));
  }
  return out;
}
