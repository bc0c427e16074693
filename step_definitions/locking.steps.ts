/**
 * Image locking in both directions: one implementation holds an image open
 * (Adapter.holdOpen: qemu-io waiting for commands, or the reference's own open),
 * the other tries to use it and must be refused with QEMU's conflict error, or
 * let in where the permissions do not clash (readers, force-share, raw images,
 * locking=off). What is locked is read from /proc/locks, as the manual's
 * "lslocks" advice means.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { After, Then, When } from '@cucumber/cucumber';
import type { Adapter, HeldImage, ImageRef } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { attempt, isTypedRefusal } from './support/errors.js';

interface LockState {
  held: Map<string, HeldImage>;
  outcome: unknown;
  tried: boolean;
}

const states = new WeakMap<QbcWorld, LockState>();

function state(world: QbcWorld): LockState {
  let s = states.get(world);
  if (!s) {
    s = { held: new Map(), outcome: null, tried: false };
    states.set(world, s);
  }
  return s;
}

function roleAdapter(world: QbcWorld, role: string): Adapter | 'skipped' {
  if (role !== 'implementation' && role !== 'oracle') throw new Error(`unknown role "${role}" (implementation or oracle)`);
  const a = role === 'implementation' ? world.iut : world.oracle;
  if (!a) return world.notApplicable('no oracle to share the image with (--oracle none)');
  if (!a.capabilities.protocols.includes('locking')) return world.notApplicable(`${a.name} does not take image locks (protocol capability 'locking')`);
  return a;
}

/** The image as --image-opts with the file driver's locking option. */
function withLocking(img: ImageRef & { format: string }, mode: string): ImageRef {
  return { filename: `driver=${img.format},file.driver=file,file.filename=${img.filename.replaceAll(',', ',,')},file.locking=${mode}`, imageOpts: true };
}

type Action = (a: Adapter, img: ImageRef & { format: string }) => Promise<unknown>;

/** What the other user tries, in the words of the scenarios. */
const ACTIONS: Record<string, { op: 'info' | 'read' | 'write' | 'create' | 'resize'; format?: string; run: Action }> = {
  // qcow2's external data file as a raw image of its own (the scenarios name it image.data)
  'resize its data file': {
    op: 'resize', format: 'raw',
    run: async (a, img) => {
      if (!a.resize) throw new Error(`${a.name} declares resize for raw but has no resize()`);
      await a.resize({ filename: join(dirname(img.filename), 'image.data'), format: 'raw' }, { size: '2M' });
    },
  },
  'create a qcow2 image over it': { op: 'create', run: (a, img) => a.create({ format: 'qcow2', filename: img.filename, size: 1 << 20 }) },
  'resize it': {
    op: 'resize',
    run: async (a, img) => {
      if (!a.resize) throw new Error(`${a.name} declares resize for ${img.format} but has no resize()`);
      await a.resize(img, { size: '2M' });
    },
  },
  'read its info': { op: 'info', run: (a, img) => a.info(img) },
  'read its info with force-share': { op: 'info', run: (a, img) => a.info({ ...img, forceShare: true }) },
  'read its info with locking=off': { op: 'info', run: (a, img) => a.info(withLocking(img, 'off')) },
  'read it': { op: 'read', run: (a, img) => a.io(img, [{ op: 'read', offset: 0, length: 512, pattern: -1 }]) },
  'read it with force-share': { op: 'read', run: (a, img) => a.io({ ...img, forceShare: true }, [{ op: 'read', offset: 0, length: 512, pattern: -1 }]) },
  'write to it': { op: 'write', run: (a, img) => a.io(img, [{ op: 'write', offset: 0, length: 512, pattern: 0x6b }]) },
  'write to it with force-share': { op: 'write', run: (a, img) => a.io({ ...img, forceShare: true }, [{ op: 'write', offset: 0, length: 512, pattern: 0x6b }]) },
  'write to it with locking=off': { op: 'write', run: (a, img) => a.io(withLocking(img, 'off'), [{ op: 'write', offset: 0, length: 512, pattern: 0x6b }]) },
  'write to it with locking=on': { op: 'write', run: (a, img) => a.io(withLocking(img, 'on'), [{ op: 'write', offset: 0, length: 512, pattern: 0x6b }]) },
};

const HOLDS: Record<string, { write: boolean; forceShare?: boolean }> = {
  writing: { write: true },
  reading: { write: false },
  'reading with force-share': { write: false, forceShare: true },
};

When('the {word} holds the image open for {string}', async function (this: QbcWorld, role: string, how: string) {
  const a = roleAdapter(this, role);
  if (a === 'skipped') return a;
  const mode = HOLDS[how];
  if (!mode) throw new Error(`unknown way to hold an image: "${how}" (${Object.keys(HOLDS).join(', ')})`);
  const img = this.image();
  const skip = this.needs(img.format, mode.write ? 'write' : 'read', a);
  if (skip) return skip;
  if (!a.holdOpen) return this.notApplicable(`${a.name} declares locking but cannot hold an image open (no holdOpen)`);
  const h = await a.holdOpen({ ...img, forceShare: mode.forceShare }, { write: mode.write });
  state(this).held.set(role, h);
  return undefined;
});

When('the {word} releases the image', async function (this: QbcWorld, role: string) {
  const s = state(this);
  const h = s.held.get(role);
  if (!h) throw new Error(`the ${role} holds no image in this scenario`);
  s.held.delete(role);
  await h.release();
});

When('the {word} tries to {string}', async function (this: QbcWorld, role: string, what: string) {
  const a = roleAdapter(this, role);
  if (a === 'skipped') return a;
  const action = ACTIONS[what];
  if (!action) throw new Error(`unknown action "${what}" (${Object.keys(ACTIONS).join(', ')})`);
  const img = this.image();
  const skip = this.needs(action.format ?? img.format, action.op, a);
  if (skip) return skip;
  const s = state(this);
  s.tried = true;
  s.outcome = await attempt(() => action.run(a, img));
  return undefined;
});

function outcome(world: QbcWorld): unknown {
  const s = state(world);
  if (!s.tried) throw new Error('nothing was tried in this scenario');
  return s.outcome;
}

Then('the attempt succeeds', function (this: QbcWorld) {
  const err = outcome(this);
  if (err) throw new Error(`the attempt failed: ${(err as Error).message ?? String(err)}`);
});

Then('the attempt is refused with {string}', function (this: QbcWorld, text: string) {
  const err = outcome(this);
  if (!err) throw new Error(`the attempt succeeded, but it should have been refused with: ${text}`);
  if (!isTypedRefusal(err)) throw new Error(`the attempt crashed instead of being refused: ${(err as Error).stack ?? String(err)}`);
  if (!err.message.includes(text)) throw new Error(`the refusal does not say ${JSON.stringify(text)}:\n${err.message}`);
});

Then('the refusal asks whether another process is using the image', function (this: QbcWorld) {
  const err = outcome(this) as Error | null;
  const img = this.image();
  const base = img.filename.split('/').pop()!;
  if (!err || !/Is another process using the image \[([^\]]*)\]\?/.test(err.message)) {
    throw new Error(`no "Is another process using the image [...]?" hint in: ${err?.message ?? '(it succeeded)'}`);
  }
  const named = /Is another process using the image \[([^\]]*)\]\?/.exec(err.message)![1]!;
  if (!named.endsWith(base)) throw new Error(`the hint names ${named}, not the image file ${img.filename}`);
});

/** Lock bytes taken on the file by anybody, from /proc/locks (OFD locks show there with pid -1). */
function lockedBytes(file: string): number[] {
  const st = statSync(file);
  const major = Number((BigInt(st.dev) >> 8n) & 0xfffn);
  const minor = Number((BigInt(st.dev) & 0xffn) | ((BigInt(st.dev) >> 12n) & 0xfff00n));
  const dev = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  const bytes = new Set<number>();
  for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    // "N: OFDLCK ADVISORY READ -1 fe:00:1234 100 101"
    const at = f.indexOf(dev);
    if (at < 0 || f[1] !== 'OFDLCK') continue;
    const start = Number(f[at + 1]);
    const end = f[at + 2] === 'EOF' ? start : Number(f[at + 2]);
    for (let b = start; b <= end && b < start + 1024; b++) bytes.add(b);
  }
  return [...bytes].sort((x, y) => x - y);
}

Then('the image file has the lock bytes {string}', function (this: QbcWorld, list: string) {
  const want = list.trim() === 'none' ? [] : list.split(/[\s,]+/).map(Number);
  const got = lockedBytes(this.image().filename);
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`locked bytes are ${got.join(' ') || 'none'}, expected ${want.join(' ') || 'none'}`);
});

Then('its data file {string} has the lock bytes {string}', function (this: QbcWorld, name: string, list: string) {
  const want = list.trim() === 'none' ? [] : list.split(/[\s,]+/).map(Number);
  const got = lockedBytes(join(dirname(this.image().filename), name));
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`locked bytes of ${name} are ${got.join(' ') || 'none'}, expected ${want.join(' ') || 'none'}`);
});

After(async function (this: QbcWorld) {
  const s = states.get(this);
  if (!s) return;
  for (const h of s.held.values()) await h.release().catch(() => undefined);
  s.held.clear();
});
