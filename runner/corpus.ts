/**
 * `qbc corpus`: the golden-image corpus.
 *   generate [--only ID] [--check]   rebuild with real qemu-img, report drift
 *   verify --impl X [--oracle Y] [--only ID]
 *   feature [--check]                write features/corpus/corpus.feature from the manifest
 *   validate                         manifest against its schema, image files against their sha256
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sha256File } from './corpus/files.js';
import { syncFeature } from './corpus/feature.js';
import { generate } from './corpus/generate.js';
import { loadCorpus } from './corpus/corpus-set.js';
import { readManifest, summariseErrors, validateManifest } from './corpus/manifest.js';
import { CORPUS_DIR, FEATURE_FILE, MANIFEST_FILE } from './corpus/paths.js';
import { verify } from './corpus/verify.js';

const USAGE = `usage: qbc corpus <command>
  generate [--only ID] [--check]             rebuild every recipe with qemu-img/qemu-io; report drift
                                             (--check: write nothing, exit 1 on drift)
  verify --impl SPEC [--oracle SPEC] [--only ID]
                                             check that an implementation reads and recreates the corpus
  feature [--check]                          write (or check) features/corpus/corpus.feature
  validate                                   manifest valid, image files present with their sha256`;

class UsageError extends Error {}

/** --name value / --name=value / --flag parsing with errors naming the option. */
function parse(argv: string[], valued: string[], flags: string[]): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new UsageError(`unexpected argument "${a}"`);
    const [, name, inline] = m as unknown as [string, string, string | undefined];
    if (flags.includes(name)) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      out[name] = true;
    } else if (valued.includes(name)) {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`--${name} needs a value`);
      out[name] = v;
    } else throw new UsageError(`unknown option --${name}`);
  }
  return out;
}

async function validate(): Promise<number> {
  const m = await readManifest(MANIFEST_FILE);
  if (!m) {
    console.log('corpus/manifest.json does not exist; run `qbc corpus generate`');
    return 1;
  }
  const { structural, schema } = await validateManifest(m);
  const errors = [...structural, ...(schema ?? [])];
  if (errors.length) console.log(`manifest:\n${summariseErrors(errors, 20)}`);
  let bad = errors.length;
  for (const e of m.entries ?? []) {
    const file = join(CORPUS_DIR, e.file);
    if (!existsSync(file)) {
      console.log(`${e.id}: ${e.file} is missing`);
      bad++;
    } else if ((await sha256File(file)) !== e.fileSha256) {
      console.log(`${e.id}: ${e.file} does not have the recorded sha256`);
      bad++;
    }
  }
  let inSync = false;
  try {
    inSync = await syncFeature(await loadCorpus(), FEATURE_FILE, true);
  } catch (err) {
    console.log((err as Error).message);
  }
  if (!inSync) {
    console.log('features/corpus/corpus.feature is out of sync with the manifest (run `qbc corpus feature`)');
    bad++;
  }
  console.log(`${m.entries.length} entries; ${schema ? 'schema' : 'structural checks only (no schemas/corpus-manifest.json)'}; ${bad} problem(s)`);
  return bad ? 1 : 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'generate': {
        const o = parse(rest, ['only'], ['check']);
        const code = await generate({ only: o.only as string | undefined, check: o.check === true });
        if (o.check !== true) {
          const fresh = await syncFeature(await loadCorpus(), FEATURE_FILE, false);
          if (!fresh) console.log('wrote features/corpus/corpus.feature');
        }
        return code;
      }
      case 'verify': {
        const o = parse(rest, ['impl', 'oracle', 'only'], []);
        if (typeof o.impl !== 'string') throw new UsageError('--impl is required (reference, qemu, cli or a module path)');
        return await verify({ impl: o.impl, oracle: o.oracle as string | undefined, only: o.only as string | undefined });
      }
      case 'feature': {
        const o = parse(rest, [], ['check']);
        const inSync = await syncFeature(await loadCorpus(), FEATURE_FILE, o.check === true);
        if (o.check === true) {
          console.log(inSync ? 'features/corpus/corpus.feature is in sync' : 'features/corpus/corpus.feature is out of sync with corpus/manifest.json (run `qbc corpus feature`)');
          return inSync ? 0 : 1;
        }
        console.log(inSync ? 'features/corpus/corpus.feature already in sync' : 'wrote features/corpus/corpus.feature');
        return 0;
      }
      case 'validate':
        return await validate();
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`qbc corpus: ${err.message}\n${USAGE}`);
      return 2;
    }
    console.error(`qbc corpus ${cmd}: ${(err as Error).message}`);
    return 1;
  }
}
