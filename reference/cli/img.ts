/**
 * `qbc img`: the reference block layer behind qemu-img's command line, so that
 * anything scripted against qemu-img can run against the reference unchanged.
 * Subcommands: create, info, check, map, measure, convert, compare, resize, rebase,
 * commit, amend, snapshot.
 */
import { BlockError } from '../errors.js';
import { createOptionsHelp, wantsHelp } from '../options/create-options.js';
import { parseQemuOpts, parseSize } from '../options/qemuopts.js';
import { loadSchema } from '../options/schemas.js';
import { createImage } from '../tools/create.js';
import { imageInfo } from '../tools/info.js';
import { checkImage } from '../tools/check.js';
import { mapImage, type MapEntry } from '../tools/map.js';
import { measure } from '../tools/measure.js';
import { convertImage } from '../tools/convert.js';
import { compareImages } from '../tools/compare.js';
import { resizeImage } from '../tools/resize.js';
import { rebaseImage } from '../tools/rebase.js';
import { commitImage } from '../tools/commit.js';
import { amendImage } from '../tools/amend.js';
import { bitmapImage, type BitmapAction } from '../tools/bitmap.js';
import { ddImage } from '../tools/dd.js';
import { snapshotImage, snapshotTable, type SnapshotAction } from '../tools/snapshot.js';
import { has, last, parseArgs, UsageError, type ParsedArgs } from './args.js';
import { secretStore, type SecretStore } from '../crypto/secret.js';

const PROG = 'qbc img';

/** -f FMT, or --image-opts (the filename is a dotted option list); qemu-img refuses both at once. */
function imageSource(p: ParsedArgs): { format?: string; imageOpts?: boolean } {
  const imageOpts = has(p, 'image-opts');
  if (imageOpts && last(p, 'f') !== undefined) throw new UsageError('--image-opts and --format are mutually exclusive');
  return { format: last(p, 'f'), imageOpts };
}

/** The secrets the command's --object options define (qemu-img takes each once per command). */
function objects(p: ParsedArgs): SecretStore {
  return secretStore(p.opts.get('object') ?? []);
}

/** -U / --force-share: share every permission with other users of the image (image locking). */
function forceShare(p: ParsedArgs): { forceShare?: boolean } {
  return has(p, 'U') || has(p, 'force-share') ? { forceShare: true } : {};
}

type Handler = (p: ParsedArgs, out: (s: string) => void, argv?: string[]) => Promise<number>;

const commands: Record<string, { withValue: string[]; flags: string[]; run: Handler }> = {
  create: {
    withValue: ['f', 'b', 'F', 'o', 'object'],
    flags: ['q', 'u', 'h'],
    async run(p, out) {
      const format = last(p, 'f') ?? 'raw';
      const options = joinOpts(p);
      if (wantsHelp(options)) {
        out(createOptionsHelp(format).trimEnd());
        return 0;
      }
      const [filename, sizeText] = p.positional;
      if (!filename) throw new UsageError('Expecting image file name');
      const size = sizeText === undefined ? undefined : parseSize(sizeText, 'size');
      const opts = await createImage({ format, filename, size, options, backingFile: last(p, 'b'), backingFormat: last(p, 'F'), secrets: objects(p) });
      if (!has(p, 'q')) {
        const given = new Set(options ? parseQemuOpts(options).values.keys() : []);
        if (last(p, 'b') !== undefined) given.add('backing_file');
        if (last(p, 'F') !== undefined) given.add('backing_fmt');
        out(`Formatting '${filename}', fmt=${format} ${describeOptions(format, opts, given)}`);
      }
      return 0;
    },
  },
  info: {
    withValue: ['f', 'output', 'object'],
    flags: ['backing-chain', 'U', 'force-share', 'h', 'image-opts'],
    async run(p, out) {
      const filename = one(p);
      const info = await imageInfo(filename, { ...imageSource(p), ...forceShare(p), backingChain: has(p, 'backing-chain'), secrets: objects(p) });
      if (last(p, 'output') === 'json') out(JSON.stringify(info, null, 4));
      else for (const i of Array.isArray(info) ? info : [info]) out(humanInfo(i));
      return 0;
    },
  },
  check: {
    withValue: ['f', 'output', 'r', 'T', 'object'],
    flags: ['q', 'U', 'force-share', 'h', 'image-opts'],
    async run(p, out, ) {
      const filename = one(p);
      const repair = last(p, 'r');
      if (repair !== undefined && repair !== 'leaks' && repair !== 'all') {
        throw new BlockError('invalid-option', `Unknown option value for -r (expecting 'leaks' or 'all'): ${repair}`, { option: 'r' });
      }
      const logs: string[] = [];
      let r;
      try {
        r = await checkImage(filename, { ...imageSource(p), ...forceShare(p), secrets: objects(p), repair: repair as 'leaks' | 'all' | undefined, log: (l) => logs.push(l) });
      } catch (e) {
        if (e instanceof BlockError && /does not support checks/.test(e.message)) {
          process.stderr.write(`${PROG}: This image format does not support checks\n`);
          return 63;
        }
        throw e;
      }
      const { exitCode, ...json } = r;
      if (last(p, 'output') === 'json') out(JSON.stringify(json, null, 4));
      else if (!has(p, 'q')) {
        for (const l of logs) out(l);
        out(humanCheck(json as Record<string, number | string>));
      }
      return exitCode;
    },
  },
  map: {
    withValue: ['f', 'output', 'object', 'start-offset', 'max-length'],
    flags: ['U', 'force-share', 'h', 'image-opts'],
    async run(p, out) {
      const entries = await mapImage(one(p), { ...imageSource(p), ...forceShare(p), secrets: objects(p) });
      if (last(p, 'output') === 'json') out(`[${entries.map(mapLine).join(',\n')}]`);
      else {
        out(`${'Offset'.padEnd(16)}${'Length'.padEnd(16)}${'Mapped to'.padEnd(16)}File`);
        for (const e of entries) if (e.data && e.offset !== undefined) out(`${hex(e.start).padEnd(16)}${hex(e.length).padEnd(16)}${hex(e.offset).padEnd(16)}${one(p)}`);
      }
      return 0;
    },
  },
  measure: {
    withValue: ['f', 'O', 'o', 'output', 'size', 'l', 'object'],
    flags: ['U', 'force-share', 'h', 'image-opts'],
    async run(p, out) {
      const size = last(p, 'size');
      const filename = p.positional[0];
      const r = await measure({
        outputFormat: last(p, 'O') ?? 'raw',
        options: joinOpts(p),
        size: size === undefined ? undefined : parseSize(size, 'size'),
        source: filename === undefined ? undefined : { filename, ...imageSource(p), ...forceShare(p) },
      });
      if (last(p, 'output') === 'json') out(JSON.stringify(r, null, 4));
      else out(`required size: ${r.required}\nfully allocated size: ${r['fully-allocated']}`);
      return 0;
    },
  },
  convert: {
    withValue: ['f', 'O', 'o', 'B', 'F', 'S', 't', 'T', 'm', 'l', 'r', 'object'],
    flags: ['c', 'n', 'p', 'q', 'W', 'U', 'C', 'h', 'image-opts', 'target-image-opts', 'target-is-zero', 'bitmaps', 'skip-broken-bitmaps'],
    async run(p) {
      if (p.positional.length !== 2) throw new UsageError('Expecting one source and one target image file name');
      const [src, dst] = p.positional;
      if (last(p, 'l') !== undefined) throw new BlockError('unsupported', 'convert -l (a snapshot as the source) is not implemented by the reference', { option: 'l' });
      // --target-image-opts: the target is an option list naming its own format, and must exist (-n)
      const targetOpts = has(p, 'target-image-opts');
      if (targetOpts && !has(p, 'n')) throw new UsageError('--target-image-opts requires use of -n flag');
      if (targetOpts && last(p, 'O') !== undefined) throw new UsageError('--image-opts and --format are mutually exclusive');
      await convertImage({
        source: { filename: src, ...imageSource(p), ...forceShare(p) }, secrets: objects(p),
        target: { filename: dst, format: last(p, 'O') ?? 'raw', ...(targetOpts ? { imageOpts: true } : {}) },
        options: joinOpts(p), compress: has(p, 'c'), noCreate: has(p, 'n'),
        backingFile: last(p, 'B'), backingFormat: last(p, 'F'),
        bitmaps: has(p, 'bitmaps'), skipBrokenBitmaps: has(p, 'skip-broken-bitmaps'),
      });
      return 0;
    },
  },
  resize: {
    withValue: ['f', 'preallocation', 'object'],
    flags: ['q', 'shrink', 'h', 'image-opts', 'U'],
    async run(p, out) {
      // A size like -1M is an argument, not an option: take the last positional as it is.
      if (p.positional.length !== 2) throw new UsageError('Expecting image file name and size');
      const [filename, size] = p.positional;
      await resizeImage({ filename, format: last(p, 'f'), size, shrink: has(p, 'shrink'), preallocation: last(p, 'preallocation') });
      if (!has(p, 'q')) out('Image resized.');
      return 0;
    },
  },
  rebase: {
    withValue: ['f', 'b', 'F', 't', 'T', 'object'],
    flags: ['q', 'u', 'p', 'h', 'image-opts', 'U', 'c'],
    async run(p) {
      const backingFile = last(p, 'b');
      if (backingFile === undefined) throw new UsageError('Must specify backing file (-b)');
      await rebaseImage({ filename: one(p), format: last(p, 'f'), backingFile, backingFormat: last(p, 'F'), unsafe: has(p, 'u') });
      return 0;
    },
  },
  commit: {
    withValue: ['f', 'b', 't', 'r', 'object'],
    flags: ['q', 'd', 'p', 'h', 'image-opts'],
    async run(p, out) {
      await commitImage({ filename: one(p), format: last(p, 'f'), base: last(p, 'b'), keep: has(p, 'd') });
      if (!has(p, 'q')) out('Image committed.');
      return 0;
    },
  },
  amend: {
    withValue: ['f', 'o', 't', 'object'],
    flags: ['q', 'p', 'h', 'image-opts', 'force'],
    async run(p) {
      const options = joinOpts(p);
      if (!options) throw new UsageError('Must specify options (-o)');
      await amendImage({ filename: one(p), format: last(p, 'f'), options });
      return 0;
    },
  },
  snapshot: {
    // no -f: qemu-img snapshot always probes the format
    withValue: ['a', 'c', 'd', 'object'],
    flags: ['l', 'q', 'U', 'force-share', 'h', 'image-opts'],
    async run(p, out) {
      const actions: Array<[string, SnapshotAction]> = [['l', 'list'], ['a', 'apply'], ['c', 'create'], ['d', 'delete']];
      const given = actions.filter(([k]) => has(p, k));
      if (given.length > 1 || (p.opts.get(given[0]?.[0] ?? '')?.length ?? 0) > 1) throw new UsageError("Cannot mix '-l', '-a', '-c', '-d'");
      const filename = one(p);
      // like qemu-img, no action at all opens nothing and does nothing
      if (!given.length) return 0;
      const [flag, action] = given[0];
      const list = await snapshotImage({ filename, action, name: action === 'list' ? undefined : last(p, flag) });
      if (action === 'list') {
        const t = snapshotTable(list);
        if (t) out(t);
      }
      return 0;
    },
  },
  bitmap: {
    withValue: ['f', 'g', 'b', 'F', 'merge', 'object'],
    flags: ['add', 'remove', 'clear', 'enable', 'disable', 'q', 'h', 'image-opts'],
    async run(p, _out, argv) {
      if (p.positional.length !== 2) throw new UsageError('Expecting filename and bitmap name');
      const [filename, bitmap] = p.positional;
      const names = ['add', 'remove', 'clear', 'enable', 'disable', 'merge'];
      // the operations in command-line order
      const actions = (argv ?? []).map((a) => a.replace(/^--/, '').split('=')[0]).filter((a) => names.includes(a)) as BitmapAction[];
      await bitmapImage({ filename, format: last(p, 'f'), bitmap, actions, granularity: last(p, 'g'), merge: last(p, 'merge'), sourceFile: last(p, 'b'), sourceFormat: last(p, 'F') });
      return 0;
    },
  },
  dd: {
    withValue: ['f', 'O', 'object'],
    flags: ['U', 'force-share', 'h', 'image-opts'],
    async run(p) {
      await ddImage({ operands: p.positional, format: last(p, 'f'), outputFormat: last(p, 'O') });
      return 0;
    },
  },
  compare: {
    withValue: ['f', 'F', 'T', 'object'],
    flags: ['s', 'q', 'p', 'U', 'force-share', 'h', 'image-opts'],
    async run(p, out) {
      if (p.positional.length !== 2) throw new UsageError('Expecting two image file names');
      const [a, b] = p.positional;
      // --image-opts makes both names option lists; -F is a format, so it clashes too
      const imageOpts = has(p, 'image-opts');
      if (imageOpts && (last(p, 'f') !== undefined || last(p, 'F') !== undefined)) throw new UsageError('--image-opts and --format are mutually exclusive');
      const secrets = objects(p);
      const r = await compareImages({ filename: a, format: last(p, 'f'), imageOpts, ...forceShare(p), secrets }, { filename: b, format: last(p, 'F'), imageOpts, ...forceShare(p), secrets }, { strict: has(p, 's') });
      if (!has(p, 'q')) out(r.message);
      return r.identical ? 0 : 1;
    },
  },
};

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const out = (s: string) => process.stdout.write(s + '\n');
  const cmd = sub ? commands[sub] : undefined;
  if (!cmd) {
    process.stderr.write(`${PROG}: ${sub ? `Command not found: ${sub}` : 'Not enough arguments'}\nusage: ${PROG} <${Object.keys(commands).join('|')}> ...\n`);
    return 1;
  }
  try {
    return await cmd.run(parseArgs(rest, cmd), out, rest);
  } catch (e) {
    if (e instanceof BlockError || e instanceof UsageError) {
      process.stderr.write(`${PROG}: ${e.message}\n`);
      // compare exits 2 on errors, like qemu-img
      return sub === 'compare' ? 2 : 1;
    }
    throw e;
  }
}

function one(p: ParsedArgs): string {
  if (p.positional.length !== 1) throw new UsageError('Expecting one image file name');
  return p.positional[0];
}

/** qemu-img merges several -o into one list. */
function joinOpts(p: ParsedArgs): string | undefined {
  const all = p.opts.get('o');
  return all ? all.join(',') : undefined;
}

/**
 * qemu-img's "Formatting ..." line: the options it always shows (those it gives a
 * default), plus those the user gave, in qemu-img 7.2's order; both lists are the create
 * schema's x-formatting.
 */
function describeOptions(format: string, opts: Record<string, unknown>, given: Set<string>): string {
  const f = (loadSchema(`create/${format}`)['x-formatting'] as { order: string[]; always: string[] } | undefined) ?? { order: Object.keys(opts), always: ['size'] };
  return f.order
    .filter((k) => opts[k] !== undefined && (f.always.includes(k) || given.has(k)))
    .map((k) => `${k}=${typeof opts[k] === 'boolean' ? (opts[k] ? 'on' : 'off') : String(opts[k])}`)
    .join(' ');
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function mapLine(e: MapEntry): string {
  const off = e.offset !== undefined ? `, "offset": ${e.offset}` : '';
  return `{ "start": ${e.start}, "length": ${e.length}, "depth": ${e.depth}, "present": ${e.present}, "zero": ${e.zero}, "data": ${e.data}${off}}`;
}

function humanSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${n} B` : `${Number(v.toPrecision(3))} ${units[u]}`;
}

function humanInfo(i: Record<string, unknown>): string {
  const lines = [
    `image: ${i.filename}`,
    `file format: ${i.format}`,
    `virtual size: ${humanSize(i['virtual-size'] as number)} (${i['virtual-size']} bytes)`,
    `disk size: ${i['actual-size'] === undefined ? 'unavailable' : humanSize(i['actual-size'] as number)}`,
  ];
  if (i['cluster-size']) lines.push(`cluster_size: ${i['cluster-size']}`);
  if (i['backing-filename']) lines.push(`backing file: ${i['backing-filename']}`);
  if (i['backing-filename-format']) lines.push(`backing file format: ${i['backing-filename-format']}`);
  if (i.encrypted) lines.push('encrypted: yes');
  const snaps = snapshotTable((i.snapshots as Parameters<typeof snapshotTable>[0] | undefined) ?? []);
  if (snaps) lines.push(snaps);
  const fs = i['format-specific'] as { data: Record<string, unknown> } | undefined;
  if (fs) {
    lines.push('Format specific information:');
    humanFields(fs.data, 1, lines);
  }
  return lines.join('\n');
}

/** Nested format-specific data as qemu-img prints it: "-" in keys as spaces, lists as [i]:, four spaces a level. */
function humanFields(data: Record<string, unknown>, depth: number, lines: string[]): void {
  const pad = '    '.repeat(depth);
  for (const [k, v] of Object.entries(data)) {
    const key = k.replace(/-/g, ' ');
    if (Array.isArray(v)) {
      lines.push(`${pad}${key}:`);
      v.forEach((x, i) => {
        if (x !== null && typeof x === 'object') {
          lines.push(`${pad}    [${i}]:`);
          humanFields(x as Record<string, unknown>, depth + 2, lines);
        } else lines.push(`${pad}    [${i}]: ${x}`);
      });
    } else if (v !== null && typeof v === 'object') {
      lines.push(`${pad}${key}:`);
      humanFields(v as Record<string, unknown>, depth + 1, lines);
    } else lines.push(`${pad}${key}: ${v}`);
  }
}

function humanCheck(r: Record<string, number | string>): string {
  const lines: string[] = [];
  if (r.corruptions) lines.push(`\n${r.corruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.`);
  if (r.leaks) lines.push(`\n${r.leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.`);
  if (!r.corruptions && !r.leaks) lines.push('No errors were found on the image.');
  const total = (r['total-clusters'] as number) ?? 0;
  if (!total) return lines.join('\n'); // formats without cluster statistics print none
  const pct = (n: number) => (total ? ((100 * n) / total).toFixed(2) : '0.00');
  lines.push(`${r['allocated-clusters'] ?? 0}/${total} = ${pct((r['allocated-clusters'] as number) ?? 0)}% allocated, ${pct((r['fragmented-clusters'] as number) ?? 0)}% fragmented, ${pct((r['compressed-clusters'] as number) ?? 0)}% compressed clusters`);
  if (r['image-end-offset']) lines.push(`Image end offset: ${r['image-end-offset']}`);
  return lines.join('\n');
}
