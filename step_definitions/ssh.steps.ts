/**
 * SSH: images reached over SFTP from a private sshd on 127.0.0.1 (runner/peers/sshd.ts).
 * One peer per cucumber worker, started by the first scenario that asks for it
 * and stopped by PID when the worker ends; its ssh-agent is the worker's
 * SSH_AUTH_SOCK, which qemu-img inherits and the reference reads, so both
 * authenticate the way QEMU does.
 *
 * Filename forms name the running peer with placeholders: {port} (SFTP with
 * fsync), {nofsync-port} (SFTP without fsync@openssh.com), {path} (the
 * scenario image's absolute path), {user}, and the host key's fingerprints
 * {md5} {sha1} {sha256} (hex), {md5:} (hex pairs joined by ':'), {SHA256}
 * (upper case), {wrong-md5} {wrong-sha1} {wrong-sha256} (well formed, first
 * byte changed). A form beginning "driver=" is a dotted option list
 * (--image-opts); a json: form names its format itself; any other form is
 * opened as the image's format.
 */
import { After, AfterAll, Given, Then, When, type DataTable } from '@cucumber/cucumber';
import type { Adapter, ImageRef, IoCommand, IoOutcome } from '../adapters/adapter.js';
import { addKnownHost, otherHostKey, sshPeerUnavailable, startSshPeer, type SshPeer } from '../runner/peers/sshd.js';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { QbcWorld } from './world.js';
import { parseSize } from './support/units.js';
import { assertRefusalNaming, attempt } from './support/errors.js';

let peer: Promise<SshPeer> | null = null;
let peerDir: string | null = null;
let savedAuthSock: string | undefined;

interface SshState {
  /** removers of the known_hosts lines this scenario added */
  knownHosts: Array<() => Promise<void>>;
  warnings: string[] | null;
}

const state = new WeakMap<QbcWorld, SshState>();

function st(world: QbcWorld): SshState {
  let s = state.get(world);
  if (!s) state.set(world, (s = { knownHosts: [], warnings: null }));
  return s;
}

async function thePeer(): Promise<SshPeer> {
  if (!peer) {
    peerDir = mkdtempSync(join(tmpdir(), 'qbc-sshd-'));
    peer = startSshPeer(peerDir).then((p) => {
      savedAuthSock = process.env.SSH_AUTH_SOCK;
      process.env.SSH_AUTH_SOCK = p.agentSocket;
      return p;
    });
  }
  return peer;
}

AfterAll(async function () {
  if (!peer) return;
  const p = await peer.catch(() => null);
  peer = null;
  if (p) await p.stop();
  if (savedAuthSock === undefined) delete process.env.SSH_AUTH_SOCK;
  else process.env.SSH_AUTH_SOCK = savedAuthSock;
  if (peerDir) rmSync(peerDir, { recursive: true, force: true });
});

After(async function (this: QbcWorld) {
  const s = state.get(this);
  if (!s) return;
  state.delete(this);
  for (const remove of s.knownHosts) await remove();
});

function who(world: QbcWorld, role: string): Adapter | null {
  if (role === 'implementation') return world.iut;
  if (role === 'oracle') return world.oracle;
  throw new Error(`unknown role "${role}" (implementation or oracle)`);
}

function lacksSsh(world: QbcWorld, a: Adapter | null, role: string): 'skipped' | null {
  if (!a) return world.notApplicable(`no ${role} to talk SSH with (--oracle none)`);
  if (!a.capabilities.protocols.includes('ssh')) return world.notApplicable(`${a.name} does not implement the ssh protocol`);
  return null;
}

Given('a private sshd on loopback', async function (this: QbcWorld) {
  const why = sshPeerUnavailable();
  if (why) return this.notApplicable(`no SSH peer: ${why}`);
  await thePeer();
  return undefined;
});

const wrong = (hex: string) => ((parseInt(hex.slice(0, 2), 16) ^ 0xff).toString(16).padStart(2, '0')) + hex.slice(2);

async function filenameOf(world: QbcWorld, form: string): Promise<ImageRef> {
  const p = await thePeer();
  const img = world.image();
  const values: Record<string, string> = {
    port: String(p.port),
    'nofsync-port': String(p.noFsyncPort),
    path: img.filename,
    user: p.user,
    md5: p.md5,
    sha1: p.sha1,
    sha256: p.sha256,
    'md5:': p.md5.match(/../g)!.join(':'),
    SHA256: p.sha256.toUpperCase(),
    'wrong-md5': wrong(p.md5),
    'wrong-sha1': wrong(p.sha1),
    'wrong-sha256': wrong(p.sha256),
  };
  const filename = form.replace(/\{([a-zA-Z0-9:-]+)\}/g, (m, k: string) => {
    if (!(k in values)) throw new Error(`unknown placeholder ${m} in ${form}`);
    return values[k]!;
  });
  if (filename.startsWith('driver=')) return { filename, imageOpts: true };
  return filename.startsWith('json:') ? { filename } : { filename, format: img.format };
}

async function ioOverSsh(world: QbcWorld, role: string, form: string, cmds: IoCommand[]): Promise<'skipped' | void> {
  const a = who(world, role);
  const skip = lacksSsh(world, a, role) ?? world.needs(world.image().format, cmds.some((c) => c.op !== 'read') ? 'write' : 'read', a!);
  if (skip) return skip;
  const out = (await a!.io(await filenameOf(world, form), cmds)) as IoOutcome | void;
  st(world).warnings = out?.warnings ?? null;
}

When('the {word} writes {size} of pattern {pattern} at offset {size} over ssh by {string}', function (this: QbcWorld, role: string, length: number, pattern: number, offset: number, form: string) {
  return ioOverSsh(this, role, form, [{ op: 'write', offset, length, pattern }]);
});

Then('the {word} reads {size} of pattern {pattern} at offset {size} over ssh by {string}', function (this: QbcWorld, role: string, length: number, pattern: number, offset: number, form: string) {
  return ioOverSsh(this, role, form, [{ op: 'read', offset, length, pattern }]);
});

Then('the {word} reads over ssh by {string}:', function (this: QbcWorld, role: string, form: string, table: DataTable) {
  const cmds: IoCommand[] = table.hashes().map((r) => ({ op: 'read', offset: parseSize(r.offset!), length: parseSize(r.length!), pattern: Number(r.pattern) }));
  return ioOverSsh(this, role, form, cmds);
});

/**
 * A raw image made here, byte by byte (a raw image is its bytes): the host key and
 * filename scenarios are about opening, and cost no implementation's create.
 */
Given('a {size} raw file with {size} of pattern {pattern} at offset {size}', function (this: QbcWorld, size: number, length: number, pattern: number, offset: number) {
  const img = this.declare('image', 'raw');
  const fd = openSync(img.filename, 'wx');
  try {
    ftruncateSync(fd, size);
    writeSync(fd, Buffer.alloc(length, pattern), 0, length, offset);
  } finally {
    closeSync(fd);
  }
});

Then('the raw file holds {size} of pattern {pattern} at offset {size}', function (this: QbcWorld, length: number, pattern: number, offset: number) {
  const fd = openSync(this.image().filename, 'r');
  const got = Buffer.alloc(length);
  try {
    readSync(fd, got, 0, length, offset);
  } finally {
    closeSync(fd);
  }
  const bad = got.findIndex((b) => b !== pattern);
  if (bad >= 0) throw new Error(`byte ${offset + bad} of the file is 0x${got[bad]!.toString(16)}, not 0x${pattern.toString(16)}`);
});

Then('the {word} reports a virtual size of {size} over ssh by {string}', async function (this: QbcWorld, role: string, size: number, form: string) {
  const a = who(this, role);
  const skip = lacksSsh(this, a, role) ?? this.needs(this.image().format, 'info', a!);
  if (skip) return skip;
  const info = await a!.info(await filenameOf(this, form));
  if (info['virtual-size'] !== size) throw new Error(`virtual size ${info['virtual-size']} over ${form}, ${size} expected`);
  return undefined;
});

When('the {word} opens the image over ssh by {string}', async function (this: QbcWorld, role: string, form: string) {
  const a = who(this, role);
  const skip = lacksSsh(this, a, role) ?? this.needs(this.image().format, 'info', a!);
  if (skip) return skip;
  const ref = await filenameOf(this, form);
  this.lastError = await attempt(() => a!.info(ref));
  return undefined;
});

Then('the ssh open succeeds', function (this: QbcWorld) {
  if (this.lastError !== null) throw new Error(`the open failed: ${(this.lastError as Error).message}`);
});

Then('the ssh open fails with a message containing {string}', function (this: QbcWorld, text: string) {
  assertRefusalNaming('the ssh open', this.lastError, [text]);
});

Given("the server's host key is in known_hosts", async function (this: QbcWorld) {
  const p = await thePeer();
  st(this).knownHosts.push(await addKnownHost(p.host, p.port, p.hostKey));
});

Given('another host key is in known_hosts for the server', async function (this: QbcWorld) {
  const p = await thePeer();
  st(this).knownHosts.push(await addKnownHost(p.host, p.port, otherHostKey(p.dir)));
});

Then('the {word} warned {string}', async function (this: QbcWorld, role: string, text: string) {
  const p = await thePeer();
  const want = text.replaceAll('{nofsync-port}', String(p.noFsyncPort)).replaceAll('{port}', String(p.port));
  const got = st(this).warnings;
  if (got === null) return this.notApplicable(`${who(this, role)?.name ?? role} does not report the warnings it printed (io() returned none)`);
  if (!got.includes(want)) throw new Error(`expected the warning "${want}"; the warnings were: ${got.length ? got.map((w) => `"${w}"`).join(', ') : 'none'}`);
  return undefined;
});

Then('the {word} printed no warning', function (this: QbcWorld, role: string) {
  const got = st(this).warnings;
  if (got === null) return this.notApplicable(`${who(this, role)?.name ?? role} does not report the warnings it printed (io() returned none)`);
  if (got.length) throw new Error(`expected no warning; got ${got.map((w) => `"${w}"`).join(', ')}`);
  return undefined;
});

When('the implementation creates a {size} {format} image over ssh by {string}', async function (this: QbcWorld, size: number, format: string, form: string) {
  const skip = lacksSsh(this, this.iut, 'implementation') ?? this.needs(format, 'create');
  if (skip) return skip;
  this.declare('image', format);
  const ref = await filenameOf(this, form);
  await this.iut.create({ format, filename: ref.filename, size });
  return undefined;
});

Then('the oracle finds there a {format} image of {size}', async function (this: QbcWorld, format: string, size: number) {
  const oracle = this.oracle;
  if (!oracle) return this.notApplicable('no oracle to judge the image (--oracle none)');
  const skip = this.needs(format, 'info', oracle);
  if (skip) return skip;
  const img = this.image();
  const info = await oracle.info({ filename: img.filename, format });
  if (info['virtual-size'] !== size) throw new Error(`the oracle sees a virtual size of ${info['virtual-size']}, not ${size}`);
  if (!oracle.capabilities.formats[format]?.includes('check')) return undefined;
  const c = await oracle.check({ filename: img.filename, format });
  // 63: the format has no check (raw)
  if (c.exitCode !== 0 && c.exitCode !== 63) throw new Error(`the oracle's check of the image fails: ${JSON.stringify(c)}`);
  return undefined;
});
