/**
 * GlusterFS: images on a one-brick volume of a private glusterd
 * (runner/peers/glusterd.ts), one peer per scenario that asks for it, stopped
 * by PID when the scenario ends (glusterd must have port 24007, so it is held
 * no longer than needed).
 *
 * An open through qemu's libgfapi costs about 10 s (its shutdown waits for a
 * timer), so the steps run their rows at once. What the implementation wrote
 * through gluster, the oracle reads from the brick directory, where the volume
 * keeps its files as plain files; what the oracle wrote through gluster, the
 * implementation reads back through gluster.
 *
 * Filename placeholders: {host} {port} {socket} {volume} {image}.
 */
import { After, Given, Then, When, type DataTable } from '@cucumber/cucumber';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Adapter, ImageRef, IoCommand } from '../adapters/adapter.js';
import { glusterPeerUnavailable, startGlusterPeer, type GlusterPeer } from '../runner/peers/glusterd.js';
import { dropGlusterConnections } from '../reference/protocols/gluster/client.js';
import { parseSize } from './support/units.js';
import type { QbcWorld } from './world.js';

const peers = new WeakMap<QbcWorld, { peer: Promise<GlusterPeer>; dir: string }>();

function thePeer(world: QbcWorld): Promise<GlusterPeer> {
  let p = peers.get(world);
  if (!p) {
    const dir = mkdtempSync(join(tmpdir(), 'qbc-gluster-'));
    p = { peer: startGlusterPeer(dir), dir };
    peers.set(world, p);
  }
  return p.peer;
}

After({ timeout: 120_000 }, async function (this: QbcWorld) {
  const p = peers.get(this);
  if (!p) return;
  peers.delete(this);
  const peer = await p.peer.catch(() => null);
  // the in-process reference keeps its libgfapi connections for the process: end them with the peer
  await dropGlusterConnections();
  if (peer) await peer.stop();
  rmSync(p.dir, { recursive: true, force: true });
});

/** Image names are per scenario (the volume is shared by the worker's scenarios). */
const prefixes = new WeakMap<QbcWorld, string>();
function imageName(world: QbcWorld, name: string): string {
  let p = prefixes.get(world);
  if (!p) prefixes.set(world, (p = world.scratch.split('/').pop()!.slice(0, 8)));
  return `${p}-${name}`;
}

function lacksGluster(world: QbcWorld): 'skipped' | null {
  if (!world.iut.capabilities.protocols.includes('gluster')) {
    return world.notApplicable(world.iut.capabilities.notes?.gluster ?? `${world.iut.name} does not implement the gluster protocol`);
  }
  return null;
}

Given('a private glusterd with a one-brick volume', async function (this: QbcWorld) {
  const skip = lacksGluster(this);
  if (skip) return skip;
  const why = await glusterPeerUnavailable();
  if (why) return this.notApplicable(`no GlusterFS peer: ${why}`);
  await thePeer(this);
  return undefined;
});

async function refOf(world: QbcWorld, form: string, image: string, format: string): Promise<ImageRef> {
  const p = await thePeer(world);
  const values: Record<string, string> = { host: p.host, port: String(p.port), socket: p.socket, volume: p.volume, image: imageName(world, image) };
  const filename = form.replace(/\{([a-z]+)\}/g, (m, k: string) => {
    if (!(k in values)) throw new Error(`unknown placeholder ${m} in ${form}`);
    return values[k]!;
  });
  if (filename.startsWith('driver=')) return { filename, imageOpts: true };
  return filename.startsWith('json:') ? { filename } : { filename, format };
}

/**
 * Rows of one image run in table order, a create first and then its writes all
 * at once; the images run at the same time. Each write is read back in the
 * same open, so a write that went nowhere fails here.
 */
When('the implementation creates and writes these images on the volume at once:', async function (this: QbcWorld, table: DataTable) {
  const skip = lacksGluster(this);
  if (skip) return skip;
  const byImage = new Map<string, Array<Record<string, string>>>();
  for (const r of table.hashes()) byImage.set(r.image!, [...(byImage.get(r.image!) ?? []), r]);
  await Promise.all([...byImage.entries()].map(async ([image, rows]) => {
    for (const r of rows.filter((x) => x.action === 'create')) {
      if (this.needs(r.format!, 'create')) throw new Error(`${this.iut.name} has gluster but cannot create ${r.format}`);
      const ref = await refOf(this, r.form!, image, r.format!);
      await this.iut.create({ format: r.format!, filename: ref.filename, size: parseSize(r.size!) });
    }
    await Promise.all(rows.filter((x) => x.action === 'write').map(async (r) => {
      const ref = await refOf(this, r.form!, image, r.format!);
      const write: IoCommand = { op: 'write', offset: parseSize(r.offset!), length: parseSize(r.length!), pattern: Number(r.pattern) };
      await this.iut.io(ref, [write, { ...write, op: 'read' }]);
    }));
    const unknown = rows.find((x) => x.action !== 'create' && x.action !== 'write');
    if (unknown) throw new Error(`unknown action "${unknown.action}" (create or write)`);
  }));
  return undefined;
});

/** One io call per (image, form): the rows' commands in table order, the groups at the same time. */
async function ioThroughVolume(world: QbcWorld, who: Adapter, table: DataTable, op: 'read' | 'write'): Promise<void> {
  const groups = new Map<string, { ref: Promise<ImageRef>; cmds: IoCommand[] }>();
  for (const r of table.hashes()) {
    const key = `${r.image}\n${r.form}`;
    const g = groups.get(key) ?? { ref: refOf(world, r.form!, r.image!, r.format!), cmds: [] };
    const at = { offset: parseSize(r.offset!), length: parseSize(r.length!), pattern: Number(r.pattern) };
    g.cmds.push({ op, ...at });
    // a write is read back in the same open, so a write that went nowhere fails here
    if (op === 'write') g.cmds.push({ op: 'read', ...at });
    groups.set(key, g);
  }
  await Promise.all([...groups.values()].map(async (g) => who.io(await g.ref, g.cmds)));
}

When('the oracle writes through the volume at once:', async function (this: QbcWorld, table: DataTable) {
  const skip = lacksGluster(this);
  if (skip) return skip;
  const oracle = this.oracle;
  if (!oracle) return this.notApplicable('no oracle to write through the volume (--oracle none)');
  if (!oracle.capabilities.protocols.includes('gluster')) return this.notApplicable(oracle.capabilities.notes?.gluster ?? `the oracle ${oracle.name} does not implement the gluster protocol`);
  for (const r of table.hashes()) {
    const s = this.needs(r.format!, 'write', oracle);
    if (s) return s;
  }
  await ioThroughVolume(this, oracle, table, 'write');
  return undefined;
});

Then('the implementation reads through the volume at once:', async function (this: QbcWorld, table: DataTable) {
  const skip = lacksGluster(this);
  if (skip) return skip;
  for (const r of table.hashes()) {
    const s = this.needs(r.format!, 'read');
    if (s) return s;
  }
  await ioThroughVolume(this, this.iut, table, 'read');
  return undefined;
});

Then('the oracle reads from the brick:', async function (this: QbcWorld, table: DataTable) {
  const oracle = this.oracle;
  if (!oracle) return this.notApplicable('no oracle to read the brick (--oracle none)');
  const p = await thePeer(this);
  const byImage = new Map<string, { format: string; cmds: IoCommand[] }>();
  for (const r of table.hashes()) {
    const e = byImage.get(r.image!) ?? { format: r.format!, cmds: [] };
    e.cmds.push({ op: 'read', offset: parseSize(r.offset!), length: parseSize(r.length!), pattern: Number(r.pattern) });
    byImage.set(r.image!, e);
  }
  for (const [image, { format, cmds }] of byImage) {
    const skip = this.needs(format, 'read', oracle);
    if (skip) return skip;
    const ref = { filename: join(p.brick, imageName(this, image)), format };
    await oracle.io(ref, cmds);
    if (format === 'qcow2') {
      const c = await oracle.check(ref);
      if (c.exitCode !== 0) throw new Error(`${image} on the brick does not check clean: ${JSON.stringify(c)}`);
    }
  }
  return undefined;
});
