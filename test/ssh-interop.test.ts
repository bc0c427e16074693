/**
 * The reference's ssh protocol node against a real, private sshd on 127.0.0.1
 * (runner/peers/sshd.ts), cross-checked by qemu-img and qemu-io; the host key
 * checks against known_hosts files made here; and hostile peers (one that
 * never speaks, one that is no SSH server) that must end in a clear error
 * within the timeout.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BlockError } from '../reference/errors.js';
import { openImage } from '../reference/graph/open.js';
import { createImage } from '../reference/tools/create.js';
import { SshNode, type SshClientOptions } from '../reference/protocols/ssh/client.js';
import { checkKnownHosts, fingerprintMatches, hostFieldMatches, keyType } from '../reference/protocols/ssh/hostkey.js';
import { collectWarnings } from '../reference/warnings.js';
import { otherHostKey, sshPeerUnavailable, startSshPeer, type SshPeer } from '../runner/peers/sshd.js';

const dir = mkdtempSync(join(tmpdir(), 'qbc-ssh-'));
let peer: SshPeer;
const unavailable = sshPeerUnavailable();

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 30_000, env: { ...process.env, SSH_AUTH_SOCK: peer.agentSocket } });
}

const uri = (file: string, port = peer.port, check = 'no') => `ssh://127.0.0.1:${port}${file}?host_key_check=${check}`;

function connect(file: string, extra: Partial<SshClientOptions> = {}): Promise<SshNode> {
  return SshNode.connect({ host: '127.0.0.1', port: peer.port, user: peer.user, path: file, hostKeyCheck: { mode: 'none' }, agent: peer.agentSocket, timeoutMs: 10_000, ...extra });
}

before(async () => {
  if (unavailable) return;
  peer = await startSshPeer(join(dir, 'peer'));
  process.env.SSH_AUTH_SOCK = peer.agentSocket;
});

after(async () => {
  if (peer) await peer.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the SSH peer can start here', () => {
  assert.equal(unavailable, null, `no SSH peer: ${unavailable}`);
});

test('reference over ssh writes what qemu-io reads, and reads what qemu-io wrote (raw)', { skip: unavailable ?? false }, async () => {
  const f = join(dir, 'a.raw');
  sh('qemu-img', ['create', '-q', '-f', 'raw', f, '2M']);
  sh('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 65536 100000', uri(f)]);
  const node = await connect(f);
  assert.equal(node.size(), 2 << 20);
  assert.ok((await node.read(65536, 100000)).every((b) => b === 0x5a));
  // more than one SFTP request, unaligned, spanning the window
  const data = randomBytes(1_234_567);
  await node.write(333, data);
  await node.flush();
  assert.deepEqual(await node.read(333, data.length), data);
  // past the end: zeroes, as a short read is padded
  const tail = await node.read((2 << 20) - 10, 10);
  assert.equal(tail.length, 10);
  await node.close();
  const want = createHash('sha256').update(data).digest('hex');
  const got = createHash('sha256').update(readFileSync(f).subarray(333, 333 + data.length)).digest('hex');
  assert.equal(got, want);
  sh('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0x00 0 333', uri(f)]);
});

test('qcow2 over ssh: written by the reference, checked clean by qemu-img over ssh', { skip: unavailable ?? false }, async () => {
  const f = join(dir, 'b.qcow2');
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', f, '4M']);
  const node = await openImage(uri(f), { format: 'qcow2', readOnly: false });
  await node.write(3 << 20, Buffer.alloc(200_000, 0x11));
  await node.close();
  sh('qemu-io', ['-f', 'qcow2', '-r', '-c', `read -P 0x11 ${3 << 20} 200000`, uri(f)]);
  sh('qemu-img', ['check', '-f', 'qcow2', uri(f)]);
});

test('create over ssh: qemu-img checks the qcow2 clean; a refused create leaves nothing on the server', { skip: unavailable ?? false }, async () => {
  const sub = join(dir, 'create');
  execFileSync('mkdir', ['-p', sub]);
  await createImage({ format: 'qcow2', filename: uri(join(sub, 'new.qcow2')), size: 5 << 20 });
  sh('qemu-img', ['check', '-f', 'qcow2', join(sub, 'new.qcow2')]);
  assert.match(sh('qemu-img', ['info', '-f', 'qcow2', join(sub, 'new.qcow2')]), /virtual size: 5 MiB/);
  // an existing image is replaced only by a complete one
  await assert.rejects(createImage({ format: 'qcow2', filename: uri(join(sub, 'new.qcow2')), size: 5 << 20, options: 'cluster_size=3' }), /cluster_size/);
  // refused once the temporary remote file exists (ssh cannot preallocate): that file goes too
  await assert.rejects(createImage({ format: 'raw', filename: uri(join(sub, 'new.raw')), size: 1 << 20, options: 'preallocation=full' }), /preallocation/);
  sh('qemu-img', ['check', '-f', 'qcow2', join(sub, 'new.qcow2')]);
  assert.deepEqual(readdirSync(sub), ['new.qcow2']);
  await assert.rejects(createImage({ format: 'raw', filename: uri(join(dir, 'no-such-dir', 'x.raw')), size: 1 << 20 }), /No such file/);
  assert.equal(existsSync(join(dir, 'no-such-dir')), false);
});

test('truncate grows by its last byte; shrinking and preallocation are refused as qemu refuses them', { skip: unavailable ?? false }, async () => {
  const f = join(dir, 'c.raw');
  writeFileSync(f, Buffer.alloc(4096, 1));
  const node = await connect(f);
  await node.truncate(1 << 20);
  assert.equal(statSync(f).size, 1 << 20);
  await assert.rejects(node.truncate(4096), /ssh driver does not support shrinking files/);
  await assert.rejects(node.truncate(2 << 20, 'full'), /Unsupported preallocation mode 'full'/);
  await node.close();
});

test('a read-only node refuses writes; a missing remote file is qemu\'s error', { skip: unavailable ?? false }, async () => {
  const f = join(dir, 'd.raw');
  writeFileSync(f, Buffer.alloc(4096));
  const ro = await connect(f, { readOnly: true });
  await assert.rejects(ro.write(0, Buffer.alloc(1)), (e: BlockError) => e.code === 'read-only');
  await ro.close();
  await assert.rejects(connect(join(dir, 'nosuch.raw')), /failed to open remote file '.*nosuch\.raw': SFTP server: No such file/);
});

test('host_key_check fingerprints: right ones open, wrong ones give qemu\'s message', { skip: unavailable ?? false }, async () => {
  const f = join(dir, 'e.raw');
  writeFileSync(f, Buffer.alloc(4096));
  for (const [type, hash] of [['md5', peer.md5.match(/../g)!.join(':')], ['sha1', peer.sha1.toUpperCase()], ['sha256', peer.sha256]] as const) {
    const n = await connect(f, { hostKeyCheck: { mode: 'hash', type, hash } });
    await n.close();
  }
  const wrong = `00${peer.sha256.slice(2)}`;
  await assert.rejects(connect(f, { hostKeyCheck: { mode: 'hash', type: 'sha256', hash: wrong } }),
    new RegExp(`remote host ssh-ed25519 key fingerprint 'sha256:${peer.sha256}' does not match host_key_check 'sha256:${wrong}'`));
  // qemu (7.2) says the same for this one
  const qemu = (() => { try { sh('qemu-img', ['info', uri(f, peer.port, `sha256:${wrong}`)]); return ''; } catch (e) { return String((e as { stderr?: string }).stderr); } })();
  assert.match(qemu, /does not match host_key_check/);
});

test('authentication is the agent\'s: no agent, or an agent without the key, is refused as qemu refuses it', { skip: unavailable ?? false }, async () => {
  const f = join(dir, 'g.raw');
  writeFileSync(f, Buffer.alloc(4096));
  const emptyAgent = join(dir, 'empty-agent.sock');
  const saved = process.env.SSH_AUTH_SOCK;
  delete process.env.SSH_AUTH_SOCK;
  try {
    await assert.rejects(SshNode.connect({ host: '127.0.0.1', port: peer.port, user: peer.user, path: f, hostKeyCheck: { mode: 'none' }, timeoutMs: 10_000 }),
      /failed to authenticate using publickey authentication and the identities held by your ssh-agent/);
    await assert.rejects(connect(f, { agent: emptyAgent }), /failed to authenticate|agent/);
  } finally {
    process.env.SSH_AUTH_SOCK = saved;
  }
});

test('the fsync warning: once, naming host:port, only from a server without fsync@openssh.com', { skip: unavailable ?? false }, async () => {
  const f = join(dir, 'h.raw');
  writeFileSync(f, Buffer.alloc(4096));
  for (const [port, expected] of [[peer.noFsyncPort, [`ssh server 127.0.0.1:${peer.noFsyncPort} does not support fsync`]], [peer.port, []]] as const) {
    const { warnings } = await collectWarnings(async () => {
      const n = await connect(f, { port });
      await n.write(0, Buffer.alloc(512, 7));
      await n.flush();
      await n.flush();
      await n.close();
    });
    assert.deepEqual(warnings, expected);
  }
});

test('known_hosts: plain, [host]:port, hashed, wildcard and negated names; mismatch, other type, revoked', () => {
  const key = readFileSync(join(dir, 'peer', 'hostkey.pub'), 'utf8').split(/\s+/);
  const blob = Buffer.from(key[1]!, 'base64');
  assert.equal(keyType(blob), 'ssh-ed25519');
  const other = otherHostKey(join(dir, 'peer'));
  const kh = (text: string) => {
    const f = join(dir, `kh-${randomBytes(4).toString('hex')}`);
    writeFileSync(f, text);
    return [f];
  };
  const salt = randomBytes(20);
  const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[127.0.0.1]:2222').digest('base64')}`;
  checkKnownHosts(blob, '127.0.0.1', 2222, kh(`[127.0.0.1]:2222 ${key[0]} ${key[1]}\n`));
  checkKnownHosts(blob, '127.0.0.1', 22, kh(`# comment\n\nhost.example,127.0.0.1 ${key[0]} ${key[1]}\n`));
  checkKnownHosts(blob, '127.0.0.1', 2222, kh(`${hashed} ${key[0]} ${key[1]}\n`));
  checkKnownHosts(blob, '127.0.0.1', 2222, kh(`[127.0.0.*]:2222 ${key[0]} ${key[1]}\n`));
  assert.throws(() => checkKnownHosts(blob, '127.0.0.1', 2222, kh(`[127.0.0.*]:2222,![127.0.0.1]:2222 ${key[0]} ${key[1]}\n`)), /no host key was found in known_hosts/);
  assert.throws(() => checkKnownHosts(blob, '127.0.0.1', 2222, kh(`127.0.0.1 ${key[0]} ${key[1]}\n`)), /no host key was found/);
  assert.throws(() => checkKnownHosts(blob, '127.0.0.1', 2222, kh(`[127.0.0.1]:2222 ${other}\n`)), /host key \(ssh-ed25519 key with fingerprint SHA256:[A-Za-z0-9+/]+\) does not match the one in known_hosts; this may be a possible attack/);
  assert.throws(() => checkKnownHosts(blob, '127.0.0.1', 2222, kh(`[127.0.0.1]:2222 ssh-rsa AAAAB3NzaC1yc2E=\n`)), /host key for this server not found, another type exists/);
  assert.throws(() => checkKnownHosts(blob, '127.0.0.1', 2222, kh(`@revoked [127.0.0.1]:2222 ${key[0]} ${key[1]}\n[127.0.0.1]:2222 ${key[0]} ${key[1]}\n`)), /revoked/);
  assert.throws(() => checkKnownHosts(blob, '127.0.0.1', 2222, [join(dir, 'no-such-file')]), /no host key was found/);
  assert.equal(hostFieldMatches('|1|bad', 'x'), false);
});

test('fingerprint comparison is qemu\'s: colons anywhere, any case, nothing left over', () => {
  assert.ok(fingerprintMatches('abcd', 'abcd'));
  assert.ok(fingerprintMatches('abcd', 'AB:CD'));
  assert.ok(fingerprintMatches('abcd', '::ab::cd'));
  assert.ok(!fingerprintMatches('abcd', 'abcd:'));
  assert.ok(!fingerprintMatches('abcd', 'abce'));
  assert.ok(!fingerprintMatches('abcd', 'ab'));
  assert.ok(!fingerprintMatches('abcd', 'a:bcd'));
});

/** A hostile peer on a free loopback port; returns its port and a closer. */
async function hostile(onConnection: (s: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => { sockets.add(s); s.on('error', () => {}); onConnection(s); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

test('a server that never speaks times out with a clear error; one that is no SSH server is refused', async () => {
  const silent = await hostile(() => {});
  const garbage = await hostile((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  try {
    const t = Date.now();
    await assert.rejects(SshNode.connect({ host: '127.0.0.1', port: silent.port, user: 'root', path: '/x', hostKeyCheck: { mode: 'none' }, timeoutMs: 1500 }),
      (e: BlockError) => e instanceof BlockError && /127\.0\.0\.1/.test(e.message));
    assert.ok(Date.now() - t < 10_000, 'the timeout was not honoured');
    await assert.rejects(SshNode.connect({ host: '127.0.0.1', port: garbage.port, user: 'root', path: '/x', hostKeyCheck: { mode: 'none' }, timeoutMs: 5000 }),
      (e: BlockError) => e instanceof BlockError);
  } finally {
    await silent.close();
    await garbage.close();
  }
});
