/**
 * `qbc io`: qemu-io's command line over the reference. Commands given with -c
 * run in order on one open of the image: read [-P pattern] OFF LEN,
 * write [-P pattern | -z [-u]] OFF LEN, discard OFF LEN. Like qemu-io, a failed
 * command is reported on its own line and the next command still runs.
 */
import { BlockError } from '../errors.js';
import { openImage } from '../graph/open.js';
import { parseSize } from '../options/qemuopts.js';
import { runIo, type IoCommand } from '../tools/io.js';
import { has, last, parseArgs, UsageError } from './args.js';

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
    node = await openImage(filename, { format: last(parsed, 'f'), readOnly: has(parsed, 'r') });
  } catch (e) {
    process.stderr.write(`${PROG}: can't open device ${filename}: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    for (const text of parsed.opts.get('c') ?? []) {
      const started = process.hrtime.bigint();
      let cmd: IoCommand;
      try {
        cmd = parseCommand(text);
      } catch (e) {
        process.stdout.write(`${(e as Error).message}\n`);
        continue;
      }
      try {
        await runIo(node, cmd);
        const secs = Number(process.hrtime.bigint() - started) / 1e9;
        const verb = cmd.op === 'read' ? 'read' : cmd.op === 'discard' ? 'discard' : 'wrote';
        process.stdout.write(`${verb} ${cmd.length}/${cmd.length} bytes at offset ${cmd.offset}\n${cmd.length} bytes, 1 ops; ${secs.toFixed(4)} sec\n`);
      } catch (e) {
        if (!(e instanceof BlockError)) throw e;
        const what = cmd.op === 'zero' ? 'write' : cmd.op;
        if (/Pattern verification failed/.test(e.message)) process.stdout.write(`${e.message}\n`);
        else process.stdout.write(`${what} failed: ${e.message}\n`);
      }
    }
  } finally {
    await node.close();
  }
  return 0;
}

function parseCommand(text: string): IoCommand {
  const words = text.trim().split(/\s+/);
  const name = words.shift();
  let pattern: number | undefined;
  let zero = false;
  let unmap = false;
  const rest: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === '-P') pattern = Number(words[++i]);
    else if (w === '-z') zero = true;
    else if (w === '-u') unmap = true;
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
    case 'read': return { op: 'read', offset, length, pattern: pattern ?? 0 };
    case 'write': return zero ? { op: 'zero', offset, length, unmap } : { op: 'write', offset, length, pattern: pattern ?? 0xcd };
    case 'discard': return { op: 'discard', offset, length };
    default: throw new UsageError(`command "${name}" not found`);
  }
}
