/**
 * results.json (one run of one implementation) and the summary printed after a run.
 *
 * The summary's last line is exactly `N passed, N failed`, where failed counts unexpected
 * failures, unexpected passes and problems outside scenarios. Expected failures and
 * not-applicable scenarios are printed above it and counted in neither number.
 */
import type { ExpectationEntry, Judged, Verdict } from './expectations.js';
import type { RunProblem } from './outcomes.js';

export interface ScenarioResult {
  scenario: string;
  feature: string;
  name: string;
  tags: string[];
  /** line of the scenario (an outline's Examples row) in the feature file, when known */
  line?: number;
  /** what happened */
  outcome: 'passed' | 'failed' | 'not-applicable';
  /** what the expectations file says, null when the scenario is not listed */
  expected: 'failed' | 'not-applicable' | null;
  /** the run's judgement of outcome against expected */
  verdict: Verdict;
  /** why it failed or is not applicable (from the run); the expectation's reason when expected */
  reason: string | null;
  expectationReason: string | null;
  durationMs: number;
}

export interface Counts {
  passed: number;
  failed: number;
  expectedFailures: number;
  unexpectedPasses: number;
  notApplicable: number;
  problems: number;
}

export interface RunResults {
  implementation: string;
  /** the --impl spec as given (a name or a module path) */
  impl: string;
  oracle: string;
  /** the implementation's version (its adapter's `version`), when known */
  version?: string;
  /** cucumber's "I/N" when the run was one shard of the suite */
  shard?: string;
  startedAt: string;
  finishedAt: string;
  counts: Counts;
  problems: string[];
  unusedExpectations: { scenario: string; expected: string; reason: string }[];
  scenarios: ScenarioResult[];
}

export function buildResults(args: {
  implementation: string;
  impl: string;
  oracle: string;
  startedAt: Date;
  finishedAt: Date;
  judged: Judged[];
  problems: RunProblem[];
  unused: ExpectationEntry[];
}): RunResults {
  const scenarios = args.judged.map((j): ScenarioResult => ({
    scenario: j.scenario,
    feature: j.feature,
    name: j.name,
    tags: j.tags,
    ...(j.line !== undefined ? { line: j.line } : {}),
    outcome: j.outcome,
    expected: j.expected,
    verdict: j.verdict,
    reason: j.reason ?? null,
    expectationReason: j.expectationReason ?? null,
    durationMs: Math.round(j.durationMs),
  }));
  return {
    implementation: args.implementation,
    impl: args.impl,
    oracle: args.oracle,
    startedAt: args.startedAt.toISOString(),
    finishedAt: args.finishedAt.toISOString(),
    counts: countVerdicts(scenarios, args.problems.length),
    problems: args.problems.map((p) => p.message),
    unusedExpectations: args.unused.map((u) => ({ ...u })),
    scenarios,
  };
}

export function countVerdicts(scenarios: { verdict: Verdict }[], problems: number): Counts {
  const n = (v: Verdict) => scenarios.filter((s) => s.verdict === v).length;
  const unexpectedPasses = n('unexpected-pass');
  return {
    passed: n('passed'),
    failed: n('failed') + unexpectedPasses + problems,
    expectedFailures: n('expected-failure'),
    unexpectedPasses,
    notApplicable: n('not-applicable'),
    problems,
  };
}

/** Lines for the terminal; the last one is the machine-read `N passed, N failed`. */
export function summaryLines(r: RunResults): string[] {
  const lines: string[] = [];
  const list = (title: string, verdict: Verdict, why: (s: ScenarioResult) => string | null) => {
    const hits = r.scenarios.filter((s) => s.verdict === verdict);
    if (hits.length === 0) return;
    lines.push(`${title} (${hits.length}):`);
    for (const s of hits) {
      const reason = why(s);
      lines.push(`  ${s.scenario}${reason ? `\n      ${reason}` : ''}`);
    }
  };
  lines.push('', `qbc run: implementation ${r.implementation} (oracle ${r.oracle})`);
  list('not applicable', 'not-applicable', (s) => s.reason);
  list('expected failures', 'expected-failure', (s) => s.expectationReason);
  list('UNEXPECTED PASSES (remove them from the expectations file)', 'unexpected-pass', (s) =>
    `expected ${s.expected}: ${s.expectationReason ?? ''}`,
  );
  list('FAILED', 'failed', (s) => s.reason);
  if (r.problems.length > 0) {
    lines.push(`PROBLEMS OUTSIDE SCENARIOS (${r.problems.length}):`);
    for (const p of r.problems) lines.push(`  ${p}`);
  }
  for (const s of r.scenarios) {
    if (s.verdict === 'not-applicable' && s.expected === 'failed') {
      lines.push(`note: ${s.scenario} is expected to fail but was not applicable this time`);
    }
  }
  if (r.unusedExpectations.length > 0) {
    lines.push(`note: ${r.unusedExpectations.length} expectation(s) name scenarios that did not run:`);
    for (const u of r.unusedExpectations) lines.push(`  ${u.scenario}`);
  }
  const c = r.counts;
  lines.push(
    `${c.expectedFailures} expected failure(s), ${c.notApplicable} not applicable, ` +
      `${c.unexpectedPasses} unexpected pass(es), ${r.scenarios.length} scenario(s) in all`,
  );
  lines.push(`${c.passed} passed, ${c.failed} failed`);
  return lines;
}
