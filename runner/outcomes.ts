/**
 * Turns a cucumber message stream (messages.ndjson) into one outcome per scenario.
 *
 * Outcomes are what the implementation did, before expectations are applied:
 *  - passed: every step passed;
 *  - failed: a step or hook failed, or was undefined / pending / ambiguous, or the
 *    scenario never finished;
 *  - not-applicable: a step returned 'skipped' after attaching "not applicable: <reason>".
 * A skip without that attachment is a failure: a skipped check is never a pass, and an
 * unexplained skip hides why nothing was checked.
 */
import { readFileSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';

export type Outcome = 'passed' | 'failed' | 'not-applicable';

export interface ScenarioOutcome {
  /** `<feature path relative to the repository> :: <pickle name>` */
  scenario: string;
  feature: string;
  name: string;
  /** every tag of the pickle, inherited ones included, with the leading '@' */
  tags: string[];
  /** the scenario's line in the feature file (an outline's: its Examples row), when the message stream has it */
  line?: number;
  outcome: Outcome;
  /** why it failed or is not applicable */
  reason?: string;
  durationMs: number;
}

export interface RunProblem {
  /** a failure outside any scenario: a BeforeAll/AfterAll hook, a parse error, a run exception */
  message: string;
}

export interface Evaluation {
  scenarios: ScenarioOutcome[];
  problems: RunProblem[];
}

/** The few message fields we read; cucumber emits many more. */
interface Timestamp { seconds: number; nanos: number }
interface Envelope {
  pickle?: { id: string; uri: string; name: string; tags: { name: string }[]; steps: { id: string; text: string }[]; astNodeIds?: string[] };
  gherkinDocument?: { feature?: { children: GherkinChild[] } };
  testCase?: { id: string; pickleId: string; testSteps: { id: string; pickleStepId?: string; hookId?: string }[] };
  testCaseStarted?: { id: string; testCaseId: string; attempt: number; timestamp: Timestamp };
  testStepFinished?: { testCaseStartedId: string; testStepId: string; testStepResult: { status: string; message?: string } };
  testCaseFinished?: { testCaseStartedId: string; willBeRetried: boolean; timestamp: Timestamp };
  attachment?: { testCaseStartedId?: string; body: string; mediaType: string; contentEncoding?: string };
  parseError?: { source?: { uri?: string }; message: string };
  testRunHookFinished?: { result: { status: string; message?: string } };
  testRunFinished?: { success: boolean; message?: string; exception?: { type?: string; message?: string } };
}

interface GherkinChild {
  scenario?: { id: string; location: { line: number }; examples?: { tableBody?: { id: string; location: { line: number } }[] }[] };
  rule?: { children: GherkinChild[] };
}

/** Lines of scenarios and Examples rows by AST node id, for linking a scenario to feature:line. */
function collectLines(children: GherkinChild[], into: Map<string, number>): void {
  for (const c of children) {
    if (c.scenario) {
      into.set(c.scenario.id, c.scenario.location.line);
      for (const ex of c.scenario.examples ?? []) for (const row of ex.tableBody ?? []) into.set(row.id, row.location.line);
    }
    if (c.rule) collectLines(c.rule.children, into);
  }
}

export const NOT_APPLICABLE_PREFIX = 'not applicable:';
const FAILING = new Set(['FAILED', 'UNDEFINED', 'PENDING', 'AMBIGUOUS', 'UNKNOWN']);

export function readMessages(file: string): Envelope[] {
  const text = readFileSync(file, 'utf8');
  const envelopes: Envelope[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      envelopes.push(JSON.parse(line) as Envelope);
    } catch (err) {
      throw new Error(`${file}:${i + 1}: not a JSON message: ${(err as Error).message}`);
    }
  });
  return envelopes;
}

/**
 * `root` is the directory cucumber ran in (the repository, or `qbc run --root`): pickle
 * URIs are relative to it, and so are scenario identities.
 */
export function evaluate(envelopes: Envelope[], root: string): Evaluation {
  const pickles = new Map<string, NonNullable<Envelope['pickle']>>();
  const testCases = new Map<string, NonNullable<Envelope['testCase']>>();
  const attempts = new Map<string, Attempt>();
  const problems: RunProblem[] = [];
  const lines = new Map<string, number>();

  for (const e of envelopes) {
    if (e.gherkinDocument?.feature) collectLines(e.gherkinDocument.feature.children ?? [], lines);
    else if (e.pickle) pickles.set(e.pickle.id, e.pickle);
    else if (e.testCase) testCases.set(e.testCase.id, e.testCase);
    else if (e.testCaseStarted) {
      const s = e.testCaseStarted;
      attempts.set(s.id, { testCaseId: s.testCaseId, attempt: s.attempt, started: s.timestamp, steps: [], texts: [] });
    } else if (e.testStepFinished) {
      attempts.get(e.testStepFinished.testCaseStartedId)?.steps.push({
        stepId: e.testStepFinished.testStepId,
        status: e.testStepFinished.testStepResult.status,
        message: e.testStepFinished.testStepResult.message,
      });
    } else if (e.attachment) {
      const a = e.attachment;
      if (a.testCaseStartedId && a.mediaType.startsWith('text/')) {
        const body = a.contentEncoding === 'BASE64' ? Buffer.from(a.body, 'base64').toString('utf8') : a.body;
        attempts.get(a.testCaseStartedId)?.texts.push(body);
      }
    } else if (e.testCaseFinished) {
      const a = attempts.get(e.testCaseFinished.testCaseStartedId);
      if (a) {
        a.finished = e.testCaseFinished.timestamp;
        a.willBeRetried = e.testCaseFinished.willBeRetried;
      }
    } else if (e.parseError) {
      problems.push({ message: `cannot parse ${e.parseError.source?.uri ?? 'a feature'}: ${e.parseError.message}` });
    } else if (e.testRunHookFinished) {
      const r = e.testRunHookFinished.result;
      if (FAILING.has(r.status)) problems.push({ message: `a BeforeAll/AfterAll hook ended ${r.status}: ${firstLine(r.message)}` });
    } else if (e.testRunFinished?.exception) {
      const x = e.testRunFinished.exception;
      problems.push({ message: `the run stopped: ${x.type ?? 'error'}: ${firstLine(x.message)}` });
    }
  }

  // The last attempt of each test case decides (earlier ones were retried).
  const last = new Map<string, Attempt>();
  for (const a of attempts.values()) {
    if (a.willBeRetried) continue;
    const prev = last.get(a.testCaseId);
    if (!prev || prev.attempt < a.attempt) last.set(a.testCaseId, a);
  }

  const scenarios: ScenarioOutcome[] = [];
  for (const tc of testCases.values()) {
    const pickle = pickles.get(tc.pickleId);
    if (!pickle) {
      problems.push({ message: `test case ${tc.id} names an unknown pickle ${tc.pickleId}` });
      continue;
    }
    const feature = relative(root, resolve(root, pickle.uri)).split(sep).join('/');
    const identity = {
      scenario: `${feature} :: ${pickle.name}`,
      feature,
      name: pickle.name,
      tags: pickle.tags.map((t) => t.name),
      // the last AST node is the most precise: an outline's Examples row
      ...((): { line?: number } => {
        const id = pickle.astNodeIds?.[pickle.astNodeIds.length - 1];
        const line = id === undefined ? undefined : lines.get(id);
        return line === undefined ? {} : { line };
      })(),
    };
    const attempt = last.get(tc.id);
    scenarios.push({ ...identity, ...judge(attempt, tc, pickle) });
  }
  markDuplicates(scenarios);
  return { scenarios, problems };
}

interface Attempt {
  testCaseId: string;
  attempt: number;
  started: Timestamp;
  finished?: Timestamp;
  willBeRetried?: boolean;
  steps: { stepId: string; status: string; message?: string }[];
  texts: string[];
}

function judge(
  attempt: Attempt | undefined,
  tc: NonNullable<Envelope['testCase']>,
  pickle: NonNullable<Envelope['pickle']>,
): { outcome: Outcome; reason?: string; durationMs: number } {
  if (!attempt) return { outcome: 'failed', reason: 'the scenario never started (the run stopped before it)', durationMs: 0 };
  if (!attempt.finished) {
    return { outcome: 'failed', reason: 'the scenario started but never finished', durationMs: 0 };
  }
  const durationMs = Math.max(0, toMs(attempt.finished) - toMs(attempt.started));
  const bad = attempt.steps.find((s) => FAILING.has(s.status));
  if (bad) return { outcome: 'failed', reason: describeFailure(bad, tc, pickle), durationMs };
  if (attempt.steps.some((s) => s.status === 'SKIPPED')) {
    const note = attempt.texts.find((t) => t.trimStart().toLowerCase().startsWith(NOT_APPLICABLE_PREFIX));
    if (note) {
      const reason = note.trimStart().slice(NOT_APPLICABLE_PREFIX.length).trim();
      return { outcome: 'not-applicable', reason: reason || '(no reason given)', durationMs };
    }
    return {
      outcome: 'failed',
      reason: `skipped without a "${NOT_APPLICABLE_PREFIX} <reason>" attachment, so nothing was checked`,
      durationMs,
    };
  }
  return { outcome: 'passed', durationMs };
}

function describeFailure(
  step: Attempt['steps'][number],
  tc: NonNullable<Envelope['testCase']>,
  pickle: NonNullable<Envelope['pickle']>,
): string {
  const testStep = tc.testSteps.find((s) => s.id === step.stepId);
  const text = testStep?.pickleStepId ? pickle.steps.find((p) => p.id === testStep.pickleStepId)?.text : undefined;
  const where = text !== undefined ? `step "${text}"` : 'a hook';
  const status = step.status.toLowerCase();
  if (step.status === 'FAILED') return `${where} failed: ${firstLine(step.message)}`;
  return `${where} is ${status}${step.message ? `: ${firstLine(step.message)}` : ''}`;
}

/** Two pickles with one identity would make expectations ambiguous, so both fail. */
function markDuplicates(scenarios: ScenarioOutcome[]): void {
  const count = new Map<string, number>();
  for (const s of scenarios) count.set(s.scenario, (count.get(s.scenario) ?? 0) + 1);
  for (const s of scenarios) {
    const n = count.get(s.scenario) ?? 0;
    if (n > 1) {
      s.outcome = 'failed';
      s.reason = `${n} scenarios of ${s.feature} are named "${s.name}"; names must be unique in a feature (outline names need <placeholders>)`;
    }
  }
}

function toMs(t: Timestamp): number {
  return t.seconds * 1000 + t.nanos / 1e6;
}

/** The message without its stack trace, on one line: enough to recognise the failure. */
function firstLine(message: string | undefined): string {
  if (!message) return '(no message)';
  const lines: string[] = [];
  for (const raw of message.split('\n')) {
    if (/^\s+at /.test(raw)) break;
    if (raw.trim() !== '') lines.push(raw.trim());
  }
  const text = lines.join(' ') || message.trim();
  return text.length > 400 ? `${text.slice(0, 397)}...` : text;
}
