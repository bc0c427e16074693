/**
 * `qbc io`: qemu-io's command line over the reference. Commands given with -c
 * run in order on one open of the image: read [-P pattern] OFF LEN,
 * write [-P pattern | -z [-u]] OFF LEN, discard OFF LEN. Like qemu-io, a failed
 * command is reported on its own line and the next command still runs.
 * Without -c, commands are read from standard input, one per line.
 */
import * as readline from 'node:readline';
import { BlockError } from '../errors.js';
import { openImage } from '../graph/open.js';
import { parseSize } from '../options/qemuopts.js';
import { runIo, type IoCommand } from '../tools/io.js';
import { asImage, type BlockNode } from '../node.js';
import { has, last, parseArgs, UsageError } from './args.js';

import { secretStore } from '../crypto/secret.js';

const PROG = 'qbc io';

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(argv, { withValue: ['c', 'f', 'o', 't', 'd', 'i', 'T', 'object'], flags: ['r', 'n', 'k', 'm', 'q', 'U', 'force-share', 'image-opts', 'h'] });
  } catch (e) {
    process.stderr.write(`${PROG}: ${(e as Error).message}\n`);
    return 1;
  }
  const [filename] = parsed.positional;
  if (!filename) {
    process.stderr.write(`${PROG}: no image file given\n`);
    return 1;
  }
  let node;
  try {
    const cache = last(parsed, 't');
    const imageOpts = has(parsed, 'image-opts');
    if (imageOpts && last(parsed, 'f') !== undefined) {
      process.stderr.write(`${PROG}: --image-opts and --format are mutually exclusive\n`);
      return 1;
    }
    node = await openImage(filename, { format: last(parsed, 'f'), imageOpts, secrets: secretStore(parsed.opts.get('object') ?? []), readOnly: has(parsed, 'r'), forceShare: has(parsed, 'U') || has(parsed, 'force-share'), writethrough: cache === 'writethrough' || cache === 'directsync' });
  } catch (e) {
    // qemu-io words lock clashes without qemu-img's "Could not open 'NAME': "
    const m = (e as Error).message;
    const prefix = `Could not open '${filename}': `;
    const text = e instanceof BlockError && (e.code === 'locked' || e.option === 'force-share') && m.startsWith(prefix) ? m.slice(prefix.length) : m;
    process.stderr.write(`${PROG}: can't open device ${filename}: ${text}\n`);
    return 1;
  }
  try {
    const given = parsed.opts.get('c');
    if (given) for (const text of given) await execute(node, text);
    else for await (const line of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
      if (line.trim()) await execute(node, line);
    }
  } finally {
    await node.close();
  }
  return 0;
}

async function execute(node: BlockNode, text: string): Promise<void> {
  const started = process.hrtime.bigint();
  let cmd: IoCommand & { quiet?: boolean };
  try {
    cmd = parseCommand(text);
  } catch (e) {
    process.stdout.write(`${(e as Error).message}\n`);
    return;
  }
  if (cmd.op === 'crash') {
    // qemu-io's abort: die on the spot, leaving the image as a crash would.
    await asImage(node).abandon?.();
    process.exit(134);
  }
  try {
    await runIo(node, cmd);
    if (cmd.quiet) return;
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    if (!('length' in cmd)) return;
    const verb = cmd.op === 'read' ? 'read' : cmd.op === 'discard' ? 'discard' : 'wrote';
    process.stdout.write(`${verb} ${cmd.length}/${cmd.length} bytes at offset ${cmd.offset}\n${cmd.length} bytes, 1 ops; ${secs.toFixed(4)} sec\n`);
  } catch (e) {
    if (!(e instanceof BlockError)) throw e;
    const what = cmd.op === 'zero' || cmd.op === 'write-file' ? 'write' : cmd.op;
    if (/Pattern verification failed/.test(e.message)) process.stdout.write(`${e.message}\n`);
    else process.stdout.write(`${what} failed: ${e.message}\n`);
  }
}

function parseCommand(text: string): IoCommand & { quiet?: boolean } {
  const words = text.trim().split(/\s+/);
  const name = words.shift();
  if (name === 'abort' && words.length === 0) return { op: 'crash' };
  let pattern: number | undefined;
  let zero = false;
  let unmap = false;
  let quiet = false;
  let source: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === '-P') pattern = Number(words[++i]);
    else if (w === '-z') zero = true;
    else if (w === '-u') unmap = true;
    else if (w === '-q') quiet = true;
    else if (w === '-s' && name === 'write') source = words[++i];
    else if (w.startsWith('-')) throw new UsageError(`${name}: unsupported flag ${w}`);
    else rest.push(w);
  }
  if (rest.length !== 2) throw new UsageError(`${name}: expects an offset and a length`);
  const offset = parseSize(rest[0], 'offset');
  const length = parseSize(rest[1], 'length');
  if (pattern !== undefined && (!Number.isInteger(pattern) || pattern < 0 || pattern > 255)) {
    throw new UsageError(`${name}: pattern ${words[words.indexOf('-P') + 1]} is not a byte`);
  }
  switch (name) {
    // read without -P only reads; with it, every byte is verified
    case 'read': return { op: 'read', offset, length, pattern: pattern ?? -1, quiet };
    case 'write':
      if (source !== undefined) return { op: 'write-file', offset, length, file: source, quiet };
      return zero ? { op: 'zero', offset, length, unmap, quiet } : { op: 'write', offset, length, pattern: pattern ?? 0xcd, quiet };
    case 'discard': return { op: 'discard', offset, length, quiet };
    default: throw new UsageError(`command "${name}" not found`);
  }
}
