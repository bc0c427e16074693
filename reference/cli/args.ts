/**
 * getopt-style parsing for the qemu-img / qemu-io dialects: short flags with
 * or without values (`-f qcow2`, `-fqcow2`), long `--opt=value`/`--opt value`,
 * `--` ending options. Unknown flags are errors, as in qemu-img.
 */
export interface ArgSpec {
  /** flags that take a value, e.g. ['f', 'O', 'o', 'output'] */
  withValue: string[];
  /** flags without a value, e.g. ['q', 'c', 'n', 'backing-chain'] */
  flags: string[];
}

export interface ParsedArgs {
  opts: Map<string, string[]>;
  positional: string[];
}

export class UsageError extends Error {}

export function parseArgs(argv: string[], spec: ArgSpec): ParsedArgs {
  const opts = new Map<string, string[]>();
  const positional: string[] = [];
  const add = (k: string, v: string) => opts.set(k, [...(opts.get(k) ?? []), v]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      if (spec.withValue.includes(name)) {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new UsageError(`option '--${name}' requires an argument`);
        add(name, v);
      } else if (spec.flags.includes(name) && eq < 0) add(name, '');
      else throw new UsageError(`unrecognized option '${a}'`);
      continue;
    }
    // A negative number (resize -1M) is an argument, as qemu-img treats it.
    if (/^-\d/.test(a)) {
      positional.push(a);
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const f = a[j];
        if (spec.withValue.includes(f)) {
          const v = j + 1 < a.length ? a.slice(j + 1) : argv[++i];
          if (v === undefined) throw new UsageError(`option requires an argument -- '${f}'`);
          add(f, v);
          break;
        }
        if (spec.flags.includes(f)) add(f, '');
        else throw new UsageError(`invalid option -- '${f}'`);
      }
      continue;
    }
    positional.push(a);
  }
  return { opts, positional };
}

export function last(p: ParsedArgs, k: string): string | undefined {
  const v = p.opts.get(k);
  return v ? v[v.length - 1] : undefined;
}

export function has(p: ParsedArgs, k: string): boolean {
  return p.opts.has(k);
}
