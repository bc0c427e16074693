/** Where the corpus lives; compiled to dist/runner/corpus/, three levels below the repository. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const CORPUS_DIR = join(REPO, 'corpus');
export const IMAGES_DIR = join(CORPUS_DIR, 'images');
export const RECIPES_FILE = join(CORPUS_DIR, 'recipes.json');
export const MANIFEST_FILE = join(CORPUS_DIR, 'manifest.json');
export const MANIFEST_SCHEMA = join(REPO, 'schemas', 'corpus-manifest.json');
export const FEATURE_FILE = join(REPO, 'features', 'corpus', 'corpus.feature');
export const REPORTS_DIR = join(REPO, 'reports');
