/**
 * The repository stays small enough to submit: a session's commits may add at most
 * 256 MiB of diff text, and a golden image counts with its full (apparent) size, holes
 * included. So every committed image is capped, and so is the corpus as a whole; images
 * a script can make again (big fixed or preallocated ones) belong in recipes that are
 * replayed at test time, not in git.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MiB = 1024 * 1024;
/** apparent bytes per committed file, and for everything under corpus/ */
const FILE_CAP = 16 * MiB;
const CORPUS_CAP = 128 * MiB;

function trackedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: REPO, encoding: 'utf8' });
  return out.split('\0').filter((f) => f !== '');
}

test('no committed file is larger than 16 MiB, holes counted', (t) => {
  let files: string[];
  try { files = trackedFiles(); } catch { t.skip('not a git checkout'); return; }
  assert.ok(files.length > 0, 'git lists the tracked files');
  const big = files
    .map((f) => { try { return { f, size: statSync(join(REPO, f)).size }; } catch { return { f, size: 0 }; } })
    .filter(({ size }) => size > FILE_CAP);
  assert.deepEqual(big, [], 'files over the cap (make them from a recipe instead)');
});

test('the committed corpus stays under 128 MiB, holes counted', (t) => {
  let files: string[];
  try { files = trackedFiles(); } catch { t.skip('not a git checkout'); return; }
  const total = files.filter((f) => f.startsWith('corpus/'))
    .reduce((sum, f) => { try { return sum + statSync(join(REPO, f)).size; } catch { return sum; } }, 0);
  assert.ok(total > 0, 'the corpus has files');
  assert.ok(total <= CORPUS_CAP, `corpus/ is ${(total / MiB).toFixed(1)} MiB, over ${CORPUS_CAP / MiB} MiB`);
});
