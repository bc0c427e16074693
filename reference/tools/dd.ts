/**
 * qemu-img dd [-f FMT] [-O FMT] if=INPUT of=OUTPUT [bs=N] [count=N] [skip=N],
 * with qemu-img 7.2's arithmetic: the input is read up to count*bs bytes from
 * its start (not from the skip point), the blocks before skip*bs are left out,
 * and the output is a new image of exactly what remains. Memory is bounded by
 * the 4 MiB copy buffer whatever bs is. A skip past the input (as counted)
 * warns and gives an empty output, as 7.2 and dd(1) do; the manual is silent.
 */
import { BlockError } from '../errors.js';
import { openImage } from '../graph/open.js';
import { strtosz } from '../options/qemuopts.js';
import { createImage } from './create.js';
import { emitWarning } from '../warnings.js';

export interface DdRequest {
  /** the operands as typed: "if=a.qcow2", "bs=64k", ... */
  operands: string[];
  /** -f: input format (probed without) */
  format?: string;
  /** -O: output format (default raw) */
  outputFormat?: string;
}

const SUFFIXES = 'You may use k, M, G, T, P or E suffixes for kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.';
const CHUNK = 4 * 1024 * 1024;

function blocks(name: string, text: string): number {
  const r = strtosz(text);
  if (r === null || r === 'range' || r.value > BigInt(Number.MAX_SAFE_INTEGER)) throw new BlockError('invalid-option', `Invalid ${name} specified. ${SUFFIXES}`, { option: name, value: text });
  return Number(r.value);
}

export async function ddImage(req: DdRequest): Promise<void> {
  let input: string | undefined;
  let output: string | undefined;
  let bs = 512;
  let count: number | undefined;
  let skip = 0;
  for (const op of req.operands) {
    const eq = op.indexOf('=');
    const key = eq < 0 ? op : op.slice(0, eq);
    const value = eq < 0 ? '' : op.slice(eq + 1);
    if (key === 'if') input = value;
    else if (key === 'of') output = value;
    else if (key === 'bs') {
      bs = blocks('bs', value);
      if (bs < 1 || bs > 2147483647) throw new BlockError('invalid-option', 'Invalid bs specified. Must be between 1 and 2147483647.', { option: 'bs', value });
    } else if (key === 'count') count = blocks('count', value);
    else if (key === 'skip') skip = blocks('skip', value);
    else throw new BlockError('invalid-option', `unrecognized operand ${key}`, { option: key });
  }
  if (!input || !output) throw new BlockError('invalid-option', 'Must specify both input and output files', { option: input ? 'of' : 'if' });
  const src = await openImage(input, { format: req.format, readOnly: true });
  try {
    let size = src.size();
    if (count !== undefined && size > count * bs) size = count * bs;
    // qemu-img 7.2 (like dd(1)): a skip past the input warns and makes an empty output
    let start = skip * bs;
    if (start > size) {
      emitWarning(`${input}: cannot skip to specified offset`);
      start = size;
    }
    await createImage({ format: req.outputFormat ?? 'raw', filename: output, size: size - start });
    const dst = await openImage(output, { format: req.outputFormat ?? 'raw', readOnly: false });
    try {
      for (let pos = start; pos < size;) {
        const n = Math.min(CHUNK, size - pos);
        await dst.write(pos - start, await src.read(pos, n));
        pos += n;
      }
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}
