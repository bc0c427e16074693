/**
 * `qbc expectations update --impl X [--from reports/X/results.json] [--file F]`: brings
 * expectations/X.json in line with a run's results.
 *
 * - a scenario that failed without an entry gets one, with reason and reproduction
 *   "TODO: review" (and the run's failure message after it), so the next run still fails
 *   until a person explains it: an unreviewed baseline never makes CI green;
 * - an entry whose scenario now passed is removed (it would be an unexpected pass);
 * - an entry naming a scenario that no longer exists in features/ is removed (expired);
 * - every other entry stays, in its place and unchanged (a run of part of the suite keeps
 *   the entries of the scenarios it did not run).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ExpectationsError, expectationsPath, loadExpectations, UNREVIEWED, type ExpectationEntry, type ExpectationsFile } from './expectations.js';
import { scanFeatures } from './features.js';
import { repoPath } from './paths.js';
import type { RunResults } from './results.js';
import { UsageError } from './usage.js';

export const EXPECTATIONS_HELP = `qbc expectations update --impl NAME [--from FILE] [--file FILE]

Updates the baseline of one implementation from a run's results:
  new failures are added with reason "TODO: review" (the run keeps failing until
  someone explains them: kind, reason, and for an implementation bug a reproduction),
  entries whose scenario passed or no longer exists are removed, the rest are kept.

  --impl NAME   the implementation (its results.json names it too)
  --from FILE   the run's results (default: reports/NAME/results.json)
  --file FILE   the baseline to write (default: expectations/NAME.json)`;

export interface UpdateSummary {
  file: ExpectationsFile;
  added: string[];
  removed: { scenario: string; why: string }[];
}

/** The pure part: old baseline + results + the suite's scenarios -> new baseline. */
export function updateExpectations(old: ExpectationsFile, results: RunResults, known: ReadonlySet<string>): UpdateSummary {
  const added: string[] = [];
  const removed: { scenario: string; why: string }[] = [];
  const byScenario = new Map(results.scenarios.map((s) => [s.scenario, s]));
  const entries: ExpectationEntry[] = [];
  for (const e of old.entries) {
    const ran = byScenario.get(e.scenario);
    if (!known.has(e.scenario)) removed.push({ scenario: e.scenario, why: 'no such scenario (expired)' });
    else if (ran && ran.outcome === 'passed') removed.push({ scenario: e.scenario, why: 'it passed' });
    else entries.push(e);
  }
  const listed = new Set(entries.map((e) => e.scenario));
  for (const s of results.scenarios) {
    if (s.outcome !== 'failed' || listed.has(s.scenario)) continue;
    const said = (s.reason ?? '').replace(/\s+/g, ' ').trim().slice(0, 400);
    entries.push({
      scenario: s.scenario,
      expected: 'failed',
      reason: UNREVIEWED,
      kind: 'implementation-bug',
      reproduction: said ? `${UNREVIEWED} (the run said: ${said})` : UNREVIEWED,
    });
    added.push(s.scenario);
  }
  return { file: { implementation: old.implementation, entries }, added, removed };
}

export async function main(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { impl: { type: 'string' }, from: { type: 'string' }, file: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      console.log(EXPECTATIONS_HELP);
      return 0;
    }
    if (positionals[0] !== 'update' || positionals.length !== 1) throw new UsageError('subcommand', `the only subcommand is "update" (got ${JSON.stringify(positionals.join(' '))})`);
    const impl = values.impl;
    if (!impl) throw new UsageError('--impl', 'is required (the implementation whose baseline to update)');
    const from = values.from ? resolve(process.cwd(), values.from) : repoPath('reports', impl, 'results.json');
    if (!existsSync(from)) throw new UsageError('--from', `no results at ${from}: run \`qbc run --impl ${impl}\` first`);
    let results: RunResults;
    try {
      results = JSON.parse(readFileSync(from, 'utf8')) as RunResults;
    } catch (err) {
      throw new UsageError('--from', `${from} is not valid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(results.scenarios)) throw new UsageError('--from', `${from} has no "scenarios" list (not a qbc results.json)`);
    if (results.implementation !== impl) throw new UsageError('--from', `${from} is a run of "${results.implementation}", not "${impl}"`);
    const file = values.file ? resolve(process.cwd(), values.file) : expectationsPath(impl);
    const old = loadExpectations(impl, existsSync(file) ? file : undefined);
    const scan = scanFeatures();
    if (scan.errors.length > 0) throw new UsageError('features', `the feature files do not parse: ${scan.errors[0]}`);
    const summary = updateExpectations(old, results, new Set(scan.scenarios.map((s) => s.scenario)));
    writeFileSync(file, JSON.stringify(summary.file, null, 2) + '\n');
    console.log(`wrote ${file}: ${summary.file.entries.length} entries, ${summary.added.length} added, ${summary.removed.length} removed`);
    for (const r of summary.removed) console.log(`  - ${r.scenario} (${r.why})`);
    for (const a of summary.added) console.log(`  + ${a}`);
    if (summary.added.length > 0) console.log(`review the ${summary.added.length} "${UNREVIEWED}" entries: until then every run of ${impl} fails`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof ExpectationsError) {
      console.error(`qbc expectations: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
