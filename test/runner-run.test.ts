// `qbc run` end to end: real cucumber on a fixture feature, real report files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoPath } from '../runner/paths.js';
import type { RunResults } from '../runner/results.js';

const QBC = repoPath('bin', 'qbc');
// A tiny cucumber project of its own: identities are relative to it (qbc run --root).
const PROJECT = 'test/fixtures/runner/project';
const FEATURE = 'features/demo.feature';

function tmpDir(): string {
  mkdirSync(repoPath('.tmp'), { recursive: true });
  return mkdtempSync(join(repoPath('.tmp'), 'runner-test-'));
}

async function qbcRun(out: string, extra: string[]) {
  return execa('node', [QBC, 'run', '--root', PROJECT, '--oracle', 'none',
    '--expectations', `${PROJECT}/expectations.json`, '--out', out, ...extra], { cwd: repoPath(), reject: false });
}

test('a run with an unexpected pass and an unexpected failure exits 1 and reports both', async () => {
  const out = tmpDir();
  try {
    const r = await qbcRun(out, ['--profile', 'ci']);
    assert.equal(r.exitCode, 1, r.stdout + r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[lines.length - 1], '2 passed, 2 failed');
    for (const f of ['cucumber.html', 'junit.xml', 'messages.ndjson', 'results.json']) {
      assert.ok(existsSync(join(out, f)), `${f} written`);
    }
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResults;
    const verdict = (name: string) => results.scenarios.find((s) => s.scenario === `${FEATURE} :: ${name}`)?.verdict;
    assert.equal(verdict('passes and sees the world parameters'), 'passed');
    assert.equal(verdict('fails and is expected to'), 'expected-failure');
    assert.equal(verdict('passes though listed as failing'), 'unexpected-pass');
    assert.equal(verdict('lacks a capability'), 'not-applicable');
    assert.equal(verdict('adds 1 and 2'), 'passed');
    assert.equal(verdict('adds 2 and 2'), 'failed');
    const na = results.scenarios.find((s) => s.verdict === 'not-applicable');
    assert.equal(na?.reason, 'the fixture implementation has no raw create');
    assert.equal(results.implementation, 'reference');
    assert.equal(results.oracle, 'none');
    // world parameters reached the steps (they attach what they saw)
    assert.match(readFileSync(join(out, 'messages.ndjson'), 'utf8'), /world: \{\\"impl\\":\\"reference\\",\\"oracle\\":\\"none\\"\}/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a run where everything meets expectations exits 0', async () => {
  const out = tmpDir();
  try {
    const r = await qbcRun(out, ['--tags', '@spec:raw']);
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 not applicable/);
    assert.equal(r.stdout.trimEnd().split('\n').pop(), '1 passed, 0 failed');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('bad options stop the run with exit 2 naming the option', async () => {
  const r = await execa('node', [QBC, 'run', '--oracle', 'maybe'], { cwd: repoPath(), reject: false });
  assert.equal(r.exitCode, 2);
  assert.match(r.stderr, /--oracle/);
  const profile = await execa('node', [QBC, 'run', '--root', PROJECT, '--profile', 'nope'], { cwd: repoPath(), reject: false });
  assert.equal(profile.exitCode, 2);
  assert.match(profile.stderr, /--profile.*"nope"/);
  const missing = await execa('node', [QBC, 'run', '--expectations', '.tmp/no-such-file.json'], { cwd: repoPath(), reject: false });
  assert.equal(missing.exitCode, 2);
  assert.match(missing.stderr, /no such file/);
});
