/**
 * corpus/manifest.json: what qemu-img recorded about every golden image.
 * Validated against schemas/corpus-manifest.json (ajv) when that schema exists,
 * and always by the structural checks below, which the corpus code relies on.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { IoCommand } from '../../adapters/adapter.js';
import type { Json } from './normalise.js';
import type { RecipeConvert, RecipeCreate, RecipeMask } from './recipe.js';
import { MANIFEST_SCHEMA } from './paths.js';

export interface ManifestRecipe {
  create: RecipeCreate;
  io?: IoCommand[];
  convert?: RecipeConvert;
}

/**
 * One golden image, in the shape of schemas/corpus-manifest.json. What the
 * schema has no room for (description, determinism, dependencies, crash) stays
 * in corpus/recipes.json and is joined by id (corpus-set.ts).
 */
export interface ManifestEntry {
  id: string;
  format: string;
  /** relative to corpus/ */
  file: string;
  recipe: ManifestRecipe;
  fileSha256: string;
  guestSha256: string;
  info: Record<string, Json>;
  map: Record<string, Json>[];
  check: Record<string, Json> | null;
  tags: string[];
  spec: string[];
  /** the recipe's random fields, excluded from byte identity */
  mask?: RecipeMask[];
  /** the image's other files (a vmdk's extents), next to it in images/ */
  extraFiles?: ExtraFile[];
}

export interface ExtraFile {
  /** relative to corpus/ */
  file: string;
  fileSha256: string;
}

export interface Manifest {
  producer: string;
  entries: ManifestEntry[];
}

export class ManifestError extends Error {
  constructor(readonly field: string, message: string) {
    super(`corpus manifest: ${field}: ${message}`);
    this.name = 'ManifestError';
  }
}

const SHA = /^[0-9a-f]{64}$/;

/** The checks the corpus code depends on, each error naming the field. */
export function structuralErrors(m: unknown): string[] {
  const errs: string[] = [];
  const o = m as Manifest;
  if (typeof o !== 'object' || o === null) return ['$: not an object'];
  if (typeof o.producer !== 'string' || !o.producer) errs.push('$.producer: required string');
  if (!Array.isArray(o.entries)) return [...errs, '$.entries: required array'];
  const ids = new Set<string>();
  o.entries.forEach((e, i) => {
    const p = `$.entries[${i}]`;
    if (typeof e?.id !== 'string') return errs.push(`${p}.id: required string`);
    if (ids.has(e.id)) errs.push(`${p}.id: duplicate ${e.id}`);
    ids.add(e.id);
    if (typeof e.format !== 'string') errs.push(`${p}.format: required string`);
    if (typeof e.file !== 'string' || !e.file.startsWith('images/')) errs.push(`${p}.file: must be images/<name>`);
    if (typeof e.recipe?.create?.format !== 'string') errs.push(`${p}.recipe.create.format: required`);
    if (!SHA.test(e.fileSha256 ?? '')) errs.push(`${p}.fileSha256: not a sha256`);
    if (!SHA.test(e.guestSha256 ?? '')) errs.push(`${p}.guestSha256: not a sha256`);
    if (typeof e.info !== 'object' || e.info === null) errs.push(`${p}.info: required object`);
    if (!Array.isArray(e.map)) errs.push(`${p}.map: required array`);
    if (e.check !== null && (typeof e.check !== 'object' || typeof e.check['check-errors'] !== 'number')) errs.push(`${p}.check: object with check-errors, or null`);
    if (!Array.isArray(e.tags)) errs.push(`${p}.tags: required array`);
    if (!Array.isArray(e.spec) || e.spec.length === 0) errs.push(`${p}.spec: required non-empty array`);
    if (e.extraFiles !== undefined) {
      if (!Array.isArray(e.extraFiles) || e.extraFiles.length === 0) errs.push(`${p}.extraFiles: non-empty array when present`);
      else e.extraFiles.forEach((x, j) => {
        if (typeof x?.file !== 'string' || !x.file.startsWith('images/')) errs.push(`${p}.extraFiles[${j}].file: must be images/<name>`);
        if (!SHA.test(x?.fileSha256 ?? '')) errs.push(`${p}.extraFiles[${j}].fileSha256: not a sha256`);
      });
    }
    return undefined;
  });
  return errs;
}

/** Errors from schemas/corpus-manifest.json, or null when that schema does not exist. */
export async function schemaErrors(m: unknown, schemaFile = MANIFEST_SCHEMA): Promise<string[] | null> {
  if (!existsSync(schemaFile)) return null;
  const schema = JSON.parse(await readFile(schemaFile, 'utf8')) as Record<string, unknown>;
  const others = await siblingSchemas(dirname(schemaFile), schema.$id);
  const draft2020 = String(schema.$schema ?? '').includes('2020-12');
  const { default: AjvCtor } = (draft2020 ? await import('ajv/dist/2020.js') : await import('ajv')) as unknown as {
    default: new (o: object) => { compile(s: object): ((d: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null } };
  };
  const { default: addFormats } = (await import('ajv-formats')) as unknown as { default: (a: unknown) => void };
  const ajv = new AjvCtor({ allErrors: true, strict: false });
  addFormats(ajv);
  // the manifest schema refers to the output schemas (info, map, check) by relative $id
  for (const o of others) (ajv as unknown as { addSchema(s: object): void }).addSchema(o);
  const validate = ajv.compile(schema);
  if (validate(m)) return [];
  return (validate.errors ?? []).map((e) => `$${e.instancePath}: ${e.message ?? 'invalid'}`);
}

async function siblingSchemas(dir: string, selfId: unknown): Promise<object[]> {
  const out: object[] = [];
  for (const f of await readdir(dir, { recursive: true })) {
    if (!f.endsWith('.json')) continue;
    const s = JSON.parse(await readFile(join(dir, f), 'utf8')) as { $id?: string };
    if (s.$id && s.$id !== selfId) out.push(s);
  }
  return out;
}

export interface ManifestValidation {
  /** broken in ways the corpus code cannot work with */
  structural: string[];
  /** disagreements with schemas/corpus-manifest.json (null: that schema does not exist) */
  schema: string[] | null;
}

export async function validateManifest(m: unknown): Promise<ManifestValidation> {
  const schema = await schemaErrors(m);
  return { structural: structuralErrors(m), schema: schema && [...new Set(schema)] };
}

/** At most `max` lines of errors, saying how many more there are. */
export function summariseErrors(errors: string[], max = 12): string {
  const shown = errors.slice(0, max).map((e) => `  ${e}`);
  if (errors.length > max) shown.push(`  ... and ${errors.length - max} more`);
  return shown.join('\n');
}

export async function readManifest(file: string): Promise<Manifest | null> {
  if (!existsSync(file)) return null;
  return JSON.parse(await readFile(file, 'utf8')) as Manifest;
}

/**
 * The manifest, refused when structurally broken. Schema disagreements are
 * passed to `warn` (the unit tests and `qbc corpus validate` fail on them).
 */
export async function loadValidManifest(file: string, warn?: (text: string) => void): Promise<Manifest> {
  const m = await readManifest(file);
  if (!m) throw new ManifestError(file, 'does not exist; run `qbc corpus generate`');
  const { structural, schema } = await validateManifest(m);
  if (structural.length) throw new ManifestError(file, `invalid:\n${summariseErrors(structural)}`);
  if (schema?.length && warn) warn(`warning: ${file} disagrees with schemas/corpus-manifest.json:\n${summariseErrors(schema)}`);
  return m;
}

export async function writeManifest(file: string, m: Manifest): Promise<void> {
  await writeFile(file, JSON.stringify(m, null, 2) + '\n');
}
