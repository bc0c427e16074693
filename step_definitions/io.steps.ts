/** Guest I/O: writing patterns, zeroing, discarding, and reading the bytes back. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { Then, When } from '@cucumber/cucumber';
import type { IoCommand } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt } from './support/errors.js';

async function run(world: QbcWorld, name: string | undefined, op: 'read' | 'write', cmd: IoCommand): Promise<'skipped' | void> {
  const img = world.image(name);
  const skip = cmd.op === 'zero' || cmd.op === 'discard' ? world.needsWriteCommand(img.format, cmd.op) : world.needs(img.format, op);
  if (skip) return skip;
  await world.iut.io(img, [cmd]);
}

const write = (offset: number, length: number, pattern: number): IoCommand => ({ op: 'write', offset, length, pattern });

// Cucumber does not tell Given from When: one definition serves both wordings.
{
  When('{size} of pattern {pattern} (is )written at offset {size}', function (this: QbcWorld, length: number, pattern: number, offset: number) {
    return run(this, undefined, 'write', write(offset, length, pattern));
  });
  When('{size} of pattern {pattern} (is )written to {string} at offset {size}', function (this: QbcWorld, length: number, pattern: number, name: string, offset: number) {
    return run(this, name, 'write', write(offset, length, pattern));
  });
  When('{size} at offset {size} (is )(are )zeroed', function (this: QbcWorld, length: number, offset: number) {
    return run(this, undefined, 'write', { op: 'zero', offset, length });
  });
  When('{size} at offset {size} (is )(are )zeroed with unmap', function (this: QbcWorld, length: number, offset: number) {
    return run(this, undefined, 'write', { op: 'zero', offset, length, unmap: true });
  });
  When('{size} at offset {size} (is )(are )discarded', function (this: QbcWorld, length: number, offset: number) {
    return run(this, undefined, 'write', { op: 'discard', offset, length });
  });
}

When('a write of {size} of pattern {pattern} at offset {size} is attempted', async function (this: QbcWorld, length: number, pattern: number, offset: number) {
  const img = this.image();
  const skip = this.needs(img.format, 'write');
  if (skip) return skip;
  this.lastError = await attempt(() => this.iut.io(img, [write(offset, length, pattern)]));
  return undefined;
});

Then('the write fails', function (this: QbcWorld) {
  assertRefusalNaming('the write', this.lastError, []);
});

Then('the write succeeds', function (this: QbcWorld) {
  if (this.lastError !== null) throw new Error(`the write failed: ${(this.lastError as Error).message}`);
});

async function readsBack(world: QbcWorld, name: string | undefined, offset: number, length: number, pattern: number): Promise<'skipped' | void> {
  const img = world.image(name);
  const skip = world.needs(img.format, 'read');
  if (skip) return skip;
  try {
    await world.iut.io(img, [{ op: 'read', offset, length, pattern }]);
  } catch (err) {
    const what = pattern === 0 ? 'zeroes' : `pattern 0x${pattern.toString(16).padStart(2, '0')}`;
    throw new Error(`${length} bytes at offset ${offset} of ${name ?? 'the image'} do not read back as ${what}: ${(err as Error).message}`);
  }
}

Then('the {size} at offset {size} read(s) back as pattern {pattern}', function (this: QbcWorld, length: number, offset: number, pattern: number) {
  return readsBack(this, undefined, offset, length, pattern);
});

Then('the {size} at offset {size} read(s) back as pattern {pattern} in a process working in another directory', async function (this: QbcWorld, length: number, offset: number, pattern: number) {
  const img = this.image();
  const skip = this.needs(img.format, 'read');
  if (skip) return skip;
  // an empty directory of its own, so no file there can stand in for one beside the image
  const elsewhere = mkdtempSync(join(this.scratch, 'cwd-'));
  try {
    await this.iut.io({ ...img, cwd: elsewhere }, [{ op: 'read', offset, length, pattern }]);
  } catch (err) {
    throw new Error(`${length} bytes at offset ${offset}, read from ${elsewhere}, do not read back as pattern 0x${pattern.toString(16)}: ${(err as Error).message}`);
  }
  return undefined;
});

Then('the {size} at offset {size} read(s) back as zeroes', function (this: QbcWorld, length: number, offset: number) {
  return readsBack(this, undefined, offset, length, 0);
});

Then('the {size} of {string} at offset {size} read(s) back as pattern {pattern}', function (this: QbcWorld, length: number, name: string, offset: number, pattern: number) {
  return readsBack(this, name, offset, length, pattern);
});

Then('the {size} of {string} at offset {size} read(s) back as zeroes', function (this: QbcWorld, length: number, name: string, offset: number) {
  return readsBack(this, name, offset, length, 0);
});

/** sha256 of `size` zero bytes, computed in chunks so a 1 GiB disk costs no 1 GiB buffer. */
export function zeroSha256(size: number): string {
  const h = createHash('sha256');
  const chunk = Buffer.alloc(Math.min(size, 1 << 20));
  for (let left = size; left > 0; left -= chunk.length) h.update(left >= chunk.length ? chunk : chunk.subarray(0, left));
  return h.digest('hex');
}

Then('the whole disk reads back as zeroes', async function (this: QbcWorld) {
  const img = this.image();
  const skip = this.needs(img.format, 'read') ?? this.needs(img.format, 'info') ?? this.needsInfoField(img.format, 'virtual-size');
  if (skip) return skip;
  const info = await this.iut.info(img);
  const sha = await this.iut.guestSha256(img);
  assert.equal(sha, zeroSha256(info['virtual-size']), `the ${info['virtual-size']}-byte disk does not read as zeroes`);
  return undefined;
});

Then('images {string} and {string} have the same guest bytes', async function (this: QbcWorld, a: string, b: string) {
  const ia = this.image(a);
  const ib = this.image(b);
  const skip = this.needs(ia.format, 'read') ?? this.needs(ib.format, 'read');
  if (skip) return skip;
  assert.equal(await this.iut.guestSha256(ia), await this.iut.guestSha256(ib), `"${a}" and "${b}" show different guest bytes`);
  return undefined;
});
