/** Where things live, independent of the directory qbc is started from. */
import { relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Compiled to dist/runner/paths.js, so the repository is two levels up. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function repoPath(...parts: string[]): string {
  return resolve(REPO_ROOT, ...parts);
}

/** A path relative to the repository with forward slashes: the form used in scenario identities. */
export function repoRelative(path: string, base = REPO_ROOT): string {
  return relative(REPO_ROOT, resolve(base, path)).split(sep).join('/');
}
