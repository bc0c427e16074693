/**
 * `qbc corpus generate [--only ID] [--check]`: replays every recipe with the
 * real qemu-img / qemu-io in a scratch directory, records what qemu-img says,
 * and reports drift against the existing manifest. Without --check it writes
 * corpus/images/ and corpus/manifest.json; with --check it writes nothing and
 * exits 1 on drift.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { canonicaliseInPlace, maskedSha256, scratchDir, sha256File, sparseCopy } from './files.js';
import { readManifest, summariseErrors, validateManifest, writeManifest, type ExtraFile, type Manifest, type ManifestEntry } from './manifest.js';
import { diffJson, type Json } from './normalise.js';
import { IMAGES_DIR, MANIFEST_FILE, RECIPES_FILE, REPO } from './paths.js';
import { buildWithQemu, DEFAULT_TOOLS, observeWithQemu, qemuImgVersion, type QemuTools } from './qemu-build.js';
import { manifestRecipe } from './corpus-set.js';
import { imageFileName, imageFormat, loadRecipes, recipeKey, withDependencies, type Recipe } from './recipe.js';

export interface GenerateOptions {
  only?: string;
  check?: boolean;
  tools?: QemuTools;
  log?: (line: string) => void;
}

function entryOf(r: Recipe, sha: string, obs: Awaited<ReturnType<typeof observeWithQemu>>, extras: ExtraFile[] = []): ManifestEntry {
  const entry: ManifestEntry = {
    id: r.id,
    format: imageFormat(r),
    file: `images/${imageFileName(r)}`,
    recipe: manifestRecipe(r),
    fileSha256: sha,
    guestSha256: obs.guestSha256,
    info: obs.info,
    map: obs.map,
    check: obs.check,
    tags: r.tags,
    spec: r.spec,
  };
  if (r.mask) entry.mask = r.mask;
  if (extras.length) entry.extraFiles = extras;
  return entry;
}

/**
 * A masked recipe's new build that equals the golden image outside its masks
 * is the same image: the golden file and its hash stay, so regenerating never
 * churns random fields into the repository.
 */
async function sameOutsideMasks(r: Recipe, built: string, old: ManifestEntry | undefined): Promise<boolean> {
  if (!r.mask || !old) return false;
  const files: [string, string | undefined][] = [[imageFileName(r), old.fileSha256]];
  for (const f of r.extraFiles ?? []) files.push([f, old.extraFiles?.find((x) => x.file === `images/${f}`)?.fileSha256]);
  for (const [name, oldSha] of files) {
    const golden = join(IMAGES_DIR, name);
    if (!oldSha || !existsSync(golden) || (await sha256File(golden)) !== oldSha) return false;
    if ((await maskedSha256(join(dirname(built), name), r.mask)) !== (await maskedSha256(golden, r.mask))) return false;
  }
  return true;
}

/** The recipe's other files as built next to its image (canonicalised in place), with their hashes. */
async function builtExtras(r: Recipe, dir: string): Promise<ExtraFile[]> {
  const out: ExtraFile[] = [];
  for (const f of r.extraFiles ?? []) {
    const path = join(dir, f);
    if (!existsSync(path)) throw new Error(`recipe ${r.id}: extraFiles: qemu-img did not make ${f}`);
    await canonicaliseInPlace(path);
    out.push({ file: `images/${f}`, fileSha256: await sha256File(path) });
  }
  return out;
}

/** What changed between two recordings of one entry (empty: no drift). */
export function entryDrift(old: ManifestEntry, now: ManifestEntry): string[] {
  const out: string[] = [];
  if (old.fileSha256 !== now.fileSha256) out.push('fileSha256 changed');
  if (old.guestSha256 !== now.guestSha256) out.push('guestSha256 changed');
  for (const k of ['info', 'map', 'check', 'recipe'] as const) {
    const d = diffJson(old[k] as unknown as Json, now[k] as unknown as Json);
    if (d.length) out.push(`${k}: ${d.join('; ')}`);
  }
  return out;
}

export async function generate(opts: GenerateOptions = {}): Promise<number> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const tools = opts.tools ?? DEFAULT_TOOLS;
  const recipes = await loadRecipes(RECIPES_FILE);
  const build = opts.only ? withDependencies(recipes, opts.only) : recipes;
  const wanted = new Set(opts.only ? [opts.only] : recipes.map((r) => r.id));
  const producer = await qemuImgVersion(tools);
  const old = await readManifest(MANIFEST_FILE);
  const oldById = new Map((old?.entries ?? []).map((e) => [e.id, e]));
  const scratch = await scratchDir(REPO, 'corpus-generate');
  const fresh = new Map<string, ManifestEntry>();
  const built = new Map<string, string>();
  const kept = new Set<string>();
  let drift = 0;
  try {
    for (const r of build) {
      const file = await buildWithQemu(r, scratch, tools);
      await canonicaliseInPlace(file);
      const extras = await builtExtras(r, scratch);
      const keep = await sameOutsideMasks(r, file, oldById.get(r.id));
      // A kept image is the golden one: images built on it (and its record) see the golden file's
      // random fields, not the rebuild's (a vmdk overlay records its base's CID).
      if (keep) {
        await sparseCopy(join(IMAGES_DIR, imageFileName(r)), file);
        for (const f of r.extraFiles ?? []) await sparseCopy(join(IMAGES_DIR, f), join(scratch, f));
      }
      const obs = await observeWithQemu(file, imageFormat(r), scratch, tools, recipeKey(r));
      const entry = entryOf(r, keep ? oldById.get(r.id)!.fileSha256 : await sha256File(file), obs, keep ? oldById.get(r.id)!.extraFiles ?? [] : extras);
      if (keep) kept.add(r.id);
      built.set(r.id, file);
      // a dependency is recorded too when the manifest lacks it (--only on a fresh corpus)
      if (!wanted.has(r.id) && oldById.has(r.id)) continue;
      fresh.set(r.id, entry);
      const before = oldById.get(r.id);
      const changes = before ? entryDrift(before, entry) : ['new entry'];
      if (changes.length && before) drift++;
      log(`${changes.length ? (before ? 'DRIFT' : 'NEW  ') : 'same '} ${r.id}${changes.length ? ': ' + changes.join('; ') : ''}`);
    }
    if (!opts.only) {
      for (const id of oldById.keys()) {
        if (!wanted.has(id)) {
          drift++;
          log(`DRIFT ${id}: entry has no recipe any more`);
        }
      }
    }
    if (old && old.producer !== producer) log(`producer: ${old.producer} -> ${producer}`);

    // the manifest keeps the recipes' order; --only replaces one entry and keeps the rest
    const entries: ManifestEntry[] = [];
    for (const r of recipes) {
      const e = fresh.get(r.id) ?? oldById.get(r.id);
      if (e) entries.push(e);
    }
    const manifest: Manifest = { producer, entries };
    const { structural, schema } = await validateManifest(manifest);
    if (structural.length) {
      log(`the generated manifest is broken:\n${summariseErrors(structural)}`);
      return 1;
    }
    // what qemu-img printed is the fact; a schema that disagrees is reported, and the run fails, but the record is kept
    const schemaProblems = schema?.length ?? 0;
    if (schema === null) log('note: schemas/corpus-manifest.json does not exist; validated structurally only');
    else if (schemaProblems) log(`the manifest disagrees with schemas/corpus-manifest.json:\n${summariseErrors(schema)}`);

    if (opts.check) {
      log(`${drift} drifted of ${fresh.size} checked`);
      return drift || schemaProblems ? 1 : 0;
    }
    await mkdir(IMAGES_DIR, { recursive: true });
    for (const id of fresh.keys()) {
      if (kept.has(id)) continue;
      const r = recipes.find((x) => x.id === id)!;
      await sparseCopy(built.get(id)!, join(IMAGES_DIR, imageFileName(r)));
      for (const f of r.extraFiles ?? []) await sparseCopy(join(scratch, f), join(IMAGES_DIR, f));
    }
    if (!opts.only) {
      // images of recipes that are gone
      const keep = new Set(entries.flatMap((e) => [e.file, ...(e.extraFiles ?? []).map((x) => x.file)]).map((f) => f.slice('images/'.length)));
      for (const f of existsSync(IMAGES_DIR) ? await readdir(IMAGES_DIR) : []) {
        if (!keep.has(f)) await rm(join(IMAGES_DIR, f), { force: true });
      }
    }
    await writeManifest(MANIFEST_FILE, manifest);
    log(`wrote ${fresh.size} image(s) and corpus/manifest.json (${entries.length} entries); ${drift} drifted`);
    return schemaProblems ? 1 : 0;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
