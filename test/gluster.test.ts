/**
 * The reference's gluster protocol: its options (QEMU's defaults and checks,
 * no peer needed), and against a private glusterd (runner/peers/glusterd.ts)
 * through libgfapi: the server list tried in order, the log file and level,
 * qemu's connection message with a hint per server, a missing path, reads
 * past the end, zerofill and discard, and create through a temporary file.
 * One glusterd for the file; the connections are not fini'd (process exit ends them).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BlockError } from '../reference/errors.js';
import { glusterAddonUnavailable } from '../reference/protocols/gluster/addon.js';
import { GlusterNode, glusterOptions } from '../reference/protocols/gluster/client.js';
import { createImage } from '../reference/tools/create.js';
import { openImage } from '../reference/graph/open.js';
import { collectWarnings } from '../reference/warnings.js';
import { glusterPeerUnavailable, startGlusterPeer, type GlusterPeer } from '../runner/peers/glusterd.js';

function typed(option: string, re?: RegExp) {
  return (e: unknown) => e instanceof BlockError && e.option === option && (!re || re.test(e.message));
}

test('gluster options: QEMU\'s defaults (port 24007, debug 4, log to stderr), old type names, the debug level clamped', () => {
  const o = glusterOptions({ volume: 'v', path: 'a', server: [{ type: 'tcp', host: 'h' }, { type: 'unix', socket: '/s' }], debug: 12 });
  assert.deepEqual(o.servers, [{ type: 'inet', host: 'h', port: 24007 }, { type: 'unix', path: '/s' }]);
  assert.equal(o.debug, 9);
  assert.equal(o.logfile, '-');
  assert.equal(glusterOptions({ volume: 'v', path: 'a', server: [{ type: 'inet', host: 'h', port: '7' }] }).debug, 4);
});

test('gluster options: bad input is a typed error naming the option', () => {
  assert.throws(() => glusterOptions({ path: 'a', server: [{ type: 'inet', host: 'h' }] }), typed('volume'));
  assert.throws(() => glusterOptions({ volume: 'v', server: [{ type: 'inet', host: 'h' }] }), typed('path'));
  assert.throws(() => glusterOptions({ volume: 'v', path: 'a', server: [] }), typed('server'));
  assert.throws(() => glusterOptions({ volume: 'v', path: 'a', server: [{ type: 'inet', host: 'h' }, { type: 'inet', host: 'h', port: '99999' }] }), typed('server.1.port', /not a valid port/));
  assert.throws(() => glusterOptions({ volume: 'v', path: 'a', server: [{ type: 'unix' }] }), typed('server.0.path'));
  assert.throws(() => glusterOptions({ volume: 'v', path: 'a', server: [{ type: 'rdma', host: 'h' }] }), typed('server.0.type'));
  assert.throws(() => glusterOptions({ volume: 'v', path: 'a', server: [{ type: 'inet', host: 'h' }], debug: 'x' }), typed('debug'));
});

const why = glusterAddonUnavailable() ?? (await glusterPeerUnavailable());
const dir = mkdtempSync(join(tmpdir(), 'qbc-gluster-test-'));
let peer: GlusterPeer;

before(async () => {
  if (!why) peer = await startGlusterPeer(join(dir, 'peer'), `qbct${process.pid}`);
});

after(async () => {
  if (peer) await peer.stop();
  rmSync(dir, { recursive: true, force: true });
});

const base = () => ({ volume: peer.volume, debug: 4, logfile: '-' });

test('over a real glusterd: a refused first server (tcp), then the real one; log file and level; read, write, zerofill, discard, truncate', { skip: why ?? false, timeout: 120_000 }, async () => {
  const log = join(dir, 'gfapi.log');
  const node = await GlusterNode.connect({
    ...base(), path: 'a.raw', create: true, debug: 7, logfile: log,
    servers: [{ type: 'inet', host: '127.0.0.1', port: 1 }, { type: 'inet', host: peer.host, port: peer.port }],
  });
  await node.truncate(1 << 20);
  await node.write(4096, Buffer.alloc(100_000, 0x5a));
  await node.writeZeroes(8192, 4096);
  await node.discard(65536, 4096);
  await node.flush();
  const back = await node.read(4096, 100_000);
  assert.ok(back.subarray(0, 4096).every((b) => b === 0x5a));
  assert.ok(back.subarray(4096, 8192).every((b) => b === 0));
  assert.ok(back.subarray(8192).every((b, i) => b === (i + 12288 >= 65536 && i + 12288 < 69632 ? b : 0x5a)));
  // past the end of the file: zeroes
  const tail = await node.read((1 << 20) - 16, 64);
  assert.ok(tail.every((b) => b === 0));
  assert.equal(node.size(), 1 << 20);
  await node.close();
  // the log file got libgfapi's lines at the INFO level asked for (7)
  assert.ok(existsSync(log) && readFileSync(log, 'utf8').includes(' I '), 'the gfapi log has INFO lines');
  // what the brick holds is what was written (the volume keeps plain files)
  const onBrick = readFileSync(join(peer.brick, 'a.raw'));
  assert.equal(onBrick.length, 1 << 20);
  assert.ok(onBrick.subarray(4096, 8192).every((b) => b === 0x5a));
});

test('over a real glusterd: a missing path is not-found; an unknown volume is qemu\'s connection message with a hint per server', { skip: why ?? false, timeout: 120_000 }, async () => {
  await assert.rejects(GlusterNode.connect({ ...base(), path: 'missing.raw', servers: [{ type: 'unix', path: peer.socket }] }),
    (e: unknown) => e instanceof BlockError && e.code === 'not-found' && /Could not open 'missing.raw': No such file or directory/.test(e.message));
  await assert.rejects(GlusterNode.connect({ ...base(), volume: 'novolume', path: 'a', servers: [{ type: 'inet', host: peer.host, port: peer.port }, { type: 'unix', path: peer.socket }] }),
    (e: unknown) => e instanceof BlockError && e.code === 'io' && e.message.startsWith('Gluster connection for volume novolume, path a failed to connect\n') &&
      e.message.includes(`hint: failed on host ${peer.host} and port ${peer.port} hint: failed on socket ${peer.socket} Please refer to gluster logs`));
  // libgfapi 10.3 gives up on a first server that is a missing unix socket, whatever follows (qemu-img 7.2 fails the same way)
  const gone = join(dir, 'no-such.socket');
  await assert.rejects(GlusterNode.connect({ ...base(), path: 'a', servers: [{ type: 'unix', path: gone }, { type: 'inet', host: peer.host, port: peer.port }] }),
    (e: unknown) => e instanceof BlockError && e.message.includes(`hint: failed on socket ${gone} hint: failed on host ${peer.host} and port ${peer.port} `));
});

test('over a real glusterd: qemu-img create through the reference makes a qcow2 qemu-img checks clean, and no temporary file is left', { skip: why ?? false, timeout: 120_000 }, async () => {
  await createImage({ format: 'qcow2', filename: `gluster+unix:///${peer.volume}/c.qcow2?socket=${peer.socket}`, size: 3 << 20 });
  const f = join(peer.brick, 'c.qcow2');
  assert.equal(statSync(f).size % 512, 0, 'the file is whole sectors long, as qemu leaves it');
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', f], { encoding: 'utf8', timeout: 30_000 })) as { format: string; 'virtual-size': number };
  assert.equal(info.format, 'qcow2');
  assert.equal(info['virtual-size'], 3 << 20);
  execFileSync('qemu-img', ['check', f], { timeout: 30_000 });
  assert.deepEqual(readdirSync(peer.brick).filter((n) => n.includes('.tmp')), []);
});

test('over a real glusterd: gluster+rdma:// opens over tcp with qemu\'s warning', { skip: why ?? false, timeout: 120_000 }, async () => {
  await createImage({ format: 'raw', filename: `gluster://${peer.host}:${peer.port}/${peer.volume}/r.raw`, size: 1 << 20 });
  const { result: node, warnings } = await collectWarnings(() => openImage(`gluster+rdma://${peer.host}:${peer.port}/${peer.volume}/r.raw`, { format: 'raw', readOnly: true }));
  assert.deepEqual(warnings, ['rdma feature is not supported, falling back to tcp']);
  assert.equal(node.size(), 1 << 20);
  await node.close();
});
