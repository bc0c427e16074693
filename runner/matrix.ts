/**
 * `qbc matrix`: the conformance matrix. Rows are format x manual item (from each
 * scenario's @format: and @spec: tags), columns are implementations (one results.json
 * each), cells count the verdicts of the scenarios in that row.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { repoPath, repoRelative } from './paths.js';
import type { Verdict } from './expectations.js';
import type { Counts, RunResults } from './results.js';
import { UsageError } from './usage.js';

export const MATRIX_HELP = `qbc matrix [results.json...] [--out DIR] [--link-base URL] [--items FILE]

Builds the conformance matrix (format x manual item x implementation) from the
results.json files of earlier \`qbc run\`s (default: reports/*/results.json) and writes
DIR/matrix.json, matrix.md and matrix.html (default DIR: reports/matrix).

Shards of one implementation (\`qbc run --shard I/N\`, as the CI template runs them) are
merged into one column; a missing or repeated shard is an error.
  --link-base URL   where scenario links point: URL/<feature path>#L<line> (default: the
                    repository, relative to DIR, so the page works from file://)
  --items FILE      manual items for row summaries (default: spec/manual-items.json)`;

export const NO_FORMAT = '(no @format)';
export const NO_SPEC = '(no @spec)';

export interface CellScenario {
  scenario: string;
  verdict: Verdict;
  reason: string | null;
  feature?: string;
  line?: number;
}

export interface Cell {
  passed: number;
  failed: number;
  expectedFailure: number;
  unexpectedPass: number;
  notApplicable: number;
  scenarios: CellScenario[];
}

export interface MatrixColumn {
  name: string;
  impl: string;
  /** the implementation's version, as its adapter reports it (null when the run did not record one) */
  version: string | null;
  oracle: string;
  startedAt: string;
  /** the results.json file(s) of the column: several when shards were merged */
  source: string;
  /** "N shards" when the column merges a sharded run */
  shards?: number;
  totals: Omit<Cell, 'scenarios'>;
}

export interface MatrixRow {
  format: string;
  item: string;
  /** the manual item's summary (spec/manual-items.json), when known */
  summary?: string;
  /** the feature files of the row's scenarios */
  features: string[];
  cells: Record<string, Cell>;
}

export interface Matrix {
  generatedAt: string;
  implementations: MatrixColumn[];
  /** every format that has a row, sorted: the page's filter offers these */
  formats: string[];
  rows: MatrixRow[];
}

const VERDICT_FIELD: Record<Verdict, keyof Omit<Cell, 'scenarios'>> = {
  passed: 'passed',
  failed: 'failed',
  'expected-failure': 'expectedFailure',
  'unexpected-pass': 'unexpectedPass',
  'not-applicable': 'notApplicable',
};

function emptyCounts(): Omit<Cell, 'scenarios'> {
  return { passed: 0, failed: 0, expectedFailure: 0, unexpectedPass: 0, notApplicable: 0 };
}

function tagValues(tags: string[], prefix: string): string[] {
  return tags.filter((t) => t.startsWith(prefix)).map((t) => t.slice(prefix.length));
}

export class MatrixInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MatrixInputError';
  }
}

/**
 * Merges the shards of one sharded run (same implementation, shard "I/N" with one N) into one
 * results; runs without a shard pass through. Every shard 1..N must be present exactly once.
 */
export function mergeShards(runs: { results: RunResults; source: string }[]): { results: RunResults; source: string; shards?: number }[] {
  const out: { results: RunResults; source: string; shards?: number }[] = [];
  const groups = new Map<string, { n: number; parts: Map<number, { results: RunResults; source: string }> }>();
  for (const r of runs) {
    const m = r.results.shard ? /^(\d+)\/(\d+)$/.exec(r.results.shard) : null;
    if (!m) {
      out.push(r);
      continue;
    }
    const [i, n] = [Number(m[1]), Number(m[2])];
    const key = `${r.results.implementation}\u0000${r.results.version ?? ''}\u0000${r.results.oracle}\u0000${n}`;
    let g = groups.get(key);
    if (!g) {
      g = { n, parts: new Map() };
      groups.set(key, g);
      out.push({ results: r.results, source: key }); // placeholder, replaced below, keeps input order
    }
    if (g.parts.has(i)) throw new MatrixInputError(`${r.source}: shard ${i}/${n} of ${r.results.implementation} is given twice (also ${g.parts.get(i)!.source})`);
    g.parts.set(i, r);
  }
  return out.map((o) => {
    const g = groups.get(o.source);
    if (!g) return o;
    const missing = Array.from({ length: g.n }, (_, k) => k + 1).filter((i) => !g.parts.has(i));
    if (missing.length) throw new MatrixInputError(`${o.results.implementation}: shard(s) ${missing.map((i) => `${i}/${g.n}`).join(', ')} missing (have ${[...g.parts.values()].map((p) => p.source).join(', ')})`);
    const parts = [...g.parts.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
    const seen = new Set<string>();
    for (const p of parts) {
      for (const s of p.results.scenarios) {
        if (seen.has(s.scenario)) throw new MatrixInputError(`${p.source}: scenario "${s.scenario}" is in two shards of ${o.results.implementation}`);
        seen.add(s.scenario);
      }
    }
    const first = parts[0].results;
    const results: RunResults = {
      ...first,
      startedAt: parts.map((p) => p.results.startedAt).sort()[0],
      finishedAt: parts.map((p) => p.results.finishedAt).sort().at(-1)!,
      problems: parts.flatMap((p) => p.results.problems),
      // an expectation is unused only when no shard used it
      unusedExpectations: first.unusedExpectations.filter((u) => parts.every((p) => p.results.unusedExpectations.some((v) => v.scenario === u.scenario))),
      scenarios: parts.flatMap((p) => p.results.scenarios),
      shard: undefined,
    };
    delete results.shard;
    const countsOf = parts.map((p) => p.results.counts);
    results.counts = {
      passed: sum(countsOf, 'passed'), failed: sum(countsOf, 'failed'), expectedFailures: sum(countsOf, 'expectedFailures'),
      unexpectedPasses: sum(countsOf, 'unexpectedPasses'), notApplicable: sum(countsOf, 'notApplicable'), problems: sum(countsOf, 'problems'),
    };
    return { results, source: parts.map((p) => p.source).join(' + '), shards: g.n };
  });
}

function sum(xs: Counts[], k: keyof Counts): number {
  return xs.reduce((a, x) => a + x[k], 0);
}

export function buildMatrix(runs: { results: RunResults; source: string }[], now = new Date(), summaries: Map<string, string> = new Map()): Matrix {
  const columns: MatrixColumn[] = [];
  const rows = new Map<string, MatrixRow>();
  for (const { results, source, shards } of mergeShards(runs)) {
    // Two runs of one implementation (say, two qemu versions) stay apart by their directory.
    let name = results.implementation;
    if (columns.some((c) => c.name === name)) name = `${name} (${basename(dirname(source.split(' + ')[0]))})`;
    const totals = emptyCounts();
    columns.push({
      name, impl: results.impl, version: results.version ?? null, oracle: results.oracle, startedAt: results.startedAt, source,
      ...(shards ? { shards } : {}), totals,
    });
    for (const s of results.scenarios) {
      totals[VERDICT_FIELD[s.verdict]]++;
      const formats = tagValues(s.tags, '@format:');
      const items = tagValues(s.tags, '@spec:');
      for (const format of formats.length ? formats : [NO_FORMAT]) {
        for (const item of items.length ? items : [NO_SPEC]) {
          const key = `${format}\u0000${item}`;
          let row = rows.get(key);
          if (!row) {
            row = { format, item, features: [], cells: {} };
            const summary = summaries.get(item);
            if (summary) row.summary = summary;
            rows.set(key, row);
          }
          if (s.feature && !row.features.includes(s.feature)) row.features.push(s.feature);
          const cell = (row.cells[name] ??= { ...emptyCounts(), scenarios: [] });
          cell[VERDICT_FIELD[s.verdict]]++;
          cell.scenarios.push({
            scenario: s.scenario, verdict: s.verdict, reason: s.reason ?? s.expectationReason,
            ...(s.feature ? { feature: s.feature } : {}), ...(s.line !== undefined ? { line: s.line } : {}),
          });
        }
      }
    }
  }
  const sorted = [...rows.values()].sort((a, b) => a.format.localeCompare(b.format) || a.item.localeCompare(b.item));
  for (const r of sorted) r.features.sort();
  const formats = [...new Set(sorted.map((r) => r.format))].sort();
  return { generatedAt: now.toISOString(), implementations: columns, formats, rows: sorted };
}

/** Short text for a cell: only the non-zero counts, failures first. */
export function cellText(cell: Omit<Cell, 'scenarios'> | undefined): string {
  if (!cell) return '-';
  const parts: string[] = [];
  if (cell.failed) parts.push(`${cell.failed} FAIL`);
  if (cell.unexpectedPass) parts.push(`${cell.unexpectedPass} unexpected pass`);
  if (cell.passed) parts.push(`${cell.passed} pass`);
  if (cell.expectedFailure) parts.push(`${cell.expectedFailure} expected fail`);
  if (cell.notApplicable) parts.push(`${cell.notApplicable} n.a.`);
  return parts.join(', ') || '-';
}

function cellClass(cell: Omit<Cell, 'scenarios'> | undefined): string {
  if (!cell) return 'none';
  if (cell.failed || cell.unexpectedPass) return 'fail';
  if (cell.expectedFailure) return 'xfail';
  if (cell.passed) return 'pass';
  return 'na';
}

function columnTitle(c: MatrixColumn): string {
  return c.version ? `${c.name} (${c.version})` : c.name;
}

/** The link of a scenario: BASE/<feature>#L<line>, or null without a feature path. */
function scenarioLink(s: CellScenario, linkBase: string): string | null {
  if (!s.feature) return null;
  return `${linkBase.replace(/\/$/, '')}/${s.feature}${s.line !== undefined ? `#L${s.line}` : ''}`;
}

export function renderMarkdown(m: Matrix, linkBase = '..'): string {
  const names = m.implementations.map((c) => c.name);
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    '# qbc conformance matrix',
    '',
    `Generated ${m.generatedAt}. Rows: format x manual item (@spec tag); cells: scenario verdicts.`,
    '',
    '| implementation | version | oracle | run started | passed | failed | expected fail | unexpected pass | n.a. |',
    '|---|---|---|---|---:|---:|---:|---:|---:|',
    ...m.implementations.map(
      (c) =>
        `| ${esc(c.name)} | ${esc(c.version ?? '?')}${c.shards ? ` (${c.shards} shards)` : ''} | ${c.oracle} | ${c.startedAt} | ${c.totals.passed} | ${c.totals.failed} | ` +
        `${c.totals.expectedFailure} | ${c.totals.unexpectedPass} | ${c.totals.notApplicable} |`,
    ),
    '',
    `| format | item | ${names.map(esc).join(' | ')} |`,
    `|---|---|${names.map(() => '---').join('|')}|`,
    ...m.rows.map((r) => `| ${esc(r.format)} | ${esc(r.item)} | ${names.map((n) => cellText(r.cells[n])).join(' | ')} |`),
    '',
  ];
  // Failures and expected failures, each with its link and reason: what a reader comes for.
  const notable = m.rows.flatMap((r) =>
    names.flatMap((n) => (r.cells[n]?.scenarios ?? []).filter((s) => s.verdict !== 'passed' && s.verdict !== 'not-applicable').map((s) => ({ n, s }))),
  );
  if (notable.length) {
    lines.push('## Failures and expected failures', '');
    const seen = new Set<string>();
    for (const { n, s } of notable) {
      const key = `${n}\u0000${s.scenario}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const link = scenarioLink(s, linkBase);
      lines.push(`- **${esc(n)}** ${s.verdict}: ${link ? `[${esc(s.scenario)}](${link})` : esc(s.scenario)}${s.reason ? ` — ${esc(s.reason)}` : ''}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

function html(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The filter's script: plain DOM, no framework, nothing fetched (works from file://). */
const FILTER_SCRIPT = `
(function () {
  var select = document.getElementById('format-filter');
  var shown = document.getElementById('rows-shown');
  function apply() {
    var f = select.value, n = 0;
    var rows = document.querySelectorAll('#matrix tbody tr');
    for (var i = 0; i < rows.length; i++) {
      var hide = f !== '' && rows[i].getAttribute('data-format') !== f;
      rows[i].hidden = hide;
      if (!hide) n++;
    }
    shown.textContent = String(n);
    if (history.replaceState) history.replaceState(null, '', f ? '#format=' + encodeURIComponent(f) : '#');
  }
  select.addEventListener('change', apply);
  var m = /#format=([^&]+)/.exec(location.hash);
  if (m) select.value = decodeURIComponent(m[1]);
  apply();
})();
`;

export function renderHtml(m: Matrix, linkBase = '..'): string {
  const names = m.implementations.map((c) => c.name);
  const scenarioItem = (s: CellScenario) => {
    const link = scenarioLink(s, linkBase);
    const where = link ? `<a href="${html(link)}">${html(s.scenario)}${s.line !== undefined ? `:${s.line}` : ''}</a>` : html(s.scenario);
    return `<li class="v-${html(s.verdict)}"><b>${html(s.verdict)}</b> ${where}${s.reason ? `<br><i>${html(s.reason)}</i>` : ''}</li>`;
  };
  const cell = (r: MatrixRow, n: string) => {
    const c = r.cells[n];
    const detail = c ? `<details><summary>${html(cellText(c))}</summary><ul>${c.scenarios.map(scenarioItem).join('')}</ul></details>` : '-';
    return `<td class="${cellClass(c)}" data-impl="${html(n)}">${detail}</td>`;
  };
  const count = (c: MatrixColumn, k: keyof MatrixColumn['totals']) => `<td class="num" data-impl="${html(c.name)}" data-count="${k}">${c.totals[k]}</td>`;
  const totals = m.implementations
    .map(
      (c) =>
        `<tr><th>${html(c.name)}</th><td>${html(c.version ?? '?')}${c.shards ? ` (${c.shards} shards)` : ''}</td><td>${html(c.oracle)}</td><td>${html(c.startedAt)}</td>` +
        (['passed', 'failed', 'expectedFailure', 'unexpectedPass', 'notApplicable'] as const).map((k) => count(c, k)).join('') + '</tr>',
    )
    .join('\n');
  const body = m.rows
    .map(
      (r) =>
        `<tr data-format="${html(r.format)}"><th>${html(r.format)}</th><th title="${html(r.summary ?? '')}">${html(r.item)}` +
        `<div class="features">${r.features.map(html).join('<br>')}</div></th>${names.map((n) => cell(r, n)).join('')}</tr>`,
    )
    .join('\n');
  const options = m.formats.map((f) => `<option value="${html(f)}">${html(f)}</option>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qbc conformance matrix</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #eee; position: sticky; top: 0; }
td.num { text-align: right; }
td.pass { background: #dff3df; } td.fail { background: #f8d4d4; } td.xfail { background: #fbeccb; }
td.na { background: #eceff3; color: #555; } td.none { color: #aaa; }
details summary { cursor: pointer; } ul { margin: 4px 0 0 1em; padding: 0; font-size: 12px; }
.features { font-weight: normal; font-size: 11px; color: #666; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 6px; border: 1px solid #ccc; }
</style></head><body>
<h1>qbc conformance matrix</h1>
<p>Generated ${html(m.generatedAt)}. Rows are format &times; manual item (the scenarios' <code>@spec</code> tags);
cells count the verdicts of those scenarios; open a cell for its scenarios, their feature file and line, and the reason.</p>
<p class="legend"><span style="background:#dff3df">all pass</span><span style="background:#f8d4d4">unexpected failure or pass</span><span style="background:#fbeccb">expected failure</span><span style="background:#eceff3">not applicable</span></p>
<table id="summary"><thead><tr><th>implementation</th><th>version</th><th>oracle</th><th>run started</th><th>passed</th><th>failed</th><th>expected fail</th><th>unexpected pass</th><th>n.a.</th></tr></thead>
<tbody>
${totals}
</tbody></table>
<p><label>Format: <select id="format-filter"><option value="">all formats</option>${options}</select></label>
<span id="rows-shown">${m.rows.length}</span> of ${m.rows.length} rows shown</p>
<table id="matrix"><thead><tr><th>format</th><th>item</th>${m.implementations.map((c) => `<th>${html(columnTitle(c))}</th>`).join('')}</tr></thead>
<tbody>
${body}
</tbody></table>
<script>${FILTER_SCRIPT}</script>
</body></html>
`;
}

function defaultInputs(): string[] {
  const reports = repoPath('reports');
  if (!existsSync(reports)) return [];
  return readdirSync(reports, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(reports, d.name, 'results.json'))
    .filter((f) => existsSync(f))
    .sort();
}

/** id -> summary of the manual items (none when the file is absent or unreadable: rows then show ids only). */
function readSummaries(file: string): Map<string, string> {
  if (!existsSync(file)) return new Map();
  try {
    const items = JSON.parse(readFileSync(file, 'utf8')) as { id: string; summary?: string }[];
    return new Map(items.filter((i) => typeof i.summary === 'string').map((i) => [i.id, i.summary!]));
  } catch {
    return new Map();
  }
}

function readResults(file: string): RunResults {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(file, `cannot read results: ${(err as Error).message}`);
  }
  const r = data as Partial<RunResults>;
  if (typeof r.implementation !== 'string' || !Array.isArray(r.scenarios)) {
    throw new UsageError(file, 'is not a results.json of `qbc run` (needs "implementation" and "scenarios")');
  }
  for (const [i, s] of r.scenarios.entries()) {
    if (typeof s?.scenario !== 'string' || !Array.isArray(s.tags) || !(s.verdict in VERDICT_FIELD)) {
      throw new UsageError(file, `scenarios[${i}] needs "scenario", "tags" and a known "verdict"`);
    }
  }
  return r as RunResults;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { out: { type: 'string' }, 'link-base': { type: 'string' }, items: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      console.log(MATRIX_HELP);
      return 0;
    }
    const inputs = positionals.length ? positionals.map((p) => resolve(p)) : defaultInputs();
    if (inputs.length === 0) throw new UsageError('inputs', 'no results.json given and none under reports/*/ (run `qbc run` first)');
    const runs = inputs.map((f) => ({ results: readResults(f), source: repoRelative(f, process.cwd()) }));
    const out = values.out ? resolve(values.out) : repoPath('reports', 'matrix');
    const matrix = buildMatrix(runs, new Date(), readSummaries(values.items ? resolve(values.items) : repoPath('spec', 'manual-items.json')));
    // links relative to the page, so it works from file:// and from a CI artifact unpacked next to a checkout
    const linkBase = values['link-base'] ?? (relative(out, repoPath('.')).split(sep).join('/') || '.');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'matrix.json'), JSON.stringify(matrix, null, 2) + '\n');
    writeFileSync(join(out, 'matrix.md'), renderMarkdown(matrix, linkBase));
    writeFileSync(join(out, 'matrix.html'), renderHtml(matrix, linkBase));
    console.log(
      `qbc matrix: ${matrix.rows.length} row(s) x ${matrix.implementations.length} implementation(s) ` +
        `(${matrix.implementations.map((c) => c.name).join(', ')}) -> ${repoRelative(out, process.cwd())}/matrix.{json,md,html}`,
    );
    return 0;
  } catch (err) {
    console.error(`qbc matrix: ${(err as Error).message}`);
    return 2;
  }
}
