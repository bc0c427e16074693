/**
 * The matrix page in a real browser: Debian's chromium, driven by playwright-core with the
 * system executable, headless, with a fresh profile and nothing reaching the network. The page
 * is built by `qbc matrix` itself from fixture results.json files (two of them shards of one run),
 * opened from file://, and must show the counts matrix.json has and filter its rows by format.
 * Chromium missing is a failure, not a skip: scripts/install-deps.sh installs it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { main as matrixMain, type Matrix } from '../runner/matrix.js';
import type { RunResults, ScenarioResult } from '../runner/results.js';
import { countVerdicts } from '../runner/results.js';

const CHROMIUM = '/usr/bin/chromium';

function scenario(feature: string, line: number, name: string, format: string, item: string, verdict: ScenarioResult['verdict']): ScenarioResult {
  const outcome = verdict === 'not-applicable' ? 'not-applicable' : verdict === 'passed' || verdict === 'unexpected-pass' ? 'passed' : 'failed';
  return {
    scenario: `${feature} :: ${name}`, feature, name, line, tags: [`@format:${format}`, `@spec:${item}`], outcome,
    expected: verdict === 'expected-failure' ? 'failed' : null, verdict,
    reason: verdict === 'not-applicable' ? `no ${format} here` : verdict === 'failed' ? 'the bytes differ' : null,
    expectationReason: verdict === 'expected-failure' ? 'known: 7.2 refuses it' : null, durationMs: 3,
  };
}

function results(implementation: string, version: string, scenarios: ScenarioResult[], shard?: string): RunResults {
  return {
    implementation, impl: implementation, oracle: 'qemu', version, ...(shard ? { shard } : {}),
    startedAt: '2026-12-03T10:00:00.000Z', finishedAt: '2026-12-03T10:01:00.000Z',
    counts: countVerdicts(scenarios, 0), problems: [], unusedExpectations: [], scenarios,
  };
}

test('the matrix page renders in chromium with the JSON counts, and the format filter hides the other rows', { timeout: 30_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-deps.sh (Debian package chromium)`);
  const dir = mkdtempSync(join(tmpdir(), 'qbc-matrix-chromium-'));
  try {
    const F = 'features/formats';
    const all: Record<string, ScenarioResult[]> = {
      reference: [
        scenario(`${F}/qcow2/a.feature`, 10, 'qcow2 one', 'qcow2', 'qcow2.cluster_size', 'passed'),
        scenario(`${F}/qcow2/a.feature`, 20, 'qcow2 two', 'qcow2', 'qcow2.cluster_size', 'failed'),
        scenario(`${F}/vpc/b.feature`, 5, 'vpc one', 'vpc', 'vpc.subformat', 'passed'),
        scenario(`${F}/dmg/c.feature`, 7, 'dmg one', 'dmg', 'dmg', 'not-applicable'),
        scenario(`${F}/dmg/c.feature`, 9, 'dmg two', 'dmg', 'dmg.zlib', 'passed'),
      ],
      qemu: [
        scenario(`${F}/qcow2/a.feature`, 10, 'qcow2 one', 'qcow2', 'qcow2.cluster_size', 'passed'),
        scenario(`${F}/qcow2/a.feature`, 20, 'qcow2 two', 'qcow2', 'qcow2.cluster_size', 'expected-failure'),
        scenario(`${F}/vpc/b.feature`, 5, 'vpc one', 'vpc', 'vpc.subformat', 'unexpected-pass'),
        scenario(`${F}/dmg/c.feature`, 7, 'dmg one', 'dmg', 'dmg', 'passed'),
        scenario(`${F}/dmg/c.feature`, 9, 'dmg two', 'dmg', 'dmg.zlib', 'passed'),
      ],
    };
    const files: string[] = [];
    const put = (name: string, r: RunResults) => {
      mkdirSync(join(dir, name), { recursive: true });
      writeFileSync(join(dir, name, 'results.json'), JSON.stringify(r));
      files.push(join(dir, name, 'results.json'));
    };
    put('reference', results('reference', 'qbc 0.1.0', all.reference));
    // qemu's run came in two shards: the page must show one column with both halves
    put('qemu-1', results('qemu', 'qemu-img version 7.2.22', all.qemu.slice(0, 3), '1/2'));
    put('qemu-2', results('qemu', 'qemu-img version 7.2.22', all.qemu.slice(3), '2/2'));
    const out = join(dir, 'matrix');
    const log = console.log;
    console.log = () => undefined;
    try {
      assert.equal(await matrixMain([...files, '--out', out]), 0);
    } finally {
      console.log = log;
    }
    const m = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8')) as Matrix;
    assert.deepEqual(m.implementations.map((c) => [c.name, c.version, c.shards ?? 1]), [['reference', 'qbc 0.1.0', 1], ['qemu', 'qemu-img version 7.2.22', 2]]);

    // a fresh profile directory: playwright passes it to chromium as --user-data-dir
    const browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 15_000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(10_000);
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(pathToFileURL(join(out, 'matrix.html')).href);

      // the summary counts on the page are the JSON's
      for (const c of m.implementations) {
        for (const k of ['passed', 'failed', 'expectedFailure', 'unexpectedPass', 'notApplicable'] as const) {
          const shown = await page.locator(`#summary td[data-impl="${c.name}"][data-count="${k}"]`).innerText();
          assert.equal(Number(shown), c.totals[k], `${c.name} ${k}`);
        }
      }
      assert.deepEqual(
        m.implementations.map((c) => c.totals),
        [
          { passed: 3, failed: 1, expectedFailure: 0, unexpectedPass: 0, notApplicable: 1 },
          { passed: 3, failed: 0, expectedFailure: 1, unexpectedPass: 1, notApplicable: 0 },
        ],
      );
      const rows = page.locator('#matrix tbody tr');
      assert.equal(await rows.count(), m.rows.length);
      assert.equal(await page.locator('#matrix tbody tr:visible').count(), m.rows.length, 'all rows show before filtering');
      // a scenario links to its feature file and line
      const link = page.locator('#matrix a', { hasText: 'qcow2 two' }).first();
      assert.match(String(await link.getAttribute('href')), /features\/formats\/qcow2\/a\.feature#L20$/);

      for (const format of m.formats) {
        await page.selectOption('#format-filter', format);
        const visible = await page.locator('#matrix tbody tr:visible').evaluateAll((trs) => trs.map((t) => t.getAttribute('data-format')));
        const want = m.rows.filter((r) => r.format === format).length;
        assert.ok(want > 0);
        assert.deepEqual(visible, Array(want).fill(format), `filter ${format}`);
        assert.equal(await page.locator('#rows-shown').innerText(), String(want));
      }
      await page.selectOption('#format-filter', '');
      assert.equal(await page.locator('#matrix tbody tr:visible').count(), m.rows.length, 'all formats again');
      assert.deepEqual(errors, [], 'no script errors');
      assert.deepEqual(requests.filter((u) => !u.startsWith('file:')), [], 'the page fetches nothing');
    } finally {
      await browser.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
