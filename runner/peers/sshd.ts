/**
 * A private SSH peer for tests and benchmarks: an sshd on 127.0.0.1 only, with
 * its own host key, its own authorized_keys and its own ssh-agent holding the
 * one user key, all in a directory of the caller's. Two ports: the first serves
 * SFTP with every OpenSSH extension, the second (Match LocalPort) refuses
 * fsync@openssh.com, so QEMU's "does not support fsync" warning can be seen.
 *
 * Started processes are recorded by PID and stop() ends exactly those.
 * known_hosts: QEMU (libssh) reads it from the account's home directory as the
 * passwd file gives it, whatever $HOME says, so a scenario that needs a host
 * key "in known_hosts" adds one line there, tagged with a marker unique to the
 * line, and removes exactly that line afterwards (under a lock file, so
 * parallel workers never lose each other's lines).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { userInfo } from 'node:os';
import { freeLoopbackPort } from './ports.js';
import { join } from 'node:path';

export const SSHD = '/usr/sbin/sshd';
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

export interface SshPeer {
  host: '127.0.0.1';
  /** SFTP with fsync@openssh.com */
  port: number;
  /** the same server, SFTP without fsync@openssh.com */
  noFsyncPort: number;
  /** the agent's socket (what SSH_AUTH_SOCK must name) */
  agentSocket: string;
  /** the host key as known_hosts holds it: "ssh-ed25519 AAAA..." */
  hostKey: string;
  /** fingerprints of the host key blob, hex without colons */
  md5: string;
  sha1: string;
  sha256: string;
  /** the user the server lets in (the local user, as QEMU's default) */
  user: string;
  dir: string;
  stop(): Promise<void>;
}

/** Why a peer cannot start here, or null when it can. */
export function sshPeerUnavailable(): string | null {
  for (const [f, pkg] of [[SSHD, 'openssh-server'], [SFTP_SERVER, 'openssh-sftp-server'], ['/usr/bin/ssh-agent', 'openssh-client'], ['/usr/bin/ssh-keygen', 'openssh-client']] as const) {
    if (!fs.existsSync(f)) return `${f} is missing (Debian package ${pkg}; scripts/install-deps.sh installs it)`;
  }
  return null;
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port });
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

async function waitUntil(what: string, ms: number, ok: () => Promise<boolean> | boolean, child?: ChildProcess): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (child && child.exitCode !== null) throw new Error(`${what}: the process exited with status ${child.exitCode}`);
    if (Date.now() > end) throw new Error(`${what}: not ready within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function stopChild(child: ChildProcess, ms = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try { process.kill(child.pid!, 'SIGKILL'); } catch { /* gone */ }
      resolve();
    }, ms);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    try { process.kill(child.pid!, 'SIGTERM'); } catch { clearTimeout(timer); resolve(); }
  });
}

export async function startSshPeer(dir: string): Promise<SshPeer> {
  const why = sshPeerUnavailable();
  if (why) throw new Error(why);
  fs.mkdirSync(dir, { recursive: true });
  // sshd's privilege-separation directory (Debian's package makes it at boot only)
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const keygen = (file: string, comment: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { timeout: 10_000, stdio: 'ignore' });
  const hostKeyFile = join(dir, 'hostkey');
  const userKeyFile = join(dir, 'userkey');
  if (!fs.existsSync(hostKeyFile)) keygen(hostKeyFile, 'qbc-test-host');
  if (!fs.existsSync(userKeyFile)) keygen(userKeyFile, 'qbc-test-user');
  fs.copyFileSync(`${userKeyFile}.pub`, join(dir, 'authorized_keys'));
  const [port, noFsyncPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  const config = join(dir, 'sshd_config');
  fs.writeFileSync(config, [
    `Port ${port}`,
    `Port ${noFsyncPort}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKeyFile}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    `PidFile ${join(dir, 'sshd.pid')}`,
    'Subsystem sftp internal-sftp',
    `Match LocalPort ${noFsyncPort}`,
    '  ForceCommand internal-sftp -P fsync',
    '',
  ].join('\n'));
  const log = fs.openSync(join(dir, 'sshd.log'), 'a');
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const c of children.reverse()) await stopChild(c);
  };
  try {
    const sshd = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', log, log] });
    children.push(sshd);
    await waitUntil('sshd', 10_000, async () => (await connects(port)) && (await connects(noFsyncPort)), sshd);
    const agentSocket = join(dir, `agent-${randomUUID().slice(0, 8)}.sock`);
    const agent = spawn('ssh-agent', ['-D', '-a', agentSocket], { stdio: ['ignore', 'ignore', log] });
    children.push(agent);
    await waitUntil('ssh-agent', 10_000, () => fs.existsSync(agentSocket), agent);
    execFileSync('ssh-add', ['-q', userKeyFile], { env: { ...process.env, SSH_AUTH_SOCK: agentSocket }, timeout: 10_000, stdio: 'ignore' });
    const pub = fs.readFileSync(`${hostKeyFile}.pub`, 'utf8').trim().split(/\s+/);
    const blob = Buffer.from(pub[1]!, 'base64');
    const hash = (t: string) => createHash(t).update(blob).digest('hex');
    return {
      host: '127.0.0.1', port, noFsyncPort, agentSocket,
      hostKey: `${pub[0]} ${pub[1]}`,
      md5: hash('md5'), sha1: hash('sha1'), sha256: hash('sha256'),
      user: userInfo().username, dir,
      stop: async () => {
        await stop();
        fs.closeSync(log);
      },
    };
  } catch (e) {
    await stop();
    fs.closeSync(log);
    throw e;
  }
}

/** A host key of the same type that the peer does not have (for the "does not match" cases). */
export function otherHostKey(dir: string): string {
  const f = join(dir, 'otherkey');
  if (!fs.existsSync(f)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'qbc-test-other', '-f', f], { timeout: 10_000, stdio: 'ignore' });
  return fs.readFileSync(`${f}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
}

export function knownHostsFile(): string {
  return join(userInfo().homedir, '.ssh', 'known_hosts');
}

async function withLock<T>(fn: () => T): Promise<T> {
  const lock = `${knownHostsFile()}.qbc-lock`;
  const end = Date.now() + 5000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // a lock older than 30 s belongs to a process that died holding it
      try { if (Date.now() - fs.statSync(lock).mtimeMs > 30_000) fs.rmdirSync(lock); } catch { /* raced */ }
      if (Date.now() > end) throw new Error(`${lock}: still locked after 5 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  try {
    return fn();
  } finally {
    fs.rmdirSync(lock);
  }
}

/**
 * Adds `[host]:port KEY` to the account's known_hosts; the returned function
 * removes exactly that line (and the file and ~/.ssh if this made them and
 * they are left empty).
 */
export async function addKnownHost(host: string, port: number, key: string): Promise<() => Promise<void>> {
  const file = knownHostsFile();
  const sshDir = join(userInfo().homedir, '.ssh');
  const madeDir = !fs.existsSync(sshDir);
  fs.mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  const marker = `qbc-test-${process.pid}-${randomUUID()}`;
  const name = port === 22 ? host : `[${host}]:${port}`;
  let madeFile = false;
  await withLock(() => {
    madeFile = !fs.existsSync(file);
    fs.appendFileSync(file, `${name} ${key} ${marker}\n`, { mode: 0o600 });
  });
  return async () => {
    await withLock(() => {
      if (!fs.existsSync(file)) return;
      const kept = fs.readFileSync(file, 'utf8').split('\n').filter((l) => !l.endsWith(` ${marker}`));
      const text = kept.join('\n');
      if (madeFile && text.trim() === '') fs.rmSync(file);
      else fs.writeFileSync(file, text);
    });
    if (madeDir) {
      try { fs.rmdirSync(sshDir); } catch { /* not empty: someone else uses it */ }
    }
  };
}
