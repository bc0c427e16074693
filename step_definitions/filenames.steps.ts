/**
 * Filenames: what a filename, json: text or dotted option list resolves to
 * (Adapter.resolveFilename), which ones are refused and with what words, and
 * the name qemu-img shows for an opened image (info's filename, the image:
 * line). In filenames and expected text, {dir} is the scenario's scratch
 * directory, {image} the current image's file and {missing} a path that does
 * not exist.
 *
 * An implementation without 'filename-parse' (qemu-img, qbc img through its
 * command line) shows options only by opening, so a scenario about protocol X
 * (its @protocol:X tag) needs X among its protocols; a scenario tagged
 * @qemu-removed:V is about a driver QEMU dropped and runs anyway, so that the
 * removal shows as a recorded expectation; one tagged @refusal is about the error
 * every implementation gives, whether it speaks the protocol or not.
 */
import { join } from 'node:path';
import { After, Before, Given, Then, When } from '@cucumber/cucumber';
import type { Adapter, ImageInfo, NbdExportHandle, ResolvedFilename } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { attempt, isTypedRefusal } from './support/errors.js';
import { serveOnLoopbackPort } from './support/nbd-port.js';
import { parseQemuOpts } from '../reference/options/qemuopts.js';
import { parseFilename, type NodeSpec } from '../reference/uri/index.js';

interface FilenameState {
  tags: string[];
  resolved?: ResolvedFilename | null;
  info?: ImageInfo | null;
  error?: unknown;
  asked?: string;
  /** an NBD export of the current image, for the names that reach it */
  nbd?: { handle: NbdExportHandle; socket?: string; port?: number };
}

const states = new WeakMap<QbcWorld, FilenameState>();

Before(function (this: QbcWorld, { pickle }) {
  states.set(this, { tags: pickle.tags.map((t) => t.name) });
});

function st(world: QbcWorld): FilenameState {
  let s = states.get(world);
  if (!s) {
    s = { tags: [] };
    states.set(world, s);
  }
  return s;
}

function fill(world: QbcWorld, text: string): string {
  let out = text.replaceAll('{dir}', world.scratch).replaceAll('{missing}', join(world.scratch, 'no-such-file'));
  if (out.includes('{image}')) out = out.replaceAll('{image}', world.image().filename);
  const nbd = st(world).nbd;
  if (nbd) out = out.replaceAll('{socket}', nbd.socket ?? '').replaceAll('{port}', String(nbd.port ?? ''));
  return out;
}

function protocolsOf(world: QbcWorld): string[] {
  return st(world)
    .tags.map((t) => /^@protocol:(.+)$/.exec(t)?.[1])
    .filter((p): p is string => p !== undefined);
}

/** null when the implementation can answer; else the not-applicable marker. */
function gate(world: QbcWorld, a: Adapter, needParse: boolean): 'skipped' | null {
  // a driver QEMU dropped, or an error every implementation must give whether it speaks the protocol or not
  const removed = st(world).tags.some((t) => t.startsWith('@qemu-removed:') || t === '@refusal');
  if (needParse && !a.resolveFilename) return world.notApplicable(`${a.name} has no resolveFilename (it cannot show what a filename resolves to)`);
  const offline = needParse && a.capabilities.protocols.includes('filename-parse');
  if (offline) return null;
  // ...but only from an implementation that takes QEMU's filename grammar at all: a reader of
  // local files (no resolveFilename) has no words for a name it never parses
  if (removed && !a.resolveFilename) return world.notApplicable(`${a.name} opens local files only: it does not take QEMU's filenames, so it has no refusal of this one to judge`);
  if (removed) return null;
  for (const p of protocolsOf(world)) {
    if (!a.capabilities.protocols.includes(p)) return world.notApplicable(`${a.name} does not implement the ${p} protocol`);
  }
  return null;
}

/** Hosts a name points at: the reference parser's host and portal options, and any URI authority. */
function hostsNamed(text: string, req: { format?: string; imageOpts?: boolean }): string[] {
  const hosts: string[] = [];
  const walk = (spec: NodeSpec): void => {
    for (const [k, v] of Object.entries(spec.own)) {
      if (typeof v !== 'string') continue;
      if (/(^|\.)host$/.test(k)) hosts.push(v);
      if (/(^|\.)portal$/.test(k)) hosts.push(v.replace(/:[0-9]*$/, ''));
    }
    for (const child of Object.values(spec.children)) walk(child);
  };
  try {
    walk(parseFilename(text, req));
  } catch {
    // a name the parser refuses: its URI authority, if it has one, still counts
  }
  // gluster's tcp default host is localhost (which may be ::1, or anything /etc/hosts says)
  if (/(^|")(gluster|gluster\+tcp|gluster\+rdma):\/\/\//.test(text)) hosts.push('localhost');
  // (only the network protocols' schemes, as qemu spells them; a unix transport reaches its socket only)
  for (const m of text.matchAll(/([A-Za-z+]+):\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]+)/gi)) {
    if (/^(nbd|iscsi|iser|gluster|ssh|sheepdog)(\+[a-z]+)?$/.test(m[1]!) && !m[1]!.endsWith('+unix')) hosts.push(m[2]!);
  }
  return hosts.map((h) => h.replace(/^\[(.*)\]$/, '$1'));
}

async function resolve(world: QbcWorld, text: string, req: { format?: string; imageOpts?: boolean; env?: Record<string, string> }): Promise<'skipped' | undefined> {
  const skip = gate(world, world.iut, true);
  if (skip) return skip;
  const s = st(world);
  s.asked = fill(world, text);
  // An implementation without 'filename-parse' resolves a name by opening it; qbc reaches no
  // address but 127.0.0.1 and unix sockets (not even a DNS server for a name that cannot resolve).
  // (a driver QEMU removed is refused before any connection: those scenarios run)
  const removed = s.tags.some((t) => t.startsWith('@qemu-removed:'));
  if (!removed && !world.iut.capabilities.protocols.includes('filename-parse')) {
    const far = hostsNamed(s.asked, req).find((h) => h !== '127.0.0.1');
    if (far !== undefined) return world.notApplicable(`${world.iut.name} resolves a name by connecting to it, and '${far}' is not 127.0.0.1: qbc contacts no other address`);
  }
  s.resolved = null;
  s.error = await attempt(async () => {
    s.resolved = await world.iut.resolveFilename!(s.asked!, req);
  });
  return undefined;
}

When('the filename {string} is resolved', function (this: QbcWorld, text: string) {
  return resolve(this, text, {});
});

When('the filename {string} is resolved with format {word}', function (this: QbcWorld, text: string, format: string) {
  return resolve(this, text, { format });
});

When('the option list {string} is resolved', function (this: QbcWorld, text: string) {
  return resolve(this, text, { imageOpts: true });
});

When('the filename {string} is resolved with the environment {string}', function (this: QbcWorld, text: string, env: string) {
  const vars: Record<string, string> = {};
  for (const [k, v] of parseQemuOpts(env).pairs) vars[k] = v;
  return resolve(this, text, { env: vars });
});

function valueAt(options: unknown, path: string): unknown {
  let v: unknown = options;
  for (const p of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

function resolvedOrThrow(world: QbcWorld): ResolvedFilename {
  const s = st(world);
  if (!s.resolved) {
    const e = s.error as Error | undefined;
    throw new Error(`"${s.asked}" was refused, but should resolve: ${e?.message ?? String(e)}`);
  }
  return s.resolved;
}

/**
 * `expected` is a dotted option list: "server.type=inet,server.port=10809"; "!export" means
 * the option is absent. Options the implementation does not show are left out, with a note;
 * when it shows none of them the scenario is not applicable.
 */
Then('the options are {string}', function (this: QbcWorld, expected: string) {
  const r = resolvedOrThrow(this);
  const rows = parseQemuOpts(fill(this, expected)).pairs;
  const unseen: string[] = [];
  const wrong: string[] = [];
  let checked = 0;
  for (const [rawPath, want] of rows) {
    // a bare "!name" is parsed as name "!name" = "on"
    const absent = rawPath.startsWith('!');
    let path = absent ? rawPath.slice(1) : rawPath;
    // options of the protocol node alone: "file.file.server.host" is its "server.host"
    if (r.node === 'protocol') path = path.replace(/^(file\.)+/, '');
    const shown = r.shown === 'all' || r.shown.includes(path);
    if (!shown || (absent && r.shown !== 'all')) {
      unseen.push(path);
      continue;
    }
    checked++;
    const got = valueAt(r.options, path);
    if (absent) {
      if (got !== undefined) wrong.push(`${path} should be absent, is ${JSON.stringify(got)}`);
    } else if (got === undefined || got === null || typeof got === 'object' || String(got) !== want) {
      wrong.push(`${path} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    }
  }
  if (wrong.length) throw new Error(`"${st(this).asked}" resolved to ${JSON.stringify(r.options)} (from ${r.source}):\n  ${wrong.join('\n  ')}`);
  if (checked === 0) return this.notApplicable(`${this.iut.name} shows none of ${unseen.join(', ')} for this filename (it shows: ${r.source})`);
  if (unseen.length) this.attach(`not shown by ${this.iut.name}, so not checked: ${unseen.join(', ')} (it shows: ${r.source})`, 'text/plain');
  return undefined;
});

Then('the filename is refused with {string}', function (this: QbcWorld, text: string) {
  const s = st(this);
  if (s.resolved) throw new Error(`"${s.asked}" resolved to ${JSON.stringify(s.resolved.options)}; expected a refusal saying "${text}"`);
  const e = s.error;
  if (!isTypedRefusal(e)) throw new Error(`"${s.asked}" was not refused with a typed error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  if (!e.message.includes(fill(this, text))) throw new Error(`"${s.asked}" was refused saying:\n${e.message}\nnot "${text}"`);
});

Then('the filename is accepted', function (this: QbcWorld) {
  resolvedOrThrow(this);
});

// --- opening by name: the image: line ---

async function open(world: QbcWorld, text: string, ref: { format?: string; imageOpts?: boolean }): Promise<'skipped' | undefined> {
  const skip = gate(world, world.iut, false);
  if (skip) return skip;
  const fmt = ref.format ?? (world.images.size ? world.image().format : undefined);
  if (fmt) {
    const s2 = world.needs(fmt, 'info');
    if (s2) return s2;
  } else if (!Object.values(world.iut.capabilities.formats).some((ops) => ops.includes('info'))) {
    // opening by name is qemu-img info; a reader without info cannot be asked
    return world.notApplicable(`${world.iut.name} has no info operation for any format (opening by name is qemu-img info)`);
  }
  const s = st(world);
  s.asked = fill(world, text);
  s.info = null;
  s.error = await attempt(async () => {
    s.info = await world.iut.info({ filename: s.asked!, ...ref });
  });
  return undefined;
}

When('the image is opened by the name {string}', function (this: QbcWorld, text: string) {
  return open(this, text, {});
});

When('the image is opened as {word} by the name {string}', function (this: QbcWorld, format: string, text: string) {
  return open(this, text, { format });
});

When('the image is opened by the options {string}', function (this: QbcWorld, text: string) {
  return open(this, text, { imageOpts: true });
});

function infoOrThrow(world: QbcWorld): ImageInfo {
  const s = st(world);
  if (!s.info) throw new Error(`opening "${s.asked}" failed: ${(s.error as Error | undefined)?.message ?? String(s.error)}`);
  return s.info;
}

Then('the image line shows {string}', function (this: QbcWorld, expected: string) {
  const i = infoOrThrow(this);
  const want = fill(this, expected);
  if (i.filename !== want) throw new Error(`image: ${i.filename}\nexpected: ${want}`);
});

Then('the opened image has format {word} and a virtual size of {size}', function (this: QbcWorld, format: string, size: number) {
  const i = infoOrThrow(this);
  if (i.format !== format || i['virtual-size'] !== size) throw new Error(`opened as ${i.format} of ${i['virtual-size']} bytes; expected ${format} of ${size}`);
});

Then('the opened image has format {word}', function (this: QbcWorld, format: string) {
  const i = infoOrThrow(this);
  if (i.format !== format) throw new Error(`opened as ${i.format}; expected ${format}`);
});

Then('opening is refused with {string}', function (this: QbcWorld, text: string) {
  const s = st(this);
  if (s.info) throw new Error(`"${s.asked}" opened (image: ${s.info.filename}); expected a refusal saying "${text}"`);
  const e = s.error;
  if (!isTypedRefusal(e)) throw new Error(`opening "${s.asked}" did not fail with a typed error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  if (!e.message.includes(fill(this, text))) throw new Error(`opening "${s.asked}" failed saying:\n${e.message}\nnot "${text}"`);
});

// --- an NBD export to open by name (the server is the oracle when it can serve, else the implementation) ---

async function exportImage(world: QbcWorld, where: 'socket' | 'port', exportName?: string): Promise<'skipped' | undefined> {
  const server = [world.oracle, world.iut].find((a) => a && a.capabilities.protocols.includes('nbd-server') && a.serveNbd);
  if (!server) return world.notApplicable('neither the implementation nor the oracle can export an image over NBD');
  const img = world.image();
  if (where === 'port') {
    const { handle, port } = await serveOnLoopbackPort(server, img, { exportName });
    st(world).nbd = { handle, port };
    return undefined;
  }
  const socket = join(world.scratch, 'nbd.sock');
  const handle = await server.serveNbd!(img, { socket, exportName });
  st(world).nbd = { handle, socket };
  return undefined;
}

Given('the image is exported over NBD on a unix socket as {string}', function (this: QbcWorld, name: string) {
  return exportImage(this, 'socket', name);
});

Given('the image is exported over NBD on a unix socket as the default export', function (this: QbcWorld) {
  return exportImage(this, 'socket');
});

Given('the image is exported over NBD on a loopback port as {string}', function (this: QbcWorld, name: string) {
  return exportImage(this, 'port', name);
});

After(async function (this: QbcWorld) {
  const nbd = states.get(this)?.nbd;
  if (nbd) await nbd.handle.stop();
});

// --- creating by name (a protocol filename instead of a scratch file) ---

When('a {size} {format} image is created by the name {string}', async function (this: QbcWorld, size: number, format: string, text: string) {
  const skip = this.needs(format, 'create');
  if (skip) return skip;
  const s = st(this);
  s.asked = fill(this, text);
  s.error = await attempt(() => this.iut.create({ format, filename: s.asked!, size }));
  return undefined;
});

When('a {size} {format} image is converted to the {format} image named {string}', async function (this: QbcWorld, size: number, format: string, target: string, text: string) {
  const skip = this.needs(format, 'create') ?? this.needs(format, 'convert');
  if (skip) return skip;
  const s = st(this);
  const source = this.declare('source', format);
  await this.iut.create({ format, filename: source.filename, size });
  s.asked = fill(this, text);
  s.error = await attempt(() => this.iut.convert({ source, target: { filename: s.asked!, format: target } }));
  return undefined;
});

When('a {size} {format} image is created by the name {string} over the backing file {string} of format {format}', async function (this: QbcWorld, size: number, format: string, text: string, backing: string, backingFormat: string) {
  const skip = this.needs(format, 'create');
  if (skip) return skip;
  const s = st(this);
  s.asked = fill(this, text);
  s.error = await attempt(() => this.iut.create({ format, filename: s.asked!, size, backingFile: fill(this, backing), backingFormat }));
  return undefined;
});

Then('creation is refused with {string}', function (this: QbcWorld, text: string) {
  const s = st(this);
  if (!s.error) throw new Error(`creating "${s.asked}" succeeded; expected a refusal saying "${text}"`);
  if (!isTypedRefusal(s.error)) throw new Error(`creating "${s.asked}" did not fail with a typed error: ${String(s.error)}`);
  if (!s.error.message.includes(text)) throw new Error(`creating "${s.asked}" failed saying:\n${s.error.message}\nnot "${text}"`);
});
