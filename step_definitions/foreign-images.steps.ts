/**
 * Images made by real qemu-img and qemu-io, then read or written by the implementation
 * under test, and read back by the oracle. These scenarios let an implementation that
 * cannot create images (a third-party reader or writer) be judged on images QEMU made,
 * with reads and writes of the shapes qemu-io issues (one request across block boundaries).
 */
import { Given, Then, When, type DataTable } from '@cucumber/cucumber';
import { execa } from 'execa';
import type { IoCommand } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { toolAvailable } from './support/tools.js';
import { parseSize } from './support/units.js';

function rows(table: DataTable): { offset: number; length: number; pattern: number }[] {
  return table.hashes().map((r) => ({ offset: parseSize(r.offset!), length: parseSize(r.length!), pattern: r.pattern === 'zeroes' ? 0 : Number(r.pattern) }));
}

Given('a {size} {word} image made by qemu-img with {string} and written by qemu-io with:', async function (this: QbcWorld, size: number, format: string, options: string, table: DataTable) {
  for (const tool of ['qemu-img', 'qemu-io']) {
    if (!(await toolAvailable(tool))) return this.notApplicable(`${tool} is needed to make the image`);
  }
  const skip = this.needs(format, 'read');
  if (skip) return skip;
  const img = this.declare('image', format);
  await execa('qemu-img', ['create', '-q', '-f', format, ...(options ? ['-o', options] : []), img.filename, String(size)], { timeout: 60_000, stdin: 'ignore' });
  // mode: write (default), zero (write -z), compressed (write -c), discard
  const writes = table.hashes().flatMap((r) => {
    const o = parseSize(r.offset!);
    const l = parseSize(r.length!);
    const mode = r.mode ?? 'write';
    if (mode === 'zero') return ['-c', `write -z ${o} ${l}`];
    if (mode === 'discard') return ['-c', `discard ${o} ${l}`];
    if (mode !== 'write' && mode !== 'compressed') throw new Error(`unknown mode "${mode}" (write, zero, compressed, discard)`);
    return ['-c', `write ${mode === 'compressed' ? '-c ' : ''}-P ${Number(r.pattern)} ${o} ${l}`];
  });
  if (writes.length) await execa('qemu-io', ['-f', format, ...writes, img.filename], { timeout: 60_000, stdin: 'ignore' });
  return undefined;
});

When('the implementation writes in one open:', async function (this: QbcWorld, table: DataTable) {
  const img = this.image();
  const skip = this.needs(img.format, 'write');
  if (skip) return skip;
  const cmds: IoCommand[] = rows(table).map((w) => ({ op: 'write', ...w }));
  await this.iut.io(img, cmds);
  return undefined;
});

Then('the oracle reads these ranges back:', async function (this: QbcWorld, table: DataTable) {
  const oracle = this.oracle;
  if (!oracle) return this.notApplicable('no oracle configured (--oracle none)');
  const img = this.image();
  const skip = this.needs(img.format, 'read', oracle);
  if (skip) return skip;
  try {
    await oracle.io(img, rows(table).map((r) => ({ op: 'read', ...r })));
  } catch (err) {
    throw new Error(`${oracle.name} does not read back what the implementation wrote: ${(err as Error).message}`);
  }
  return undefined;
});
