/**
 * expectations/<impl>.json: the scenarios known not to pass for one implementation.
 *
 * The file is the baseline a run is held to: a listed scenario that now passes is as
 * much a surprise as an unlisted one that fails, so the baseline stays true.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { repoPath } from './paths.js';
import type { ScenarioOutcome } from './outcomes.js';

export type Expected = 'failed' | 'not-applicable';

/** Who is at fault: the implementation, the manual (it is silent or unclear), or the suite itself. */
export type ExpectationKind = 'implementation-bug' | 'spec-ambiguity' | 'suite-bug';
export const EXPECTATION_KINDS: readonly ExpectationKind[] = ['implementation-bug', 'spec-ambiguity', 'suite-bug'];

/** What `qbc expectations update` writes into an entry a person has not reviewed yet. */
export const UNREVIEWED = 'TODO: review';

export interface ExpectationEntry {
  scenario: string;
  expected: Expected;
  reason: string;
  kind: ExpectationKind;
  /** for an implementation bug: the smallest image and operation that shows it */
  reproduction?: string;
}

export interface ExpectationsFile {
  implementation: string;
  entries: ExpectationEntry[];
}

/** A run's verdict on one scenario, after expectations. */
export type Verdict = 'passed' | 'failed' | 'expected-failure' | 'unexpected-pass' | 'not-applicable';

export class ExpectationsError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ExpectationsError';
  }
}

export function expectationsPath(impl: string): string {
  return repoPath('expectations', `${impl}.json`);
}

/** Reads and validates the file; a missing file means "everything is expected to pass". */
export function loadExpectations(impl: string, given?: string): ExpectationsFile {
  const file = given ?? expectationsPath(impl);
  if (!existsSync(file)) {
    // Only the default file may be absent; a file named on the command line must exist.
    if (given !== undefined) throw new ExpectationsError(file, 'no such file');
    return { implementation: impl, entries: [] };
  }
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ExpectationsError(file, `not valid JSON: ${(err as Error).message}`);
  }
  const parsed = validateExpectations(data, file);
  if (parsed.implementation !== impl) {
    throw new ExpectationsError(file, `"implementation" is "${parsed.implementation}" but the run is for "${impl}"`);
  }
  return parsed;
}

/**
 * Checks against schemas/expectations.json when that schema exists, and always checks
 * what a schema cannot say (one entry per scenario, identity shape).
 */
export function validateExpectations(data: unknown, file: string): ExpectationsFile {
  const schemaErrors = validateWithSchema(data);
  if (schemaErrors) throw new ExpectationsError(file, `does not match schemas/expectations.json: ${schemaErrors}`);

  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new ExpectationsError(file, 'must be a JSON object');
  const obj = data as Record<string, unknown>;
  if (typeof obj.implementation !== 'string' || obj.implementation === '') {
    throw new ExpectationsError(file, '"implementation" must be a non-empty string');
  }
  if (!Array.isArray(obj.entries)) throw new ExpectationsError(file, '"entries" must be an array');
  const seen = new Set<string>();
  const entries: ExpectationEntry[] = obj.entries.map((raw, i) => {
    const where = `entries[${i}]`;
    if (raw === null || typeof raw !== 'object') throw new ExpectationsError(file, `${where} must be an object`);
    const e = raw as Record<string, unknown>;
    if (typeof e.scenario !== 'string' || !/^\S.* :: .+$/.test(e.scenario)) {
      throw new ExpectationsError(file, `${where}.scenario must be "<feature path> :: <scenario name>"`);
    }
    if (e.expected !== 'failed' && e.expected !== 'not-applicable') {
      throw new ExpectationsError(file, `${where}.expected must be "failed" or "not-applicable" (got ${JSON.stringify(e.expected)})`);
    }
    if (typeof e.reason !== 'string' || e.reason.trim() === '') {
      throw new ExpectationsError(file, `${where}.reason must say why (a non-empty string)`);
    }
    if (typeof e.kind !== 'string' || !(EXPECTATION_KINDS as readonly string[]).includes(e.kind)) {
      throw new ExpectationsError(file, `${where}.kind must be one of ${EXPECTATION_KINDS.join(', ')} (got ${JSON.stringify(e.kind)})`);
    }
    if (e.reproduction !== undefined && (typeof e.reproduction !== 'string' || e.reproduction.trim() === '')) {
      throw new ExpectationsError(file, `${where}.reproduction must be a non-empty string when given`);
    }
    if (e.kind === 'implementation-bug' && e.reproduction === undefined) {
      throw new ExpectationsError(file, `${where}.reproduction is required for an implementation-bug (the smallest image and operation that shows it)`);
    }
    if (seen.has(e.scenario)) throw new ExpectationsError(file, `${where}.scenario "${e.scenario}" is listed twice`);
    seen.add(e.scenario);
    const entry: ExpectationEntry = { scenario: e.scenario, expected: e.expected, reason: e.reason, kind: e.kind as ExpectationKind };
    if (typeof e.reproduction === 'string') entry.reproduction = e.reproduction;
    return entry;
  });
  return { implementation: obj.implementation, entries };
}

type ValidateFn = ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null };
let compiled: ValidateFn | null | undefined;

/** Returns a description of the schema violations, or null (also when there is no schema yet). */
function validateWithSchema(data: unknown): string | null {
  if (compiled === undefined) compiled = compileSchema();
  if (compiled === null) return null;
  if (compiled(data)) return null;
  return (compiled.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`).join('; ');
}

function compileSchema(): ValidateFn | null {
  const file = repoPath('schemas', 'expectations.json');
  if (!existsSync(file)) return null;
  const schema = JSON.parse(readFileSync(file, 'utf8')) as { $schema?: string };
  // ajv ships one class per JSON Schema draft; pick the one the schema declares.
  const require = createRequire(import.meta.url);
  const draft = schema.$schema ?? '';
  const modulePath = draft.includes('2020-12') ? 'ajv/dist/2020' : draft.includes('2019-09') ? 'ajv/dist/2019' : 'ajv';
  const AjvClass = require(modulePath).default as new (opts: object) => { compile(s: object): ValidateFn };
  const addFormats = require('ajv-formats').default as (ajv: object) => void;
  const ajv = new AjvClass({ allErrors: true, strict: false });
  addFormats(ajv);
  return ajv.compile(schema);
}

export interface Judged extends ScenarioOutcome {
  expected: Expected | null;
  expectationReason?: string;
  verdict: Verdict;
}

/** Applies the baseline. Entries naming scenarios that did not run are returned as `unused`. */
export function applyExpectations(
  outcomes: ScenarioOutcome[],
  expectations: ExpectationsFile,
): { judged: Judged[]; unused: ExpectationEntry[] } {
  const byScenario = new Map(expectations.entries.map((e) => [e.scenario, e]));
  const used = new Set<string>();
  const judged = outcomes.map((o): Judged => {
    const entry = byScenario.get(o.scenario);
    if (entry) used.add(entry.scenario);
    const expected = entry?.expected ?? null;
    return { ...o, expected, expectationReason: entry?.reason, verdict: verdictOf(o.outcome, expected) };
  });
  return { judged, unused: expectations.entries.filter((e) => !used.has(e.scenario)) };
}

export function verdictOf(outcome: ScenarioOutcome['outcome'], expected: Expected | null): Verdict {
  if (outcome === 'not-applicable') return 'not-applicable';
  if (outcome === 'passed') return expected === null ? 'passed' : 'unexpected-pass';
  // A failure is only forgiven when the baseline says it fails; "not applicable" is no excuse.
  return expected === 'failed' ? 'expected-failure' : 'failed';
}

/** An entry `qbc expectations update` added and nobody has explained yet. */
export function isUnreviewed(e: ExpectationEntry): boolean {
  return e.reason.trim().startsWith(UNREVIEWED) || (e.reproduction?.trim().startsWith(UNREVIEWED) ?? false);
}

/**
 * What makes a baseline untrustworthy, each an error of the run: an entry nobody reviewed
 * (so an unreviewed baseline can never make a run pass) and, when the suite's scenarios are
 * known, an entry naming a scenario that no longer exists (expired).
 */
export function baselineProblems(expectations: ExpectationsFile, known: ReadonlySet<string> | null): string[] {
  const problems: string[] = [];
  for (const e of expectations.entries) {
    if (isUnreviewed(e)) problems.push(`expectations/${expectations.implementation}.json: "${e.scenario}" is not reviewed (reason or reproduction is "${UNREVIEWED}"): explain it, fix it, or remove it`);
    else if (known && !known.has(e.scenario)) problems.push(`expectations/${expectations.implementation}.json: "${e.scenario}" names no scenario of the suite (expired): remove it`);
  }
  return problems;
}
