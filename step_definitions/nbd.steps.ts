/**
 * NBD in both directions: one implementation exports an image (qemu-nbd's job,
 * Adapter.serveNbd), the other opens the export by one of the manual's
 * filename forms and reads or writes through it. Servers listen on unix
 * sockets in the scenario's scratch directory or on a free loopback port, and
 * an After hook stops each by its PID.
 */
import { After, Then, When } from '@cucumber/cucumber';
import type { Adapter, HeldImage, IoCommand, NbdExportHandle } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { serveOnLoopbackPort } from './support/nbd-port.js';
import { assertRefusalNaming, attempt, isTypedRefusal } from './support/errors.js';

interface NbdState {
  handle: NbdExportHandle;
  socket?: string;
  port?: number;
  exportName: string;
  server: Adapter;
}

const state = new WeakMap<QbcWorld, NbdState>();

function who(world: QbcWorld, role: string): Adapter | null {
  return role === 'implementation' ? world.iut : world.oracle;
}

function lacks(world: QbcWorld, a: Adapter | null, protocol: string, role: string): 'skipped' | null {
  if (!a) return world.notApplicable(`no ${role} to talk NBD with (--oracle none)`);
  if (!a.capabilities.protocols.includes(protocol)) return world.notApplicable(`${a.name} does not implement ${protocol === 'nbd' ? 'an NBD client' : 'an NBD server'}`);
  if (protocol === 'nbd-server' && !a.serveNbd) return world.notApplicable(`${a.name} declares nbd-server but has no serveNbd`);
  return null;
}

async function exportImage(world: QbcWorld, role: string, transport: string, exportName: string, readOnly: boolean, asFile: boolean, shared?: number): Promise<'skipped' | void> {
  const server = who(world, role);
  const skip = lacks(world, server, 'nbd-server', role);
  if (skip) return skip;
  const img = world.image();
  const st: Partial<NbdState> = { exportName, server: server! };
  // "its file": the export carries the image file's bytes (-f raw), for a client to open the format over NBD
  const ref = { filename: img.filename, format: asFile ? 'raw' : img.format };
  // a server exports a format by reading it (qemu-nbd -f FMT): one that cannot read it has nothing to serve
  const cannot = world.needs(ref.format, 'read', server!);
  if (cannot) return cannot;
  if (transport === 'a unix socket') {
    st.socket = world.path(`${world.current}.nbd.sock`);
    st.handle = await server!.serveNbd!(ref, { socket: st.socket, exportName, readOnly, ...(shared !== undefined ? { shared } : {}) });
  } else if (transport === 'a loopback port') {
    const { handle, port } = await serveOnLoopbackPort(server!, ref, { exportName, readOnly, ...(shared !== undefined ? { shared } : {}) });
    st.handle = handle;
    st.port = port;
  } else throw new Error(`unknown transport "${transport}"`);
  state.set(world, st as NbdState);
}

for (const ro of [false, true]) {
  for (const asFile of [false, true]) {
    const what = asFile ? "the image's file" : 'the image';
    When(`the {word} exports ${what} over NBD${ro ? ' read-only' : ''} on {string} as {string}`, function (this: QbcWorld, role: string, transport: string, name: string) {
      return exportImage(this, role, transport, name, ro, asFile);
    });
  }
}

When('the {word} exports the image over NBD on {string} as {string} for {int} client(s) at once', function (this: QbcWorld, role: string, transport: string, name: string, shared: number) {
  return exportImage(this, role, transport, name, false, false, shared);
});

const held = new WeakMap<QbcWorld, HeldImage[]>();

When('the {word} holds the export open through {string} as {format}', async function (this: QbcWorld, role: string, form: string, format: string) {
  const client = who(this, role);
  const skip = lacks(this, client, 'nbd', role);
  if (skip) return skip;
  if (!client!.holdOpen) return this.notApplicable(`${client!.name} cannot hold an image open (no holdOpen)`);
  const h = await client!.holdOpen({ filename: filename(this, form), format }, { write: false });
  held.set(this, [...(held.get(this) ?? []), h]);
  return undefined;
});

/**
 * A client beyond the export's --shared count must not be served while the others stay:
 * qemu-nbd stops accepting, so the client waits in the listen backlog (a refusal would
 * also keep it out). Passing means the read did not complete within the time given.
 */
Then('another {word} is not served through {string} as {format} within {int} seconds', async function (this: QbcWorld, role: string, form: string, format: string, seconds: number) {
  const client = who(this, role);
  const skip = lacks(this, client, 'nbd', role);
  if (skip) return skip;
  const read = client!.io({ filename: filename(this, form), format }, [{ op: 'read', offset: 0, length: 512, pattern: 0 }]);
  // the read ends when the server goes (After hook) or lets it in; its outcome then is no longer asked
  const outcome = read.then(() => 'served' as const, () => 'refused' as const);
  const timer = new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), seconds * 1000));
  const first = await Promise.race([outcome, timer]);
  if (first === 'served') throw new Error(`a client beyond the export's limit was served within ${seconds} s`);
  return undefined;
});

/** The manual's filename forms; {socket}, {port} and {export} are filled in from the running export. */
function filename(world: QbcWorld, form: string, exportName?: string): string {
  const st = state.get(world);
  if (!st) throw new Error('no NBD export in this scenario');
  const exp = exportName ?? st.exportName;
  const needsSocket = form.includes('{socket}');
  if (needsSocket && !st.socket) throw new Error(`form ${form} needs a unix socket export`);
  if (form.includes('{port}') && st.port === undefined) throw new Error(`form ${form} needs a TCP export`);
  return form.replaceAll('{socket}', st.socket ?? '').replaceAll('{port}', String(st.port ?? '')).replaceAll('{export}', exp);
}

async function ioThrough(world: QbcWorld, role: string, form: string, format: string, cmds: IoCommand[]): Promise<'skipped' | void> {
  const client = who(world, role);
  const skip = lacks(world, client, 'nbd', role);
  if (skip) return skip;
  const fskip = world.needs(format, cmds.some((c) => c.op !== 'read') ? 'write' : 'read', client!);
  if (fskip) return fskip;
  await client!.io({ filename: filename(world, form), format }, cmds);
}

When('the {word} writes {size} of pattern {pattern} at offset {size} through {string} as {format}', function (this: QbcWorld, role: string, length: number, pattern: number, offset: number, form: string, format: string) {
  return ioThrough(this, role, form, format, [{ op: 'write', offset, length, pattern }]);
});

Then('the {word} reads {size} of pattern {pattern} at offset {size} through {string} as {format}', function (this: QbcWorld, role: string, length: number, pattern: number, offset: number, form: string, format: string) {
  return ioThrough(this, role, form, format, [{ op: 'read', offset, length, pattern }]);
});

When('the {word} tries to write {size} of pattern {pattern} at offset {size} through {string} as {format}', async function (this: QbcWorld, role: string, length: number, pattern: number, offset: number, form: string, format: string) {
  let skipped: 'skipped' | void = undefined;
  this.lastError = await attempt(async () => { skipped = await ioThrough(this, role, form, format, [{ op: 'write', offset, length, pattern }]); });
  return skipped;
});

When('the {word} tries to open export {string} through {string} as {format}', async function (this: QbcWorld, role: string, name: string, form: string, format: string) {
  const client = who(this, role);
  const skip = lacks(this, client, 'nbd', role);
  if (skip) return skip;
  this.lastError = await attempt(() => client!.info({ filename: filename(this, form, name), format }));
  return undefined;
});

// qemu-io refuses to open a read-only export for writing ("Permission denied"); the reference refuses the write: both fail
Then('the NBD access fails', function (this: QbcWorld) {
  if (this.lastError === null) throw new Error('the access succeeded; expected a failure');
  if (!isTypedRefusal(this.lastError)) throw new Error(`the access crashed instead of refusing: ${(this.lastError as Error)?.stack ?? String(this.lastError)}`);
});

Then('the NBD access fails with a message containing {string}', function (this: QbcWorld, text: string) {
  assertRefusalNaming('the NBD access', this.lastError, [text]);
});

Then('the {word} reports a virtual size of {size} through {string} as {format}', async function (this: QbcWorld, role: string, size: number, form: string, format: string) {
  const client = who(this, role);
  const skip = lacks(this, client, 'nbd', role);
  if (skip) return skip;
  const info = await client!.info({ filename: filename(this, form), format });
  if (info['virtual-size'] !== size) throw new Error(`virtual size ${info['virtual-size']} through ${form}, ${size} expected`);
  return undefined;
});

When('the NBD export is stopped', async function (this: QbcWorld) {
  const st = state.get(this);
  if (!st) throw new Error('no NBD export in this scenario');
  state.delete(this);
  await st.handle.stop();
});

After(async function (this: QbcWorld) {
  for (const h of held.get(this) ?? []) await h.release();
  held.delete(this);
  const st = state.get(this);
  if (st) {
    state.delete(this);
    await st.handle.stop();
  }
});
