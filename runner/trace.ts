/**
 * `qbc trace`: traceability from the manual's items (spec/manual-items.json) to the
 * scenarios that test them (their @spec:<id> tags).
 *
 * Errors (exit 1): a @spec tag naming no known item, a feature that does not parse, and,
 * with --formats, an item of one of those formats that no scenario covers.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { scanFeatures, type PlannedScenario } from './features.js';
import { repoPath, repoRelative } from './paths.js';
import { UsageError } from './usage.js';

export const TRACE_HELP = `qbc trace [--formats raw,qcow2] [--items FILE] [--out DIR]

Lists every item of spec/manual-items.json with the scenarios whose @spec tag names
it, items no scenario names as UNCOVERED, and @spec tags that name no item as errors.
Writes DIR/trace.md and trace.json (default DIR: reports/trace).

  --formats LIST  items of these formats must be covered (exit 1 otherwise)
  --items FILE    the item list (default: spec/manual-items.json)
Exit status: 0 clean, 1 unknown @spec ids / parse errors / uncovered required items,
2 the item list is missing or malformed.`;

export interface ManualItem {
  id: string;
  section: string;
  summary: string;
  source: 'manual' | 'qemu-7.2';
}

export interface TraceItem extends ManualItem {
  format: string;
  required: boolean;
  scenarios: string[];
}

export interface Trace {
  generatedAt: string;
  requiredFormats: string[];
  items: TraceItem[];
  uncovered: string[];
  /** uncovered items of a required format */
  missing: string[];
  unknownTags: { tag: string; scenarios: string[] }[];
  parseErrors: string[];
  /** scenarios without any @spec tag: not errors, but not traceable either */
  untraced: string[];
  /** a @spec:<fmt>.x tag on a scenario without @format:<fmt> */
  warnings: string[];
}

/** An item's format is the part of its id before the first dot ("qcow2.cluster_size" -> "qcow2"). */
export function formatOf(id: string): string {
  return id.split('.')[0];
}

export function loadItems(file: string): ManualItem[] {
  if (!existsSync(file)) throw new UsageError('--items', `${file} does not exist (the schemas helper writes spec/manual-items.json)`);
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError('--items', `${file} is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(data)) throw new UsageError('--items', `${file} must be an array of { id, section, summary, source }`);
  const seen = new Set<string>();
  return data.map((raw, i) => {
    const it = raw as Partial<ManualItem>;
    for (const field of ['id', 'section', 'summary'] as const) {
      if (typeof it?.[field] !== 'string' || it[field] === '') {
        throw new UsageError('--items', `${file}: [${i}].${field} must be a non-empty string`);
      }
    }
    if (it.source !== 'manual' && it.source !== 'qemu-7.2') {
      throw new UsageError('--items', `${file}: [${i}].source must be "manual" or "qemu-7.2" (got ${JSON.stringify(it.source)})`);
    }
    if (seen.has(it.id as string)) throw new UsageError('--items', `${file}: id "${it.id}" is listed twice`);
    seen.add(it.id as string);
    return it as ManualItem;
  });
}

export function buildTrace(
  items: ManualItem[],
  scenarios: PlannedScenario[],
  parseErrors: string[],
  requiredFormats: string[],
  now = new Date(),
): Trace {
  const known = new Map(items.map((i) => [i.id, [] as string[]]));
  const unknown = new Map<string, string[]>();
  const untraced: string[] = [];
  const warnings: string[] = [];
  for (const s of scenarios) {
    const specs = s.tags.filter((t) => t.startsWith('@spec:')).map((t) => t.slice('@spec:'.length));
    if (specs.length === 0) untraced.push(s.scenario);
    const formats = new Set(s.tags.filter((t) => t.startsWith('@format:')).map((t) => t.slice('@format:'.length)));
    for (const id of new Set(specs)) {
      const list = known.get(id);
      if (list) list.push(s.scenario);
      else unknown.set(`@spec:${id}`, [...(unknown.get(`@spec:${id}`) ?? []), s.scenario]);
      if (!formats.has(formatOf(id))) warnings.push(`${s.scenario}: @spec:${id} without @format:${formatOf(id)}`);
    }
  }
  const required = new Set(requiredFormats);
  const traced = items.map((i): TraceItem => ({
    ...i,
    format: formatOf(i.id),
    required: required.has(formatOf(i.id)),
    scenarios: known.get(i.id) ?? [],
  }));
  const uncovered = traced.filter((i) => i.scenarios.length === 0);
  return {
    generatedAt: now.toISOString(),
    requiredFormats,
    items: traced,
    uncovered: uncovered.map((i) => i.id),
    missing: uncovered.filter((i) => i.required).map((i) => i.id),
    unknownTags: [...unknown.entries()].map(([tag, list]) => ({ tag, scenarios: list })),
    parseErrors,
    untraced,
    warnings,
  };
}

export function traceFailed(t: Trace): boolean {
  return t.unknownTags.length > 0 || t.parseErrors.length > 0 || t.missing.length > 0;
}

export function renderTraceMarkdown(t: Trace): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const covered = t.items.length - t.uncovered.length;
  const lines = [
    '# qbc traceability: manual items to scenarios',
    '',
    `Generated ${t.generatedAt}. ${covered} of ${t.items.length} item(s) covered` +
      (t.requiredFormats.length ? `; required formats: ${t.requiredFormats.join(', ')}.` : '.'),
    '',
  ];
  if (t.unknownTags.length || t.parseErrors.length || t.missing.length) {
    lines.push('## Errors', '');
    for (const u of t.unknownTags) lines.push(`- unknown ${u.tag} on: ${u.scenarios.join('; ')}`);
    for (const p of t.parseErrors) lines.push(`- parse error: ${p}`);
    for (const m of t.missing) lines.push(`- UNCOVERED required item ${m}`);
    lines.push('');
  }
  lines.push('## Items', '', '| item | source | section | summary | scenarios |', '|---|---|---|---|---|');
  for (const i of t.items) {
    const cell = i.scenarios.length ? i.scenarios.map(esc).join('<br>') : `**UNCOVERED**${i.required ? ' (required)' : ''}`;
    lines.push(`| ${esc(i.id)} | ${i.source} | ${esc(i.section)} | ${esc(i.summary)} | ${cell} |`);
  }
  if (t.untraced.length) {
    lines.push('', `## Scenarios without a @spec tag (${t.untraced.length})`, '', ...t.untraced.map((s) => `- ${s}`));
  }
  if (t.warnings.length) lines.push('', '## Warnings', '', ...t.warnings.map((w) => `- ${w}`));
  lines.push('');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        formats: { type: 'string' },
        items: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`qbc trace: ${(err as Error).message}`);
    return 2;
  }
  if (values.help) {
    console.log(TRACE_HELP);
    return 0;
  }
  let items: ManualItem[];
  try {
    items = loadItems(values.items ? resolve(values.items) : repoPath('spec', 'manual-items.json'));
  } catch (err) {
    console.error(`qbc trace: ${(err as Error).message}`);
    return 2;
  }
  const required = (values.formats ?? '').split(',').map((f) => f.trim()).filter(Boolean);
  const knownFormats = new Set(items.map((i) => formatOf(i.id)));
  for (const f of required) {
    if (!knownFormats.has(f)) {
      console.error(`qbc trace: --formats: no item of format "${f}" in the item list (known: ${[...knownFormats].join(', ')})`);
      return 2;
    }
  }
  const scan = scanFeatures();
  const trace = buildTrace(items, scan.scenarios, scan.errors, required);
  const out = values.out ? resolve(values.out) : repoPath('reports', 'trace');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'trace.json'), JSON.stringify(trace, null, 2) + '\n');
  writeFileSync(join(out, 'trace.md'), renderTraceMarkdown(trace));

  for (const u of trace.unknownTags) {
    const more = u.scenarios.length > 1 ? ` and ${u.scenarios.length - 1} more` : '';
    console.log(`ERROR unknown ${u.tag} (no such item) on ${u.scenarios[0]}${more}`);
  }
  for (const p of trace.parseErrors) console.log(`ERROR ${p}`);
  for (const m of trace.missing) console.log(`ERROR required item ${m} is UNCOVERED`);
  const optional = trace.uncovered.filter((id) => !trace.missing.includes(id));
  if (optional.length) {
    // The full list is in trace.md; the console gets a count per format.
    const perFormat = new Map<string, number>();
    for (const id of optional) perFormat.set(formatOf(id), (perFormat.get(formatOf(id)) ?? 0) + 1);
    const counts = [...perFormat].map(([f, n]) => `${f} ${n}`).join(', ');
    console.log(`uncovered, not required: ${optional.length} item(s) (${counts})`);
  }
  for (const w of trace.warnings) console.log(`warning: ${w}`);
  console.log(
    `qbc trace: ${trace.items.length - trace.uncovered.length}/${trace.items.length} item(s) covered by ` +
      `${scan.scenarios.length} scenario(s) in ${scan.files.length} feature file(s); ` +
      `${trace.unknownTags.length} unknown @spec id(s), ${trace.missing.length} required item(s) uncovered ` +
      `-> ${repoRelative(out, process.cwd())}/trace.{md,json}`,
  );
  return traceFailed(trace) ? 1 : 0;
}
