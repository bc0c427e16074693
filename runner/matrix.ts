/**
 * `qbc matrix`: the conformance matrix. Rows are format x manual item (from each
 * scenario's @format: and @spec: tags), columns are implementations (one results.json
 * each), cells count the verdicts of the scenarios in that row.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { repoPath, repoRelative } from './paths.js';
import type { Verdict } from './expectations.js';
import type { RunResults } from './results.js';
import { UsageError } from './usage.js';

export const MATRIX_HELP = `qbc matrix [results.json...] [--out DIR]

Builds the conformance matrix (format x manual item x implementation) from the
results.json files of earlier \`qbc run\`s (default: reports/*/results.json) and writes
DIR/matrix.json, matrix.md and matrix.html (default DIR: reports/matrix).`;

export const NO_FORMAT = '(no @format)';
export const NO_SPEC = '(no @spec)';

export interface Cell {
  passed: number;
  failed: number;
  expectedFailure: number;
  unexpectedPass: number;
  notApplicable: number;
  scenarios: { scenario: string; verdict: Verdict; reason: string | null }[];
}

export interface MatrixColumn {
  name: string;
  impl: string;
  oracle: string;
  startedAt: string;
  source: string;
  totals: Omit<Cell, 'scenarios'>;
}

export interface MatrixRow {
  format: string;
  item: string;
  cells: Record<string, Cell>;
}

export interface Matrix {
  generatedAt: string;
  implementations: MatrixColumn[];
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

export function buildMatrix(runs: { results: RunResults; source: string }[], now = new Date()): Matrix {
  const columns: MatrixColumn[] = [];
  const rows = new Map<string, MatrixRow>();
  for (const { results, source } of runs) {
    // Two runs of one implementation (say, two qemu versions) stay apart by their directory.
    let name = results.implementation;
    if (columns.some((c) => c.name === name)) name = `${name} (${basename(dirname(source))})`;
    const totals = emptyCounts();
    columns.push({ name, impl: results.impl, oracle: results.oracle, startedAt: results.startedAt, source, totals });
    for (const s of results.scenarios) {
      totals[VERDICT_FIELD[s.verdict]]++;
      const formats = tagValues(s.tags, '@format:');
      const items = tagValues(s.tags, '@spec:');
      for (const format of formats.length ? formats : [NO_FORMAT]) {
        for (const item of items.length ? items : [NO_SPEC]) {
          const key = `${format}\u0000${item}`;
          let row = rows.get(key);
          if (!row) rows.set(key, (row = { format, item, cells: {} }));
          const cell = (row.cells[name] ??= { ...emptyCounts(), scenarios: [] });
          cell[VERDICT_FIELD[s.verdict]]++;
          cell.scenarios.push({ scenario: s.scenario, verdict: s.verdict, reason: s.reason ?? s.expectationReason });
        }
      }
    }
  }
  const sorted = [...rows.values()].sort((a, b) => a.format.localeCompare(b.format) || a.item.localeCompare(b.item));
  return { generatedAt: now.toISOString(), implementations: columns, rows: sorted };
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

export function renderMarkdown(m: Matrix): string {
  const names = m.implementations.map((c) => c.name);
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    '# qbc conformance matrix',
    '',
    `Generated ${m.generatedAt}. Rows: format x manual item (@spec tag); cells: scenario verdicts.`,
    '',
    '| implementation | oracle | run started | passed | failed | expected fail | unexpected pass | n.a. |',
    '|---|---|---|---:|---:|---:|---:|---:|',
    ...m.implementations.map(
      (c) =>
        `| ${esc(c.name)} | ${c.oracle} | ${c.startedAt} | ${c.totals.passed} | ${c.totals.failed} | ` +
        `${c.totals.expectedFailure} | ${c.totals.unexpectedPass} | ${c.totals.notApplicable} |`,
    ),
    '',
    `| format | item | ${names.map(esc).join(' | ')} |`,
    `|---|---|${names.map(() => '---').join('|')}|`,
    ...m.rows.map((r) => `| ${esc(r.format)} | ${esc(r.item)} | ${names.map((n) => cellText(r.cells[n])).join(' | ')} |`),
    '',
  ];
  return lines.join('\n');
}

function html(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function renderHtml(m: Matrix): string {
  const names = m.implementations.map((c) => c.name);
  const cell = (r: MatrixRow, n: string) => {
    const c = r.cells[n];
    const detail = c
      ? `<details><summary>${html(cellText(c))}</summary><ul>${c.scenarios
          .map((s) => `<li><b>${html(s.verdict)}</b> ${html(s.scenario)}${s.reason ? `<br><i>${html(s.reason)}</i>` : ''}</li>`)
          .join('')}</ul></details>`
      : '-';
    return `<td class="${cellClass(c)}">${detail}</td>`;
  };
  const totals = m.implementations
    .map(
      (c) =>
        `<tr><th>${html(c.name)}</th><td>${html(c.oracle)}</td><td>${html(c.startedAt)}</td>` +
        `<td class="${cellClass(c.totals)}">${html(cellText(c.totals))}</td></tr>`,
    )
    .join('\n');
  const body = m.rows
    .map((r) => `<tr><th>${html(r.format)}</th><th>${html(r.item)}</th>${names.map((n) => cell(r, n)).join('')}</tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qbc conformance matrix</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #eee; position: sticky; top: 0; }
td.pass { background: #dff3df; } td.fail { background: #f8d4d4; } td.xfail { background: #fbeccb; }
td.na { background: #eceff3; color: #555; } td.none { color: #aaa; }
details summary { cursor: pointer; } ul { margin: 4px 0 0 1em; padding: 0; font-size: 12px; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 6px; border: 1px solid #ccc; }
</style></head><body>
<h1>qbc conformance matrix</h1>
<p>Generated ${html(m.generatedAt)}. Rows are format &times; manual item (the scenarios' <code>@spec</code> tags);
cells count the verdicts of those scenarios; open a cell for its scenarios.</p>
<p class="legend"><span style="background:#dff3df">all pass</span><span style="background:#f8d4d4">unexpected failure or pass</span><span style="background:#fbeccb">expected failure</span><span style="background:#eceff3">not applicable</span></p>
<table><thead><tr><th>implementation</th><th>oracle</th><th>run started</th><th>verdicts</th></tr></thead>
<tbody>
${totals}
</tbody></table>
<table><thead><tr><th>format</th><th>item</th>${names.map((n) => `<th>${html(n)}</th>`).join('')}</tr></thead>
<tbody>
${body}
</tbody></table>
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
      options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      console.log(MATRIX_HELP);
      return 0;
    }
    const inputs = positionals.length ? positionals.map((p) => resolve(p)) : defaultInputs();
    if (inputs.length === 0) throw new UsageError('inputs', 'no results.json given and none under reports/*/ (run `qbc run` first)');
    const runs = inputs.map((f) => ({ results: readResults(f), source: repoRelative(f, process.cwd()) }));
    const matrix = buildMatrix(runs);
    const out = values.out ? resolve(values.out) : repoPath('reports', 'matrix');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'matrix.json'), JSON.stringify(matrix, null, 2) + '\n');
    writeFileSync(join(out, 'matrix.md'), renderMarkdown(matrix));
    writeFileSync(join(out, 'matrix.html'), renderHtml(matrix));
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
