// Result evaluation of `qbc run`: from a cucumber message stream to outcomes and verdicts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, readMessages, type ScenarioOutcome } from '../runner/outcomes.js';
import { applyExpectations, validateExpectations, verdictOf, ExpectationsError } from '../runner/expectations.js';
import { buildResults, summaryLines } from '../runner/results.js';
import { REPO_ROOT, repoPath } from '../runner/paths.js';

const FIXTURE = repoPath('test', 'fixtures', 'runner-messages.ndjson');
const QCOW2 = 'features/formats/qcow2/demo.feature';
const RAW = 'features/formats/raw/demo.feature';

function fixture() {
  return evaluate(readMessages(FIXTURE), REPO_ROOT);
}

function byName(scenarios: ScenarioOutcome[], identity: string): ScenarioOutcome {
  const hit = scenarios.filter((s) => s.scenario === identity);
  assert.equal(hit.length, 1, `exactly one scenario ${identity}`);
  return hit[0];
}

test('identity is "<feature path> :: <pickle name>" with the pickle tags', () => {
  const { scenarios } = fixture();
  const s = byName(scenarios, `${QCOW2} :: passes`);
  assert.equal(s.feature, QCOW2);
  assert.deepEqual(s.tags, ['@format:qcow2', '@op:create', '@spec:qcow2.cluster_size']);
  assert.equal(s.outcome, 'passed');
  assert.equal(s.durationMs, 250);
});

test('a failed step gives its text and the message without the stack', () => {
  const s = byName(fixture().scenarios, `${QCOW2} :: fails`);
  assert.equal(s.outcome, 'failed');
  assert.equal(s.reason, 'step "step one of fails" failed: AssertionError: cluster_size 512 was refused');
});

test('a skip with a "not applicable:" attachment is not applicable, with that reason', () => {
  const { scenarios } = fixture();
  const plain = byName(scenarios, `${QCOW2} :: not applicable`);
  assert.equal(plain.outcome, 'not-applicable');
  assert.equal(plain.reason, 'reference does not implement check for qcow2');
  const b64 = byName(scenarios, `${QCOW2} :: not applicable in base64`);
  assert.equal(b64.outcome, 'not-applicable');
  assert.equal(b64.reason, 'qemu-nbd is not installed');
});

test('a skip without a reason is a failure, never a pass', () => {
  const s = byName(fixture().scenarios, `${QCOW2} :: skipped silently`);
  assert.equal(s.outcome, 'failed');
  assert.match(s.reason ?? '', /without a "not applicable:/);
});

test('undefined steps fail', () => {
  const s = byName(fixture().scenarios, `${RAW} :: undefined step`);
  assert.equal(s.outcome, 'failed');
  assert.match(s.reason ?? '', /is undefined/);
});

test('only the last attempt of a retried scenario counts', () => {
  const s = byName(fixture().scenarios, `${RAW} :: flaky then passes`);
  assert.equal(s.outcome, 'passed');
});

test('a scenario that never finished fails', () => {
  const s = byName(fixture().scenarios, `${RAW} :: never finishes`);
  assert.equal(s.outcome, 'failed');
  assert.match(s.reason ?? '', /never finished/);
});

test('two scenarios with one identity both fail', () => {
  const twins = fixture().scenarios.filter((s) => s.scenario === `${RAW} :: twin`);
  assert.equal(twins.length, 2);
  for (const t of twins) {
    assert.equal(t.outcome, 'failed');
    assert.match(t.reason ?? '', /must be unique/);
  }
});

test('a failed run-level hook is a problem outside scenarios', () => {
  const { problems } = fixture();
  assert.equal(problems.length, 1);
  assert.match(problems[0].message, /AfterAll cleanup failed/);
  assert.doesNotMatch(problems[0].message, /at x/);
});

test('verdicts: expected failure, unexpected pass, unexpected failure, not applicable', () => {
  assert.equal(verdictOf('failed', 'failed'), 'expected-failure');
  assert.equal(verdictOf('passed', 'failed'), 'unexpected-pass');
  assert.equal(verdictOf('passed', 'not-applicable'), 'unexpected-pass');
  assert.equal(verdictOf('failed', 'not-applicable'), 'failed');
  assert.equal(verdictOf('failed', null), 'failed');
  assert.equal(verdictOf('passed', null), 'passed');
  assert.equal(verdictOf('not-applicable', null), 'not-applicable');
  assert.equal(verdictOf('not-applicable', 'failed'), 'not-applicable');
});

test('summary counts and its last line', () => {
  const { scenarios, problems } = fixture();
  const expectations = validateExpectations(
    {
      implementation: 'demo',
      entries: [
        { scenario: `${QCOW2} :: fails`, expected: 'failed', reason: 'known bug 1', kind: 'implementation-bug', reproduction: 'x' },
        { scenario: `${QCOW2} :: passes`, expected: 'failed', reason: 'fixed since', kind: 'suite-bug' },
        { scenario: `${RAW} :: not in this run`, expected: 'failed', reason: 'gone', kind: 'spec-ambiguity' },
      ],
    },
    'inline',
  );
  const { judged, unused } = applyExpectations(scenarios, expectations);
  assert.deepEqual(unused.map((u) => u.scenario), [`${RAW} :: not in this run`]);
  const results = buildResults({
    implementation: 'demo', impl: 'demo', oracle: 'none',
    startedAt: new Date(0), finishedAt: new Date(1), judged, problems, unused,
  });
  // passed: flaky-then-passes only ("passes" is an unexpected pass now)
  // failed: skipped silently, undefined, never finishes, 2 twins, 1 unexpected pass, 1 problem
  assert.deepEqual(results.counts, {
    passed: 1, failed: 7, expectedFailures: 1, unexpectedPasses: 1, notApplicable: 2, problems: 1,
  });
  const lines = summaryLines(results);
  assert.equal(lines[lines.length - 1], '1 passed, 7 failed');
  assert.ok(lines.some((l) => l.includes('expected failures (1)')));
  assert.ok(lines.some((l) => l.includes('reference does not implement check for qcow2')));
});

test('bad expectations files are refused naming the field', () => {
  const bad = (data: unknown, field: RegExp) =>
    assert.throws(() => validateExpectations(data, 'x.json'), (err: unknown) => err instanceof ExpectationsError && field.test(err.message));
  bad([], /object/);
  bad({ entries: [] }, /implementation/);
  bad({ implementation: 'q', entries: [{ scenario: 'no separator', expected: 'failed', reason: 'r' }] }, /entries\[0\]|scenario/);
  bad({ implementation: 'q', entries: [{ scenario: 'features/a.feature :: b', expected: 'passed', reason: 'r' }] }, /expected/);
  bad({ implementation: 'q', entries: [{ scenario: 'features/a.feature :: b', expected: 'failed', reason: '' }] }, /reason/);
  bad(
    {
      implementation: 'q',
      entries: [
        { scenario: 'features/a.feature :: b', expected: 'failed', reason: 'first', kind: 'suite-bug' },
        { scenario: 'features/a.feature :: b', expected: 'not-applicable', reason: 'second', kind: 'suite-bug' },
      ],
    },
    /twice/,
  );
  const one = { scenario: 'features/a.feature :: b', expected: 'failed', reason: 'r' };
  bad({ implementation: 'q', entries: [one] }, /kind/);
  bad({ implementation: 'q', entries: [{ ...one, kind: 'bug' }] }, /kind/);
  bad({ implementation: 'q', entries: [{ ...one, kind: 'implementation-bug' }] }, /reproduction/);
  bad({ implementation: 'q', entries: [{ ...one, kind: 'spec-ambiguity', reproduction: '' }] }, /reproduction/);
  assert.equal(validateExpectations({ implementation: 'q', entries: [{ ...one, kind: 'implementation-bug', reproduction: 'qemu-img info x' }] }, 'x.json').entries[0]!.reproduction, 'qemu-img info x');
});
