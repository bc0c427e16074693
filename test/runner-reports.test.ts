// The matrix and traceability reports, from fixture inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMatrix, cellText, renderHtml, renderMarkdown, NO_SPEC } from '../runner/matrix.js';
import { buildTrace, loadItems, traceFailed } from '../runner/trace.js';
import { scanFeatures } from '../runner/features.js';
import { repoPath } from '../runner/paths.js';
import type { RunResults, ScenarioResult } from '../runner/results.js';

function scenario(name: string, tags: string[], verdict: ScenarioResult['verdict']): ScenarioResult {
  const outcome = verdict === 'not-applicable' ? 'not-applicable' : verdict === 'passed' || verdict === 'unexpected-pass' ? 'passed' : 'failed';
  return {
    scenario: `features/x.feature :: ${name}`, feature: 'features/x.feature', name, tags, outcome,
    expected: null, verdict, reason: verdict === 'not-applicable' ? 'no qcow2 here' : null, expectationReason: null, durationMs: 1,
  };
}

function run(implementation: string, scenarios: ScenarioResult[]): RunResults {
  return {
    implementation, impl: implementation, oracle: 'none', startedAt: 'then', finishedAt: 'later',
    counts: { passed: 0, failed: 0, expectedFailures: 0, unexpectedPasses: 0, notApplicable: 0, problems: 0 },
    problems: [], unusedExpectations: [], scenarios,
  };
}

test('matrix rows are format x @spec item, columns implementations, cells verdict counts', () => {
  const m = buildMatrix([
    {
      source: 'reports/reference/results.json',
      results: run('reference', [
        scenario('a', ['@format:qcow2', '@spec:qcow2.cluster_size'], 'passed'),
        scenario('b', ['@format:qcow2', '@spec:qcow2.cluster_size'], 'failed'),
        scenario('c', ['@format:raw'], 'not-applicable'),
      ]),
    },
    {
      source: 'reports/qemu/results.json',
      results: run('qemu', [
        scenario('a', ['@format:qcow2', '@spec:qcow2.cluster_size'], 'passed'),
        scenario('b', ['@format:qcow2', '@spec:qcow2.cluster_size'], 'expected-failure'),
      ]),
    },
  ]);
  assert.deepEqual(m.implementations.map((c) => c.name), ['reference', 'qemu']);
  assert.deepEqual(m.rows.map((r) => `${r.format}/${r.item}`), ['qcow2/qcow2.cluster_size', `raw/${NO_SPEC}`]);
  const row = m.rows[0];
  assert.equal(cellText(row.cells.reference), '1 FAIL, 1 pass');
  assert.equal(cellText(row.cells.qemu), '1 pass, 1 expected fail');
  assert.equal(cellText(m.rows[1].cells.qemu), '-');
  assert.equal(m.implementations[0].totals.notApplicable, 1);
  const md = renderMarkdown(m);
  assert.match(md, /\| qcow2 \| qcow2\.cluster_size \| 1 FAIL, 1 pass \| 1 pass, 1 expected fail \|/);
  const html = renderHtml(m);
  assert.match(html, /<td class="fail"/);
  assert.match(html, /no qcow2 here/);
  assert.doesNotMatch(html, /<link\b|\bsrc=|<script [^>]/, "self-contained: one inline script, nothing loaded");
});

test('two runs of one implementation get distinct columns', () => {
  const m = buildMatrix([
    { source: 'reports/qemu/results.json', results: run('qemu', []) },
    { source: 'reports/qemu-8/results.json', results: run('qemu', []) },
  ]);
  assert.deepEqual(m.implementations.map((c) => c.name), ['qemu', 'qemu (qemu-8)']);
});

test('trace lists covered and uncovered items and refuses unknown @spec ids', () => {
  const items = loadItems(repoPath('test', 'fixtures', 'runner', 'manual-items.json'));
  const scan = scanFeatures([repoPath('test', 'fixtures', 'runner', 'project', 'features', 'demo.feature')]);
  assert.deepEqual(scan.errors, []);
  // outline rows are expanded into their own scenarios, tags inherited from the feature
  const outline = scan.scenarios.find((s) => s.name === 'adds 2 and 2');
  assert.ok(outline);
  assert.ok(outline.tags.includes('@format:raw'));

  const t = buildTrace(items, scan.scenarios, scan.errors, ['raw']);
  const raw = t.items.find((i) => i.id === 'raw');
  assert.equal(raw?.scenarios.length, 2);
  assert.deepEqual(t.uncovered, ['qcow2.cluster_size', 'qcow2.refcount_bits']);
  assert.deepEqual(t.missing, []);
  assert.equal(traceFailed(t), false);
  assert.equal(t.untraced.length, 2);

  // the qcow2 items are uncovered: requiring qcow2 fails
  assert.equal(traceFailed(buildTrace(items, scan.scenarios, [], ['qcow2'])), true);

  // an unknown id is an error even when every required item is covered
  const extra = [{ ...scan.scenarios[0], scenario: 'f :: typo', tags: ['@format:raw', '@spec:raw.prealocation'] }];
  const bad = buildTrace(items, [...scan.scenarios, ...extra], [], []);
  assert.deepEqual(bad.unknownTags, [{ tag: '@spec:raw.prealocation', scenarios: ['f :: typo'] }]);
  assert.equal(traceFailed(bad), true);
});
