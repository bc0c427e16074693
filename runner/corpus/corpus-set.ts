/**
 * The corpus as its users see it: manifest entries (what qemu-img recorded)
 * joined by id with their recipes (how they were made, and what may be asked
 * of an implementation that replays them).
 */
import { isDeepStrictEqual } from 'node:util';
import { loadValidManifest, type ManifestEntry } from './manifest.js';
import { MANIFEST_FILE, RECIPES_FILE } from './paths.js';
import { imageFileName, loadRecipes, type Recipe, type RecipeCrash, type RecipeProduce } from './recipe.js';

export interface CorpusItem extends ManifestEntry {
  description: string;
  deterministic: boolean;
  reason?: string;
  depends?: string[];
  crash?: RecipeCrash;
  produce?: RecipeProduce;
  /** an encrypted image's secret objects (id -> passphrase) */
  secrets?: Record<string, string>;
}

export interface Corpus {
  producer: string;
  items: CorpusItem[];
}

export class CorpusSyncError extends Error {
  constructor(readonly id: string, message: string) {
    super(`corpus entry ${id}: ${message} (run \`qbc corpus generate\`)`);
    this.name = 'CorpusSyncError';
  }
}

/** The manifest's copy of the recipe, as generate writes it. */
export function manifestRecipe(r: Recipe): ManifestEntry['recipe'] {
  const out: ManifestEntry['recipe'] = { create: r.create };
  if (r.io) out.io = r.io;
  if (r.convert) out.convert = r.convert;
  return out;
}

export function joinCorpus(producer: string, entries: ManifestEntry[], recipes: Recipe[]): Corpus {
  const byId = new Map(recipes.map((r) => [r.id, r]));
  const items = entries.map((e): CorpusItem => {
    const r = byId.get(e.id);
    if (!r) throw new CorpusSyncError(e.id, 'has no recipe in corpus/recipes.json');
    if (!isDeepStrictEqual(manifestRecipe(r), e.recipe)) throw new CorpusSyncError(e.id, 'its recipe changed since the manifest was recorded');
    if (!isDeepStrictEqual(r.mask, e.mask)) throw new CorpusSyncError(e.id, 'its masks changed since the manifest was recorded');
    if (`images/${imageFileName(r)}` !== e.file) throw new CorpusSyncError(e.id, `file ${e.file} is not the recipe's images/${imageFileName(r)}`);
    const extras = (e.extraFiles ?? []).map((x) => x.file);
    if (!isDeepStrictEqual(extras, (r.extraFiles ?? []).map((f) => `images/${f}`))) throw new CorpusSyncError(e.id, `its other files ${extras.join(', ') || '(none)'} are not the recipe's extraFiles`);
    const item: CorpusItem = { ...e, description: r.description, deterministic: r.deterministic };
    if (r.reason) item.reason = r.reason;
    if (r.depends) item.depends = r.depends;
    if (r.crash) item.crash = r.crash;
    if (r.produce) item.produce = r.produce;
    if (r.secrets) item.secrets = r.secrets;
    return item;
  });
  return { producer, items };
}

export async function loadCorpus(manifestFile = MANIFEST_FILE, recipesFile = RECIPES_FILE, warn?: (text: string) => void): Promise<Corpus> {
  const m = await loadValidManifest(manifestFile, warn);
  return joinCorpus(m.producer, m.entries, await loadRecipes(recipesFile));
}
