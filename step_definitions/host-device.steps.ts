/**
 * Host devices on loop devices: a sparse backing file in the scenario's scratch
 * directory is attached with `losetup --find --show` (root only), and the After
 * hook detaches exactly the device recorded here, after checking it still
 * shows our backing file. Where no loop device can be made the scenario is not
 * applicable, with losetup's reason. Names in the scenarios use {dev} for the
 * device and {file} for its backing file.
 */
import { openSync, closeSync, writeSync, ftruncateSync } from 'node:fs';
import { After, Given, Then, When } from '@cucumber/cucumber';
import { execa } from 'execa';
import type { Adapter } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { attempt, isTypedRefusal } from './support/errors.js';

interface LoopState {
  device: string;
  backing: string;
  outcome: unknown;
  tried: boolean;
}

const loops = new WeakMap<QbcWorld, LoopState>();

async function attach(world: QbcWorld, size: number, fill?: { length: number; pattern: number; offset: number }): Promise<'skipped' | undefined> {
  const backing = world.path('loop-backing.img');
  const fd = openSync(backing, 'w');
  try {
    ftruncateSync(fd, size);
    if (fill) writeSync(fd, Buffer.alloc(fill.length, fill.pattern), 0, fill.length, fill.offset);
  } finally {
    closeSync(fd);
  }
  const r = await execa('losetup', ['--find', '--show', backing], { reject: false, timeout: 20_000, stdin: 'ignore' });
  const device = String(r.stdout ?? '').trim();
  if (r.exitCode !== 0 || !/^\/dev\/loop\d+$/.test(device)) {
    return world.notApplicable(`no loop device could be made (losetup --find --show: ${String(r.stderr || r.shortMessage || `exit ${r.exitCode}`).trim()})`);
  }
  loops.set(world, { device, backing, outcome: null, tried: false });
  return undefined;
}

function loop(world: QbcWorld): LoopState {
  const s = loops.get(world);
  if (!s) throw new Error('no loop device in this scenario');
  return s;
}

function nameOf(world: QbcWorld, text: string): string {
  const s = loop(world);
  return text.replaceAll('{dev}', s.device).replaceAll('{file}', s.backing);
}

function role(world: QbcWorld, who: string, op: 'info' | 'read' | 'write' | 'resize'): Adapter | 'skipped' {
  const a = who === 'implementation' ? world.iut : who === 'oracle' ? world.oracle : undefined;
  if (a === undefined) throw new Error(`unknown role "${who}" (implementation or oracle)`);
  if (a === null) return world.notApplicable('no oracle (--oracle none)');
  if (!a.capabilities.protocols.includes('host_device')) return world.notApplicable(`${a.name} does not implement the host_device protocol`);
  const skip = world.needs('raw', op, a);
  return skip ?? a;
}

Given('a {size} loop device', function (this: QbcWorld, size: number) {
  return attach(this, size);
});

Given('a {size} loop device with {size} of pattern {pattern} at offset {size}', function (this: QbcWorld, size: number, length: number, pattern: number, offset: number) {
  return attach(this, size, { length, pattern, offset });
});

Then('the {word} shows the device named {string} with format {string} and a virtual size of {size}', async function (this: QbcWorld, who: string, name: string, format: string, size: number) {
  const a = role(this, who, 'info');
  if (a === 'skipped') return a;
  const info = await a.info({ filename: nameOf(this, name) });
  if (info.format !== format) throw new Error(`${a.name} shows format ${String(info.format)}, expected ${format}`);
  if (info['virtual-size'] !== size) throw new Error(`${a.name} shows a virtual size of ${String(info['virtual-size'])}, expected ${size}`);
  return undefined;
});

Then('the {word} reads {size} of pattern {pattern} at offset {size} of the device named {string}', async function (this: QbcWorld, who: string, length: number, pattern: number, offset: number, name: string) {
  const a = role(this, who, 'read');
  if (a === 'skipped') return a;
  await a.io({ filename: nameOf(this, name), format: name.startsWith('json:') ? undefined : 'raw' }, [{ op: 'read', offset, length, pattern }]);
  return undefined;
});

When('the {word} writes {size} of pattern {pattern} at offset {size} of the device named {string}', async function (this: QbcWorld, who: string, length: number, pattern: number, offset: number, name: string) {
  const a = role(this, who, 'write');
  if (a === 'skipped') return a;
  await a.io({ filename: nameOf(this, name), format: name.startsWith('json:') ? undefined : 'raw' }, [{ op: 'write', offset, length, pattern }]);
  return undefined;
});

const TRIES: Record<string, { op: 'info' | 'read' | 'write' | 'resize'; run: (a: Adapter, filename: string) => Promise<unknown> }> = {
  'read the info of': { op: 'info', run: (a, f) => a.info({ filename: f }) },
  'read 4 KiB of': { op: 'read', run: (a, f) => a.io({ filename: f }, [{ op: 'read', offset: 0, length: 4096, pattern: -1 }]) },
  'write 4 KiB to': { op: 'write', run: (a, f) => a.io({ filename: f }, [{ op: 'write', offset: 0, length: 4096, pattern: 0x77 }]) },
  'grow by 1 MiB': { op: 'resize', run: (a, f) => a.resize!({ filename: f, format: 'raw' }, { size: '+1M' }) },
};

When('the {word} tries to {string} the device named {string}', async function (this: QbcWorld, who: string, what: string, name: string) {
  const t = TRIES[what];
  if (!t) throw new Error(`unknown attempt "${what}" (${Object.keys(TRIES).join(', ')})`);
  const a = role(this, who, t.op);
  if (a === 'skipped') return a;
  if (t.op === 'resize' && !a.resize) return this.notApplicable(`${a.name} has no resize`);
  const s = loop(this);
  s.tried = true;
  s.outcome = await attempt(() => t.run(a, nameOf(this, name)));
  return undefined;
});

Then('the device attempt is refused with {string}', function (this: QbcWorld, text: string) {
  const s = loop(this);
  if (!s.tried) throw new Error('nothing was tried on the device');
  const err = s.outcome;
  const want = nameOf(this, text);
  if (!err) throw new Error(`the attempt succeeded, but it should have been refused with: ${want}`);
  if (!isTypedRefusal(err)) throw new Error(`the attempt crashed instead of being refused: ${(err as Error).stack ?? String(err)}`);
  if (!err.message.includes(want)) throw new Error(`the refusal does not say ${JSON.stringify(want)}:\n${err.message}`);
});

After(async function (this: QbcWorld) {
  const s = loops.get(this);
  if (!s) return;
  loops.delete(this);
  // detach only if the device still shows our backing file (never somebody else's device)
  const r = await execa('losetup', ['--list', '--noheadings', '--output', 'BACK-FILE', s.device], { reject: false, timeout: 10_000, stdin: 'ignore' });
  const back = String(r.stdout ?? '').trim();
  if (back === s.backing || back === `${s.backing} (deleted)`) {
    await execa('losetup', ['-d', s.device], { reject: false, timeout: 10_000, stdin: 'ignore' });
  }
});
