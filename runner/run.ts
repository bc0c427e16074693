/**
 * `qbc run`: runs the Gherkin suite against one implementation through cucumber's own
 * API (profiles from cucumber.cjs, its formatters, its parallel workers), then judges
 * every scenario against expectations/<impl>.json and writes reports/<impl>/results.json.
 *
 * Exit status: 0 when every scenario met its expectation, 1 on any unexpected result,
 * 2 when the run could not be set up (bad option, bad expectations file, no adapter).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfiguration, runCucumber } from '@cucumber/cucumber/api';
import { applyExpectations, baselineProblems, ExpectationsError, loadExpectations } from './expectations.js';
import { scanFeatures } from './features.js';
import { evaluate, readMessages } from './outcomes.js';
import { REPO_ROOT, repoPath } from './paths.js';
import { buildResults, summaryLines } from './results.js';
import { UsageError } from './usage.js';
import { isThirdParty, THIRD_PARTY_ADAPTERS } from '../adapters/third-party.js';

const BUILTIN_IMPLS = ['reference', 'qemu', 'cli'] as const;
const ORACLES = ['qemu', 'reference', 'none'] as const;
/** The cucumber.cjs profile whose worldParameters describe each built-in implementation. */
const PROFILE_OF: Record<string, string> = { reference: 'default', qemu: 'qemu', cli: 'cli' };

export const RUN_HELP = `qbc run [options] [feature paths...]

Runs the conformance suite against one implementation and judges the results
against expectations/<implementation>.json.

  --impl SPEC       reference | qemu | cli | ./my-adapter.mjs   (default: reference),
                    or a third-party adapter: ${Object.keys(THIRD_PARTY_ADAPTERS).join(', ')}
  --oracle NAME     qemu | reference | none: who cross-checks what the implementation
                    wrote (default: qemu; reference when --impl is qemu)
  --tags EXPR       cucumber tag expression, e.g. "@format:qcow2 and not @op:measure"
  --parallel N      cucumber worker processes (default: the profile's)
  --shard I/N       run only the I-th of N shards of the scenarios (cucumber's --shard, 1-based);
                    \`qbc matrix\` merges the shards' results.json of one implementation
  --profile NAME    cucumber.cjs profile (default: the one named after --impl, else default)
  --root DIR        the project cucumber runs in: feature paths, the configuration and
                    scenario identities are relative to it (default: this repository)
  --config FILE     cucumber configuration file (default: ROOT/cucumber.cjs)
  --out DIR         report directory (default: reports/<implementation>)
  --expectations F  baseline file (default: expectations/<implementation>.json)

Writes DIR/cucumber.html, junit.xml, messages.ndjson and results.json.
Exit status: 0 as expected, 1 unexpected failures or passes, 2 the run could not start.`;

interface RunOptions {
  impl: string;
  implName: string;
  oracle: string;
  tags?: string;
  parallel?: number;
  /** cucumber's shard "I/N" */
  shard?: string;
  profile: string;
  root: string;
  config: string;
  /** default expectations/<implementation>.json */
  expectations?: string;
  /** the implementation's version, once its adapter is loaded */
  version?: string;
  /** undefined until the implementation's name is known: reports/<name> */
  out?: string;
  paths: string[];
}

export async function main(argv: string[]): Promise<number> {
  let opts: RunOptions;
  try {
    const parsed = parseRunArgs(argv);
    if (parsed === 'help') {
      console.log(RUN_HELP);
      return 0;
    }
    opts = parsed;
    const identity = await adapterIdentity(opts.impl);
    if (opts.implName === '') opts.implName = identity.name;
    opts.version = identity.version;
  } catch (err) {
    return reportSetupError(err);
  }
  const out = opts.out ?? repoPath('reports', opts.implName);

  const environment: Environment = { cwd: opts.root, stdout: process.stdout, stderr: process.stderr, env: process.env };
  let expectations;
  let runConfiguration;
  try {
    expectations = loadExpectations(opts.implName, opts.expectations);
    runConfiguration = await configure(opts, out, environment);
  } catch (err) {
    return reportSetupError(err);
  }

  mkdirSync(out, { recursive: true });
  const messagesFile = join(out, 'messages.ndjson');
  // Stale reports from an earlier run must never pass for this run's.
  for (const f of ['messages.ndjson', 'results.json', 'junit.xml', 'cucumber.html']) rmSync(join(out, f), { force: true });

  const startedAt = new Date();
  const runError = await runSuite(runConfiguration, environment);
  const finishedAt = new Date();

  if (!existsSync(messagesFile)) {
    console.error(`qbc run: cucumber wrote no message stream (${runError ?? 'no error reported'})`);
    console.log('0 passed, 1 failed');
    return 1;
  }
  const { scenarios, problems } = evaluate(readMessages(messagesFile), opts.root);
  if (runError) problems.push({ message: runError });
  if (scenarios.length === 0 && problems.length === 0) {
    problems.push({ message: 'no scenario ran: check the feature paths and --tags' });
  }
  const { judged, unused } = applyExpectations(scenarios, expectations);
  // unreviewed and expired entries are errors (expiry is judged against this repository's features)
  const known = opts.root === REPO_ROOT ? new Set(scanFeatures().scenarios.map((p) => p.scenario)) : null;
  for (const message of baselineProblems(expectations, known)) problems.push({ message });
  const results = buildResults({
    implementation: opts.implName,
    impl: opts.impl,
    oracle: opts.oracle,
    startedAt,
    finishedAt,
    judged,
    problems,
    unused,
  });
  if (opts.version) results.version = opts.version;
  if (opts.shard) results.shard = opts.shard;
  writeFileSync(join(out, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  for (const line of summaryLines(results)) console.log(line);
  return results.counts.failed > 0 ? 1 : 0;
}

type Environment = { cwd: string; stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream; env: NodeJS.ProcessEnv };
type RunConfiguration = Awaited<ReturnType<typeof loadConfiguration>>['runConfiguration'];

/** Resolves cucumber's configuration: the profile, then what qbc sets itself. */
async function configure(opts: RunOptions, out: string, environment: Environment): Promise<RunConfiguration> {
  const provided: Record<string, unknown> = {};
  if (opts.tags !== undefined) provided.tags = opts.tags;
  if (opts.parallel !== undefined) provided.parallel = opts.parallel;
  if (opts.shard !== undefined) provided.shard = opts.shard;
  let runConfiguration: RunConfiguration;
  try {
    ({ runConfiguration } = await loadConfiguration(
      // cucumber joins the file name to cwd, so it must be relative.
      { file: relative(opts.root, opts.config), profiles: [opts.profile], provided },
      environment,
    ));
  } catch (err) {
    throw new UsageError('--config/--profile', describeError(err));
  }
  runConfiguration.runtime.worldParameters = {
    ...runConfiguration.runtime.worldParameters,
    impl: opts.impl,
    oracle: opts.oracle,
  };
  // Report files always go to --out; the profile's own files are for plain cucumber-js use.
  runConfiguration.formats.files = {
    [join(out, 'cucumber.html')]: 'html',
    [join(out, 'junit.xml')]: 'junit',
    [join(out, 'messages.ndjson')]: 'message',
  };
  runConfiguration.formats.publish = false;
  if (opts.paths.length > 0) runConfiguration.sources.paths = opts.paths;
  return runConfiguration;
}

/** Runs cucumber; returns a description of an error that stopped it, or null. */
async function runSuite(runConfiguration: RunConfiguration, environment: Environment): Promise<string | null> {
  try {
    await runCucumber(runConfiguration, environment);
    return null;
  } catch (err) {
    const message = describeError(err);
    console.error(`qbc run: cucumber stopped: ${message}`);
    return `cucumber stopped: ${message.split('\n')[0]}`;
  }
}

export function parseRunArgs(argv: string[]): RunOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        impl: { type: 'string' },
        oracle: { type: 'string' },
        tags: { type: 'string' },
        parallel: { type: 'string' },
        shard: { type: 'string' },
        profile: { type: 'string' },
        root: { type: 'string' },
        config: { type: 'string' },
        out: { type: 'string' },
        expectations: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError('qbc run', (err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';

  const implSpec = v.impl ?? 'reference';
  if (implSpec === '') throw new UsageError('--impl', 'must not be empty');
  const builtin = (BUILTIN_IMPLS as readonly string[]).includes(implSpec) || isThirdParty(implSpec);
  // A module path is made absolute: cucumber's workers may resolve it from elsewhere.
  const impl = builtin ? implSpec : resolve(process.cwd(), implSpec);
  if (!builtin && !existsSync(impl)) {
    throw new UsageError('--impl', `"${implSpec}" is not reference, qemu, cli or a third-party adapter (${Object.keys(THIRD_PARTY_ADAPTERS).join(", ")}), and no file ${impl} exists`);
  }

  const defaultOracle = implSpec === 'qemu' ? 'reference' : 'qemu';
  const oracle = v.oracle ?? defaultOracle;
  if (!(ORACLES as readonly string[]).includes(oracle)) {
    throw new UsageError('--oracle', `must be one of ${ORACLES.join(', ')} (got "${oracle}")`);
  }

  let parallel: number | undefined;
  if (v.parallel !== undefined) {
    if (!/^\d+$/.test(v.parallel)) throw new UsageError('--parallel', `must be a whole number (got "${v.parallel}")`);
    parallel = Number(v.parallel);
  }
  if (v.shard !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(v.shard);
    if (!m || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) throw new UsageError('--shard', `must be I/N with 1 <= I <= N (got "${v.shard}")`);
  }
  if (v.tags !== undefined && v.tags.trim() === '') throw new UsageError('--tags', 'must not be empty');

  const root = v.root ? resolve(process.cwd(), v.root) : REPO_ROOT;
  if (!existsSync(root)) throw new UsageError('--root', `no such directory: ${root}`);
  const config = v.config ? resolve(process.cwd(), v.config) : join(root, 'cucumber.cjs');
  if (!existsSync(config)) throw new UsageError('--config', `no such file: ${config}`);

  return {
    impl,
    // A user adapter's name (its expectations file) is known only once it is loaded.
    implName: builtin ? implSpec : '',
    oracle,
    tags: v.tags,
    parallel,
    shard: v.shard,
    profile: v.profile ?? PROFILE_OF[implSpec] ?? 'default',
    root,
    config,
    out: v.out ? resolve(process.cwd(), v.out) : undefined,
    expectations: v.expectations ? resolve(process.cwd(), v.expectations) : undefined,
    paths: parsed.positionals.map((p) => (isAbsolute(p) ? p : resolve(process.cwd(), p))),
  };
}

/**
 * The name a user adapter gives itself decides its expectations file and report
 * directory. Reading it means loading the module: if that fails here, it would fail in
 * every scenario too, so it is a setup error.
 */
export async function userAdapterName(spec: string): Promise<string> {
  return (await adapterIdentity(spec)).name;
}

/**
 * The adapter's name and the version of the implementation behind it (Adapter.version; for
 * qemu and cli, what `qemu-img --version` / the package say), for results.json and the matrix.
 */
export async function adapterIdentity(spec: string): Promise<{ name: string; version?: string }> {
  const index = repoPath('dist', 'adapters', 'index.js');
  const mod = (await import(pathToFileURL(index).href)) as {
    loadAdapter: (s: string) => Promise<{ name: string; version?: string; dispose?: () => Promise<void> }>;
  };
  const adapter = await mod.loadAdapter(spec);
  const name = adapter.name;
  let version = adapter.version;
  await adapter.dispose?.();
  if (!version && spec === 'qemu') {
    const r = await execa('qemu-img', ['--version'], { reject: false, timeout: 10_000 });
    version = /qemu-img version (\S+)/.exec(String(r.stdout))?.[0] ?? undefined;
  }
  if (!version && (spec === 'reference' || spec === 'cli')) {
    const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { version: string };
    version = `qbc ${pkg.version}${spec === 'cli' ? ' (bin/qbc-img, bin/qbc-io)' : ''}`;
  }
  return { name, version };
}

/** An error with its causes: cucumber wraps the useful part (e.g. a require failure). */
function describeError(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 5; e = (e as { cause?: unknown }).cause) {
    parts.push(e instanceof Error ? e.message.split('\n')[0] : String(e));
    if (!(e instanceof Error)) break;
  }
  return parts.join(': ');
}

function reportSetupError(err: unknown): number {
  if (err instanceof UsageError || err instanceof ExpectationsError) {
    console.error(`qbc run: ${err.message}`);
    console.error('(qbc run --help for the options)');
    return 2;
  }
  console.error(`qbc run: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  return 2;
}
