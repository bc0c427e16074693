/**
 * iSCSI: the scenario's image file becomes a LUN of a private tgtd on
 * 127.0.0.1 (one tgtd per cucumber process, started on first use and stopped
 * after the last scenario; one target per scenario, deleted by an After hook),
 * and the implementation and the oracle reach it by iscsi:// URLs or json:
 * options with their own initiators: libiscsi inside qemu-img, the
 * reference's hand-written one. {portal}, {iqn} and {lun} in a filename are
 * filled in from the scenario's target.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { After, AfterAll, Then, When, type DataTable } from '@cucumber/cucumber';
import type { Adapter, ImageRef, IoCommand } from '../adapters/adapter.js';
import { Tgtd } from '../runner/peers/tgtd.js';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt, isTypedRefusal } from './support/errors.js';

interface IscsiState {
  tid: number;
  iqn: string;
  lun: number;
}

let tgtd: Promise<Tgtd> | null = null;
let targets = 0;
const state = new WeakMap<QbcWorld, IscsiState>();
const savedEnv = new WeakMap<QbcWorld, Record<string, string | undefined>>();

function peer(): Promise<Tgtd> {
  tgtd ??= Tgtd.start(mkdtempSync(join(tmpdir(), 'qbc-tgtd-')));
  return tgtd;
}

function who(world: QbcWorld, role: string): Adapter | null {
  if (role !== 'implementation' && role !== 'oracle') throw new Error(`unknown role "${role}" (implementation or oracle)`);
  return role === 'implementation' ? world.iut : world.oracle;
}

function lacks(world: QbcWorld, a: Adapter | null, role: string): 'skipped' | null {
  if (!a) return world.notApplicable(`no ${role} to log in to the iSCSI target (--oracle none)`);
  if (!a.capabilities.protocols.includes('iscsi')) return world.notApplicable(`${a.name} does not implement an iSCSI initiator`);
  return null;
}

async function serve(world: QbcWorld, kind: string, chap?: { user: string; password: string }): Promise<'skipped' | void> {
  let t: Tgtd;
  try {
    t = await peer();
  } catch (e) {
    return world.notApplicable(`tgtd cannot start here: ${(e as Error).message}`);
  }
  const img = world.image();
  const iqn = `iqn.2026-12.qbc.test:p${process.pid}-${++targets}`;
  const deviceType = kind === 'cdrom' ? 'cd' : 'disk';
  if (!['disk', 'cdrom', 'thin'].includes(kind)) throw new Error(`unknown LUN kind "${kind}" (disk, thin or cdrom)`);
  const tid = await t.addTarget({ iqn, luns: [{ lun: 1, file: img.filename, deviceType, params: kind === 'thin' ? 'thin_provisioning=1' : undefined }], chap,
    // tgtd offers HeaderDigest=None only unless told: let header-digest=crc32c-none really negotiate CRC32C
    settings: { HeaderDigest: 'CRC32C,None' } });
  state.set(world, { tid, iqn, lun: 1 });
}

When('the image is served by tgtd as a {word} LUN', function (this: QbcWorld, kind: string) {
  return serve(this, kind);
});

When('the image is served by tgtd as a disk LUN with CHAP user {string} and password {string}', function (this: QbcWorld, user: string, password: string) {
  return serve(this, 'disk', { user, password });
});

When('the environment has LIBISCSI_CHAP_USERNAME {string} and LIBISCSI_CHAP_PASSWORD {string}', function (this: QbcWorld, user: string, password: string) {
  // both initiators read these at open time: the reference in this process, qemu-img in its child
  savedEnv.set(this, { u: process.env.LIBISCSI_CHAP_USERNAME, p: process.env.LIBISCSI_CHAP_PASSWORD });
  process.env.LIBISCSI_CHAP_USERNAME = user;
  process.env.LIBISCSI_CHAP_PASSWORD = password;
});

async function filename(world: QbcWorld, form: string): Promise<string> {
  const st = state.get(world);
  if (!st) throw new Error('no iSCSI target in this scenario');
  const t = await peer();
  return form.replaceAll('{portal}', t.portal).replaceAll('{iqn}', st.iqn).replaceAll('{lun}', String(st.lun));
}

async function ioVia(world: QbcWorld, role: string, form: string, format: string, cmds: IoCommand[]): Promise<'skipped' | void> {
  const client = who(world, role);
  const skip = lacks(world, client, role);
  if (skip) return skip;
  const fskip = world.needs(format, cmds.some((c) => c.op !== 'read') ? 'write' : 'read', client!);
  if (fskip) return fskip;
  await client!.io(target(world, await filename(world, form), format), cmds);
}

/** The image a step names, with the scenario's secret objects (password-secret names one of them). */
function target(world: QbcWorld, name: string, format: string): ImageRef {
  return world.secrets.length > 0 ? { filename: name, format, secrets: [...world.secrets] } : { filename: name, format };
}

Then('the {word} reads {size} of pattern {pattern} at offset {size} from iSCSI {string} as {format}', function (this: QbcWorld, role: string, length: number, pattern: number, offset: number, form: string, format: string) {
  return ioVia(this, role, form, format, [{ op: 'read', offset, length, pattern }]);
});

When('the {word} writes {size} of pattern {pattern} at offset {size} to iSCSI {string} as {format}', function (this: QbcWorld, role: string, length: number, pattern: number, offset: number, form: string, format: string) {
  return ioVia(this, role, form, format, [{ op: 'write', offset, length, pattern }]);
});

When('the {word} discards {size} at offset {size} of iSCSI {string} as {format}', function (this: QbcWorld, role: string, length: number, offset: number, form: string, format: string) {
  return ioVia(this, role, form, format, [{ op: 'discard', offset, length }]);
});

When('the {word} tries to write {size} of pattern {pattern} at offset {size} to iSCSI {string} as {format}', async function (this: QbcWorld, role: string, length: number, pattern: number, offset: number, form: string, format: string) {
  let skipped: 'skipped' | void = undefined;
  this.lastError = await attempt(async () => { skipped = await ioVia(this, role, form, format, [{ op: 'write', offset, length, pattern }]); });
  return skipped;
});

When('the {word} tries to open iSCSI {string} as {format}', async function (this: QbcWorld, role: string, form: string, format: string) {
  const client = who(this, role);
  const skip = lacks(this, client, role);
  if (skip) return skip;
  const name = await filename(this, form);
  this.lastError = await attempt(() => client!.info(target(this, name, format)));
  return undefined;
});

Then('the iSCSI access fails', function (this: QbcWorld) {
  if (this.lastError === null) throw new Error('the access succeeded; expected a failure');
  if (!isTypedRefusal(this.lastError)) throw new Error(`the access crashed instead of refusing: ${(this.lastError as Error)?.stack ?? String(this.lastError)}`);
});

Then('the iSCSI access fails with a message containing {string}', function (this: QbcWorld, text: string) {
  assertRefusalNaming('the iSCSI access', this.lastError, [text]);
});

Then('the {word} shows iSCSI {string} as {format} with a virtual size of {size} and the image name:', async function (this: QbcWorld, role: string, form: string, format: string, size: number, expected: string) {
  const client = who(this, role);
  const skip = lacks(this, client, role) ?? this.needs(format, 'info', client!);
  if (skip) return skip;
  const info = await client!.info({ filename: await filename(this, form), format });
  assert.equal(info['virtual-size'], size, `virtual size through ${form}`);
  assert.equal(info.filename, await filename(this, expected.trim()), 'the image: name qemu-img prints');
  // there is no allocation to ask an iSCSI LUN for: "disk size: unavailable"
  assert.equal(info['actual-size'], undefined, 'actual-size of an iSCSI LUN');
  return undefined;
});

Then('the {word} maps iSCSI {string} as {format} as:', async function (this: QbcWorld, role: string, form: string, format: string, table: DataTable) {
  const client = who(this, role);
  const skip = lacks(this, client, role) ?? this.needs(format, 'map', client!);
  if (skip) return skip;
  const map = await client!.map({ filename: await filename(this, form), format });
  const got = map.map((e) => ({ start: e.start, length: e.length, data: e.data, zero: e.zero }));
  const want = table.hashes().map((r) => ({ start: Number(r.start), length: Number(r.length), data: r.data === 'true', zero: r.zero === 'true' }));
  assert.deepEqual(got, want, `qemu-img map of ${form}`);
  return undefined;
});

After(async function (this: QbcWorld) {
  const env = savedEnv.get(this);
  if (env) {
    savedEnv.delete(this);
    if (env.u === undefined) delete process.env.LIBISCSI_CHAP_USERNAME; else process.env.LIBISCSI_CHAP_USERNAME = env.u;
    if (env.p === undefined) delete process.env.LIBISCSI_CHAP_PASSWORD; else process.env.LIBISCSI_CHAP_PASSWORD = env.p;
  }
  const st = state.get(this);
  if (st) {
    state.delete(this);
    await (await peer()).removeTarget(st.tid);
  }
});

AfterAll(async function () {
  if (tgtd) await (await tgtd.catch(() => null))?.stop();
});
