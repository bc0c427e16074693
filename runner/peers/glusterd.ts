/**
 * A private GlusterFS peer: glusterd with its own working, run and log
 * directories and its own unix socket, on 127.0.0.1, and one volume of one
 * brick (a directory of the caller's). Bricks bind 127.0.0.1 too. The TCP port
 * is glusterd's default, 24007: the brick process fetches its volfile from
 * "-s HOST" with no port, so glusterd on any other port leaves the brick
 * unable to start. One such peer runs on a machine at a time; start waits (up
 * to a minute) for another to release the port. The gluster CLI refuses 127.0.0.1 and localhost as a brick host, so the
 * brick is named by this machine's host name, which must resolve to 127.0.0.1.
 *
 * stop() stops and deletes the volume (which ends its glusterfsd), then ends
 * glusterd by its PID and removes the brick's socket (glusterd puts it under
 * /var/run/gluster whatever its run directory is).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as net from 'node:net';

export const GLUSTERD_PORT = 24007;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

const run = promisify(execFile);
export const GLUSTERD = '/usr/sbin/glusterd';

export interface GlusterPeer {
  /** the host name bricks and clients use (resolves to 127.0.0.1) */
  host: string;
  port: number;
  /** glusterd's unix socket (gluster+unix:// and server type unix) */
  socket: string;
  volume: string;
  /** the brick directory: the volume's files as plain files */
  brick: string;
  stop(): Promise<void>;
}

export async function glusterPeerUnavailable(): Promise<string | null> {
  for (const [f, pkg] of [[GLUSTERD, 'glusterfs-server'], ['/usr/sbin/gluster', 'glusterfs-cli']] as const) {
    if (!fs.existsSync(f)) return `${f} is missing (Debian package ${pkg}; scripts/install-deps.sh installs it)`;
  }
  try {
    const a = await lookup(hostname(), { family: 4 });
    if (a.address !== '127.0.0.1') return `the host name ${hostname()} resolves to ${a.address}, not 127.0.0.1 (bricks must stay on loopback)`;
  } catch (e) {
    return `the host name ${hostname()} does not resolve (${(e as Error).message}); gluster needs a brick host name for 127.0.0.1`;
  }
  return null;
}

export async function startGlusterPeer(dir: string, volume = `qbc${process.pid}`): Promise<GlusterPeer> {
  const why = await glusterPeerUnavailable();
  if (why) throw new Error(why);
  for (const d of ['lib', 'run', 'log']) fs.mkdirSync(join(dir, d), { recursive: true });
  const socket = join(dir, 'glusterd.socket');
  const port = GLUSTERD_PORT;
  const end0 = Date.now() + 60_000;
  while (!(await portFree(port))) {
    if (Date.now() > end0) throw new Error(`127.0.0.1:${port} is still taken after 60 s (another glusterd runs here)`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const host = hostname();
  fs.writeFileSync(join(dir, 'glusterd.vol'), [
    'volume management',
    '    type mgmt/glusterd',
    `    option working-directory ${join(dir, 'lib')}`,
    `    option run-directory ${join(dir, 'run')}`,
    `    option logging-directory ${join(dir, 'log')}`,
    `    option glusterd-sockfile ${socket}`,
    '    option transport-type socket',
    '    option transport.socket.bind-address 127.0.0.1',
    `    option transport.socket.listen-port ${port}`,
    '    option transport.address-family inet',
    '    option ping-timeout 0',
    '    option event-threads 1',
    'end-volume',
    '',
  ].join('\n'));
  const gl = (...args: string[]) => run('gluster', ['--mode=script', `--glusterd-sock=${socket}`, ...args], { timeout: 60_000 });
  const log = fs.openSync(join(dir, 'glusterd.out'), 'a');
  const glusterd: ChildProcess = spawn(GLUSTERD, ['-N', '-f', join(dir, 'glusterd.vol'), '-l', join(dir, 'log', 'glusterd.log'), '-p', join(dir, 'glusterd.pid')], { stdio: ['ignore', log, log] });
  const brick = join(dir, `brick-${volume}`);
  let made = false;
  let brickSocket: string | null = null;
  const stop = async () => {
    if (made) {
      await gl('volume', 'stop', volume, 'force').catch(() => undefined);
      await gl('volume', 'delete', volume).catch(() => undefined);
    }
    if (glusterd.exitCode === null && glusterd.signalCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { try { process.kill(glusterd.pid!, 'SIGKILL'); } catch { /* gone */ } resolve(); }, 10_000);
        glusterd.once('exit', () => { clearTimeout(t); resolve(); });
        try { process.kill(glusterd.pid!, 'SIGTERM'); } catch { clearTimeout(t); resolve(); }
      });
    }
    if (brickSocket) fs.rmSync(brickSocket, { force: true });
    fs.closeSync(log);
  };
  try {
    const end = Date.now() + 60_000;
    for (;;) {
      if (glusterd.exitCode !== null) throw new Error(`glusterd exited with status ${glusterd.exitCode} (see ${join(dir, 'log', 'glusterd.log')})`);
      if (await gl('volume', 'list').then(() => true, () => false)) break;
      if (Date.now() > end) throw new Error('glusterd did not answer within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    fs.mkdirSync(brick, { recursive: true });
    await gl('volume', 'create', volume, `${host}:${brick}`, 'force');
    made = true;
    await gl('volume', 'start', volume);
    // the brick's socket path, to remove at stop (its process is found by the brick directory)
    const ps = await run('ps', ['-o', 'args=', '-C', 'glusterfsd'], { timeout: 10_000 }).catch(() => ({ stdout: '' }));
    const line = String(ps.stdout).split('\n').find((l) => l.includes(`--brick-name ${brick} `));
    brickSocket = line ? (/ -S (\S+)/.exec(line)?.[1] ?? null) : null;
    return { host, port, socket, volume, brick, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
