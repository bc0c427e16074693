/**
 * `qbc corpus verify --impl X [--oracle Y] [--only ID]`: does X read every
 * golden image as qemu-img recorded it, and does X recreate each recipe?
 *
 * Per entry: info, map, check and guest bytes as recorded, the staged files
 * unchanged by those reads, and the recipe replayed by X: byte-identical to
 * the golden image when the recipe is deterministic; otherwise the recreated
 * image must show the recorded guest bytes (read by the oracle when there is
 * one, else by X) and, with an oracle, pass the oracle's check.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Adapter } from '../../adapters/adapter.js';
import { loadAdapter } from '../../adapters/index.js';
import { checkDiff, chainHashes, extraFilesDiff, guestDiff, infoDiff, mapDiff, readGap, readPartsMissing, recreate, recreateGap, stageEntry } from './checks.js';
import { maskedSha256, scratchDir, sha256File } from './files.js';
import { loadCorpus, type Corpus, type CorpusItem } from './corpus-set.js';
import { CORPUS_DIR, MANIFEST_FILE, RECIPES_FILE, REPO, REPORTS_DIR } from './paths.js';

export type Outcome = 'passed' | 'failed' | 'not-applicable';

export interface PartResult {
  outcome: Outcome;
  /** not-applicable reason */
  reason?: string;
  failures: string[];
  /** operations of the part the implementation lacks, so not compared (a reader without info, map, check) */
  unchecked?: string[];
}

export interface EntryResult {
  id: string;
  format: string;
  read: PartResult;
  recreate: PartResult;
  /** passed: every applicable part passed and reading applied; not-applicable: reading could not apply */
  outcome: Outcome;
  durationMs: number;
}

function errText(err: unknown): string {
  const e = err as Error;
  return `${e?.name ?? 'Error'}: ${(e?.message ?? String(err)).split('\n').slice(0, 6).join(' | ')}`;
}

async function attempt(failures: string[], what: string, fn: () => Promise<string[]>): Promise<void> {
  try {
    failures.push(...(await fn()));
  } catch (err) {
    failures.push(`${what} failed: ${errText(err)}`);
  }
}

async function readPart(a: Adapter, c: Corpus, e: CorpusItem, dir: string): Promise<PartResult> {
  const gap = readGap(a, e);
  if (gap) return { outcome: 'not-applicable', reason: gap, failures: [] };
  const img = await stageEntry(c, e, dir);
  const before = await chainHashes(c, e, dir);
  const failures: string[] = [];
  const missing = readPartsMissing(a, e);
  if (!missing.includes('info')) await attempt(failures, 'info', () => infoDiff(a, e, img));
  if (!missing.includes('map')) await attempt(failures, 'map', () => mapDiff(a, e, img));
  if (!missing.includes('check')) await attempt(failures, 'check', () => checkDiff(a, e, img));
  await attempt(failures, 'guest read', () => guestDiff(a, e, img));
  const after = await chainHashes(c, e, dir);
  for (const [id, sha] of before) if (after.get(id) !== sha) failures.push(`reading changed the file of ${id}`);
  return { outcome: failures.length ? 'failed' : 'passed', failures, ...(missing.length ? { unchecked: missing } : {}) };
}

async function recreatePart(a: Adapter, oracle: Adapter | null, c: Corpus, e: CorpusItem, dir: string): Promise<PartResult> {
  const gap = recreateGap(a, e);
  if (gap) return { outcome: 'not-applicable', reason: gap, failures: [] };
  const failures: string[] = [];
  await attempt(failures, 'recreate', async () => {
    const img = await recreate(a, c, e, dir);
    const extras = e.deterministic ? await extraFilesDiff(e, dir) : [];
    if (extras.length) return extras;
    if (e.deterministic && e.mask) {
      const got = await maskedSha256(img.filename, e.mask);
      const want = await maskedSha256(join(CORPUS_DIR, e.file), e.mask);
      const fields = e.mask.map((m) => m.field).join(', ');
      return got === want ? [] : [`recreated file differs from the golden image outside the masked fields (${fields}): masked sha256 ${got}, golden ${want}`];
    }
    if (e.deterministic) {
      const sha = await sha256File(img.filename);
      return sha === e.fileSha256 ? [] : [`recreated file sha256 ${sha}, golden ${e.fileSha256}`];
    }
    const reader = oracle ?? a;
    const out = (await guestDiff(reader, e, img)).map((d) => `recreated image: ${d}`);
    if (oracle && e.format !== 'raw') {
      const ck = await oracle.check(img);
      // 63: the format has no check (luks), as recorded
      if (ck.exitCode !== 0 && !(ck.exitCode === 63 && e.check === null)) out.push(`recreated image: oracle check exit ${ck.exitCode} (corruptions ${ck.corruptions ?? 0}, leaks ${ck.leaks ?? 0})`);
    }
    return out;
  });
  return { outcome: failures.length ? 'failed' : 'passed', failures };
}

export interface VerifyOptions {
  impl: string;
  oracle?: string;
  only?: string;
  log?: (line: string) => void;
  /** other corpus files (tests) */
  manifestFile?: string;
  recipesFile?: string;
  /** where reports/corpus-<impl>.json goes */
  reportsDir?: string;
}

export async function verify(opts: VerifyOptions): Promise<number> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const corpus = await loadCorpus(opts.manifestFile ?? MANIFEST_FILE, opts.recipesFile ?? RECIPES_FILE, log);
  const entries = opts.only ? corpus.items.filter((e) => e.id === opts.only) : corpus.items;
  if (opts.only && entries.length === 0) {
    log(`no corpus entry "${opts.only}"`);
    return 2;
  }
  const iut = await loadAdapter(opts.impl);
  const oracle = opts.oracle && opts.oracle !== 'none' ? await loadAdapter(opts.oracle) : null;
  const scratch = await scratchDir(REPO, 'corpus-verify');
  const results: EntryResult[] = [];
  try {
    for (const e of entries) {
      const t0 = Date.now();
      const dir = join(scratch, e.id);
      const read = await readPart(iut, corpus, e, join(dir, 'read'));
      const rec = await recreatePart(iut, oracle, corpus, e, join(dir, 'recreate'));
      await rm(dir, { recursive: true, force: true });
      const outcome: Outcome =
        read.outcome === 'failed' || rec.outcome === 'failed' ? 'failed' : read.outcome === 'not-applicable' ? 'not-applicable' : 'passed';
      results.push({ id: e.id, format: e.format, read, recreate: rec, outcome, durationMs: Date.now() - t0 });
      const label = { passed: 'PASS', failed: 'FAIL', 'not-applicable': 'N/A ' }[outcome];
      const recNote =
        rec.outcome === 'not-applicable' ? `recreate n.a.: ${rec.reason}` : `recreate ${rec.outcome}${e.deterministic ? (e.mask ? ' (byte-identical after masking)' : ' (byte-identical)') : ' (guest bytes)'}`;
      const readNote =
        read.outcome === 'not-applicable' ? `read n.a.: ${read.reason}` : `read ${read.outcome}${read.unchecked ? ` (guest bytes; no ${read.unchecked.join(', ')} to compare)` : ''}`;
      log(`${label} ${e.id}: ${readNote}; ${recNote}`);
      for (const f of [...read.failures, ...rec.failures]) log(`       ${f}`);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
    await iut.dispose?.();
    if (oracle && oracle !== iut) await oracle.dispose?.();
  }
  const count = (o: Outcome) => results.filter((r) => r.outcome === o).length;
  const recNa = results.filter((r) => r.outcome !== 'not-applicable' && r.recreate.outcome === 'not-applicable');
  const report = {
    implementation: iut.name,
    oracle: oracle?.name ?? 'none',
    producer: corpus.producer,
    date: new Date().toISOString(),
    passed: count('passed'),
    failed: count('failed'),
    notApplicable: count('not-applicable'),
    recreateNotApplicable: recNa.length,
    entries: results,
  };
  const reportsDir = opts.reportsDir ?? REPORTS_DIR;
  await mkdir(reportsDir, { recursive: true });
  const reportFile = join(reportsDir, `corpus-${safeName(opts.impl, iut.name)}.json`);
  await writeFile(reportFile, JSON.stringify(report, null, 2) + '\n');
  log(`report: ${reportFile}`);
  if (count('not-applicable')) log(`not applicable: ${count('not-applicable')} entries`);
  if (recNa.length) log(`recreate not applicable: ${recNa.length} entries (${recNa.map((r) => r.id).join(', ')})`);
  log(`${count('passed')} passed, ${count('failed')} failed`);
  return count('failed') ? 1 : 0;
}

/** reports/corpus-<impl>.json: the spec for built-in adapters, the adapter's name for module paths. */
function safeName(spec: string, name: string): string {
  const base = ['reference', 'qemu', 'cli'].includes(spec) ? spec : name;
  return base.replace(/[^A-Za-z0-9._-]/g, '_');
}
