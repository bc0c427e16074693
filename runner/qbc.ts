/**
 * `qbc <subcommand>`: one entry point, one module per subcommand. Every module
 * exports `main(argv): Promise<number>` (the exit status). Modules are imported only
 * when their subcommand runs, so a missing or broken one never stops the others.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { REPO_ROOT } from './paths.js';

interface Subcommand {
  /** path of the compiled module, relative to dist/ */
  module: string;
  summary: string;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  run: { module: 'runner/run.js', summary: 'run the suite against an implementation (--impl, --oracle, --tags)' },
  matrix: { module: 'runner/matrix.js', summary: 'conformance matrix from reports/*/results.json' },
  trace: { module: 'runner/trace.js', summary: 'traceability of manual items to scenarios (--formats)' },
  img: { module: 'reference/cli/img.js', summary: 'the reference as a qemu-img dialect CLI' },
  io: { module: 'reference/cli/io.js', summary: 'the reference as a qemu-io dialect CLI' },
  nbd: { module: 'reference/cli/nbd.js', summary: 'the reference as a qemu-nbd dialect NBD server' },
  expectations: { module: 'runner/expectations-cli.js', summary: 'expectations update --impl X [--from results.json]: baseline from a run' },
  corpus: { module: 'runner/corpus.js', summary: 'golden image corpus: generate | verify --impl X' },
  bench: { module: 'runner/bench.js', summary: 'benchmarks' },
};

export function helpText(): string {
  const width = Math.max(...Object.keys(SUBCOMMANDS).map((k) => k.length));
  const lines = Object.entries(SUBCOMMANDS).map(([name, s]) => `  ${name.padEnd(width)}  ${s.summary}`);
  return ['usage: qbc <subcommand> [options]', '', ...lines, '', 'qbc <subcommand> --help for its options.'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    if (rest[0] && SUBCOMMANDS[rest[0]]) return main([rest[0], '--help']);
    console.log(helpText());
    return name === undefined ? 2 : 0;
  }
  const sub = SUBCOMMANDS[name];
  if (!sub) {
    console.error(`qbc: unknown subcommand "${name}"\n\n${helpText()}`);
    return 2;
  }
  const file = resolve(REPO_ROOT, 'dist', sub.module);
  let mod: { main?: (argv: string[]) => Promise<number> };
  try {
    mod = (await import(pathToFileURL(file).href)) as typeof mod;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes(file)) {
      console.error(`qbc ${name}: not available (${sub.module} is not built; run \`npm run build\`)`);
    } else {
      console.error(`qbc ${name}: cannot load ${sub.module}: ${e.stack ?? e.message}`);
    }
    return 2;
  }
  if (typeof mod.main !== 'function') {
    console.error(`qbc ${name}: ${sub.module} exports no main(argv)`);
    return 2;
  }
  return mod.main(rest);
}
