/**
 * Baselines with kinds: `qbc expectations update` from a run's results, and the errors a
 * run raises for unreviewed or expired entries.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { baselineProblems, isUnreviewed, validateExpectations, type ExpectationsFile } from '../runner/expectations.js';
import { updateExpectations } from '../runner/expectations-cli.js';
import { scanFeatures } from '../runner/features.js';
import { repoPath } from '../runner/paths.js';
import type { RunResults, ScenarioResult } from '../runner/results.js';

const F = 'features/formats/qcow2/x.feature';
const known = new Set([`${F} :: a`, `${F} :: b`, `${F} :: c`, `${F} :: d`, `${F} :: e`]);

function scenario(name: string, outcome: ScenarioResult['outcome'], reason: string | null = null): ScenarioResult {
  return {
    scenario: `${F} :: ${name}`, feature: F, name, tags: [], outcome, expected: null,
    verdict: outcome === 'passed' ? 'passed' : outcome === 'failed' ? 'failed' : 'not-applicable',
    reason, expectationReason: null, durationMs: 1,
  };
}

function results(scenarios: ScenarioResult[]): RunResults {
  return {
    implementation: 'demo', impl: 'demo', oracle: 'qemu', startedAt: '', finishedAt: '',
    counts: { passed: 0, failed: 0, expectedFailures: 0, unexpectedPasses: 0, notApplicable: 0, problems: 0 },
    problems: [], unusedExpectations: [], scenarios,
  };
}

const old: ExpectationsFile = {
  implementation: 'demo',
  entries: [
    { scenario: `${F} :: a`, expected: 'failed', reason: 'still fails', kind: 'implementation-bug', reproduction: 'qemu-img info a' },
    { scenario: `${F} :: gone`, expected: 'failed', reason: 'the scenario was renamed', kind: 'suite-bug' },
    { scenario: `${F} :: b`, expected: 'failed', reason: 'fixed since', kind: 'spec-ambiguity' },
    { scenario: `${F} :: e`, expected: 'failed', reason: 'not run this time', kind: 'spec-ambiguity' },
  ],
};

test('update keeps explained failures, drops passes and expired entries, and adds new failures unreviewed', () => {
  const r = results([scenario('a', 'failed', 'x'), scenario('b', 'passed'), scenario('c', 'failed', 'step "s" failed:\n  boom'), scenario('d', 'not-applicable', 'no info')]);
  const { file, added, removed } = updateExpectations(old, r, known);
  assert.deepEqual(file.entries.map((e) => e.scenario.split(' :: ')[1]), ['a', 'e', 'c']);
  assert.deepEqual(added, [`${F} :: c`]);
  assert.deepEqual(removed.map((x) => x.why), ['no such scenario (expired)', 'it passed']);
  const c = file.entries[2]!;
  assert.equal(c.reason, 'TODO: review');
  assert.match(c.reproduction ?? '', /^TODO: review \(the run said: step "s" failed: boom\)$/);
  assert.ok(isUnreviewed(c));
  // the file it writes is a valid baseline, and the run it guards fails until c is reviewed
  const valid = validateExpectations(JSON.parse(JSON.stringify(file)), 'inline');
  const problems = baselineProblems(valid, known);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /x\.feature :: c" is not reviewed/);
  // once a person explains it, the baseline has no problems left
  c.reason = 'qcow2 images with zero clusters read stale data';
  c.reproduction = 'qemu-img create -f qcow2 x 1M; qemu-io -c "write -P 1 0 64k" -c "write -z 0 64k" x; read';
  assert.deepEqual(baselineProblems(file, known), []);
});

test('an entry naming a scenario that no longer exists is an error of the run', () => {
  const problems = baselineProblems(old, known);
  assert.deepEqual(problems.length, 1);
  assert.match(problems[0]!, /:: gone" names no scenario of the suite \(expired\)/);
  // without the suite's scenarios (another --root), expiry is not judged
  assert.deepEqual(baselineProblems(old, null), []);
});

test("every checked-in baseline names existing scenarios, each reviewed, with a kind", () => {
  const scenarios = new Set(scanFeatures().scenarios.map((s) => s.scenario));
  for (const impl of ['qemu', 'reference', 'cli', 'libyal', 'vhd', 'udif', 'xo-qcow2', 'vhd-lib']) {
    const file = repoPath('expectations', `${impl}.json`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    assert.equal(JSON.stringify(JSON.parse(text), null, 2) + '\n', text, `${impl}.json is JSON.stringify(x, null, 2) + newline`);
    const parsed = validateExpectations(JSON.parse(text), file);
    assert.deepEqual(baselineProblems(parsed, scenarios), [], `${impl}.json`);
  }
});

test('qbc expectations update writes the file and refuses a results file of another implementation', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qbc-exp-'));
  try {
    const real = [...scanFeatures().scenarios][0]!.scenario;
    const r = results([{ ...scenario('z', 'failed', 'boom'), scenario: real }]);
    writeFileSync(join(dir, 'results.json'), JSON.stringify(r));
    const out = join(dir, 'demo.json');
    const qbc = repoPath('bin', 'qbc');
    const ok = await execa('node', [qbc, 'expectations', 'update', '--impl', 'demo', '--from', join(dir, 'results.json'), '--file', out], { reject: false });
    assert.equal(ok.exitCode, 0, ok.stderr);
    const written = JSON.parse(readFileSync(out, 'utf8')) as ExpectationsFile;
    assert.deepEqual(written.entries.map((e) => [e.scenario, e.reason, e.kind]), [[real, 'TODO: review', 'implementation-bug']]);
    const wrong = await execa('node', [qbc, 'expectations', 'update', '--impl', 'other', '--from', join(dir, 'results.json'), '--file', out], { reject: false });
    assert.equal(wrong.exitCode, 2);
    assert.match(wrong.stderr, /--from: .* is a run of "demo", not "other"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
