/**
 * The reference's NBD client and server against real peers on unix sockets:
 * the client against qemu-nbd, qemu-storage-daemon (several named exports) and
 * nbdkit; qemu-img, qemu-io and nbdinfo against `qbc nbd`, including two
 * clients sharing one export with --shared=2. Every server is started here and
 * stopped by its PID.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BlockError } from '../reference/errors.js';
import { driverFor } from '../reference/graph/open.js';
import { NbdClientNode } from '../reference/protocols/nbd/client.js';

const QBC = fileURLToPath(new URL('../../bin/qbc', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'qbc-nbd-'));
const pids: number[] = [];

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
}

function waitFor(file: string, ms = 10_000): void {
  const end = Date.now() + ms;
  while (!existsSync(file)) {
    if (Date.now() > end) throw new Error(`${file} did not appear`);
    execFileSync('sleep', ['0.02']);
  }
}

function stop(pid: number): void {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

/** qemu-nbd --fork returns once its socket listens; its PID is in the pid file. */
function qemuNbd(name: string, image: string, format: string, extra: string[] = []): string {
  const sock = join(dir, `${name}.sock`);
  const pidFile = join(dir, `${name}.pid`);
  sh('qemu-nbd', ['--fork', `--pid-file=${pidFile}`, '-k', sock, '-f', format, ...extra, image]);
  waitFor(pidFile);
  pids.push(Number(readFileSync(pidFile, 'utf8')));
  return sock;
}

function qbcNbd(name: string, image: string, extra: string[] = []): { sock: string; pid: number } {
  const sock = join(dir, `${name}.sock`);
  const pidFile = join(dir, `${name}.pid`);
  sh(process.execPath, [QBC, 'nbd', '--fork', `--pid-file=${pidFile}`, '-k', sock, ...extra, image]);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  pids.push(pid);
  return { sock, pid };
}

function image(name: string, format: string, size: string, io: string[] = []): string {
  const f = join(dir, name);
  sh('qemu-img', ['create', '-q', '-f', format, f, size]);
  if (io.length) sh('qemu-io', ['-f', format, ...io.flatMap((c) => ['-c', c]), f]);
  return f;
}

const unix = (path: string, exp = '', readOnly = false) => NbdClientNode.connect({ server: { type: 'unix', path }, export: exp, readOnly, timeoutMs: 10_000 });

before(() => {
  for (const tool of ['qemu-nbd', 'qemu-storage-daemon', 'nbdkit', 'nbdinfo']) sh('which', [tool]);
});

after(() => {
  for (const p of pids) stop(p);
  rmSync(dir, { recursive: true, force: true });
});

test('reference client against qemu-nbd: read, write, zero, trim, block status, flush', async () => {
  const img = image('q1.qcow2', 'qcow2', '8M', ['write -P 0x5a 1M 1M']);
  const sock = qemuNbd('q1', img, 'qcow2', ['-x', 'disk']);
  const c = await unix(sock, 'disk');
  try {
    assert.equal(c.size(), 8 * 1024 * 1024);
    assert.ok((await c.read(1024 * 1024, 1024 * 1024)).every((b) => b === 0x5a));
    assert.ok((await c.read(0, 65536)).every((b) => b === 0));
    const st0 = await c.blockStatus(0, 8 * 1024 * 1024);
    assert.equal(st0.data, false, 'unallocated start reads as a hole');
    assert.equal(st0.zero, true);
    const st1 = await c.blockStatus(1024 * 1024, 1024 * 1024);
    assert.equal(st1.data, true);
    await c.write(3 * 1024 * 1024, Buffer.alloc(65536, 0x33));
    await c.writeZeroes(1024 * 1024, 4096);
    await c.discard(1024 * 1024 + 4096, 4096);
    await c.flush();
    assert.ok((await c.read(3 * 1024 * 1024, 65536)).every((b) => b === 0x33));
    await assert.rejects(c.read(8 * 1024 * 1024 - 1, 2), (e: unknown) => e instanceof BlockError && e.code === 'out-of-range');
  } finally {
    await c.close();
  }
  // what the reference wrote, qemu reads in the image itself (after qemu-nbd let go of it)
  await new Promise((r) => setTimeout(r, 100));
  sh('qemu-io', ['-r', '-U', '-f', 'qcow2', '-c', 'read -P 0x33 3M 64k', '-c', 'read -P 0 1M 4k', img]);
});

test('reference client against qemu-nbd: a qcow2 file over NBD opened by the reference qcow2 driver', async () => {
  const img = image('q2.qcow2', 'qcow2', '4M', ['write -P 0xa1 64k 128k']);
  const sock = qemuNbd('q2', img, 'raw', ['-r']);
  const c = await unix(sock, '', true);
  const node = await driverFor('qcow2').open(c, { readOnly: true });
  try {
    assert.equal(node.size(), 4 * 1024 * 1024);
    assert.ok((await node.read(64 * 1024, 128 * 1024)).every((b) => b === 0xa1));
    assert.ok((await node.read(0, 64 * 1024)).every((b) => b === 0));
  } finally {
    await node.close();
  }
});

test('reference client against qemu-storage-daemon: several named exports; an unknown one is a clear error', async () => {
  const a = image('sd-a.raw', 'raw', '1M', ['write -P 0x0a 0 4k']);
  const b = image('sd-b.raw', 'raw', '2M', ['write -P 0x0b 0 4k']);
  const sock = join(dir, 'qsd.sock');
  const pidFile = join(dir, 'qsd.pid');
  sh('qemu-storage-daemon', [
    '--daemonize', '--pidfile', pidFile,
    '--blockdev', `driver=file,node-name=fa,filename=${a}`,
    '--blockdev', `driver=file,node-name=fb,filename=${b}`,
    '--nbd-server', `addr.type=unix,addr.path=${sock}`,
    '--export', 'type=nbd,id=ea,node-name=fa,name=alpha,writable=on',
    '--export', 'type=nbd,id=eb,node-name=fb,name=beta',
  ]);
  pids.push(Number(readFileSync(pidFile, 'utf8')));
  const ca = await unix(sock, 'alpha');
  const cb = await unix(sock, 'beta', true);
  try {
    assert.equal(ca.size(), 1024 * 1024);
    assert.equal(cb.size(), 2 * 1024 * 1024);
    assert.ok((await ca.read(0, 4096)).every((x) => x === 0x0a));
    assert.ok((await cb.read(0, 4096)).every((x) => x === 0x0b));
    await ca.write(8192, Buffer.alloc(4096, 0x77));
    assert.ok((await ca.read(8192, 4096)).every((x) => x === 0x77));
  } finally {
    await ca.close();
    await cb.close();
  }
  await assert.rejects(unix(sock, 'gamma'), (e: unknown) => e instanceof BlockError && e.code === 'not-found' && /Requested export not available/.test(e.message) && /gamma/.test(e.message));
  await assert.rejects(unix(sock, 'beta', false), (e: unknown) => e instanceof BlockError && e.code === 'read-only');
});

test('reference client against nbdkit (memory plugin)', async () => {
  const sock = join(dir, 'kit.sock');
  const pidFile = join(dir, 'kit.pid');
  sh('nbdkit', ['-U', sock, '-P', pidFile, 'memory', '4M']);
  waitFor(pidFile);
  pids.push(Number(readFileSync(pidFile, 'utf8')));
  const c = await unix(sock);
  try {
    assert.equal(c.size(), 4 * 1024 * 1024);
    await c.write(12345, Buffer.from('hello nbdkit'));
    assert.equal((await c.read(12345, 12)).toString(), 'hello nbdkit');
    await c.writeZeroes(12345, 5);
    assert.equal((await c.read(12345, 12)).toString('latin1'), '\0\0\0\0\0 nbdkit');
  } finally {
    await c.close();
  }
});

test('qemu-img, qemu-io and nbdinfo against qbc nbd', () => {
  const img = image('s1.qcow2', 'qcow2', '8M', ['write -P 0x42 2M 1M']);
  const { sock } = qbcNbd('s1', img, ['-x', 'exp', '-t']);
  const uri = `nbd+unix:///exp?socket=${sock}`;
  const info = JSON.parse(sh('qemu-img', ['info', '--output=json', uri]));
  assert.equal(info['virtual-size'], 8 * 1024 * 1024);
  assert.equal(info.format, 'raw');
  const map = JSON.parse(sh('qemu-img', ['map', '--output=json', '-f', 'raw', uri])) as Array<{ start: number; length: number; data: boolean; zero: boolean }>;
  assert.deepEqual(map.filter((m) => m.data).map((m) => [m.start, m.length]), [[2 * 1024 * 1024, 1024 * 1024]]);
  sh('qemu-io', ['-f', 'raw', '-c', 'read -P 0x42 2M 1M', '-c', 'write -P 0x24 5M 64k', '-c', 'write -z 2M 4k', uri]);
  const out = join(dir, 's1.out.raw');
  sh('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', uri, out]);
  sh('qemu-io', ['-f', 'raw', '-c', 'read -P 0x24 5M 64k', '-c', 'read -P 0 2M 4k', '-c', 'read -P 0x42 2101248 1020k', out]);
  const ni = JSON.parse(sh('nbdinfo', ['--json', `nbd+unix:///exp?socket=${sock}`]));
  const ex = ni.exports[0];
  assert.equal(ex['export-name'], 'exp');
  assert.equal(ex['export-size'], 8 * 1024 * 1024);
  assert.equal(ex['is_read_only'], false);
  assert.ok(ex.contexts.includes('base:allocation'));
});

test('two clients share one export with --shared=2; read-only exports refuse writes', async () => {
  const img = image('s2.raw', 'raw', '1M', ['write -P 0x99 0 64k']);
  const { sock } = qbcNbd('s2', img, ['-e', '2', '-r', '-t']);
  const a = await unix(sock, '', true);
  const b = await unix(sock, '', true);
  try {
    const [ra, rb] = await Promise.all([a.read(0, 65536), b.read(0, 65536)]);
    assert.ok(ra.every((x) => x === 0x99) && rb.every((x) => x === 0x99));
  } finally {
    await a.close();
    await b.close();
  }
  const r = spawnSyncText('qemu-io', ['-f', 'raw', '-c', 'write 0 4k', `nbd+unix:///?socket=${sock}`]);
  assert.match(r, /read-only|Read-only|Permission|not permitted/i);
});

function spawnSyncText(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string };
    return `${x.stdout ?? ''}${x.stderr ?? ''}`;
  }
}

