/**
 * The ssh node's -blockdev options (server.host, server.port, path, user,
 * host-key-check) to a connection, with QEMU's defaults: port 22, the local
 * user, host-key-check known_hosts.
 */
import { BlockError } from '../../errors.js';
import { localUser, SSH_DEFAULT_PORT } from '../../uri/ssh.js';
import type { HostKeyCheck } from './hostkey.js';
import { SshNode } from './client.js';

export function hostKeyCheckOf(o: Record<string, unknown>): HostKeyCheck {
  const hkc = o['host-key-check'] as Record<string, unknown> | undefined;
  if (!hkc || hkc.mode === undefined || hkc.mode === 'known_hosts') return { mode: 'known_hosts' };
  if (hkc.mode === 'none') return { mode: 'none' };
  if (hkc.mode === 'hash') {
    const type = String(hkc.type);
    if (type !== 'md5' && type !== 'sha1' && type !== 'sha256') {
      throw new BlockError('invalid-option', `host-key-check.type: '${type}' is none of md5, sha1, sha256`, { option: 'host-key-check.type', value: type });
    }
    if (typeof hkc.hash !== 'string') throw new BlockError('invalid-option', "host-key-check mode hash needs 'hash'", { option: 'host-key-check.hash' });
    return { mode: 'hash', type, hash: hkc.hash };
  }
  throw new BlockError('invalid-option', `host-key-check.mode: '${String(hkc.mode)}' is none of none, hash, known_hosts`, { option: 'host-key-check.mode', value: String(hkc.mode) });
}

export function sshOptions(o: Record<string, unknown>): { host: string; port: number; user: string; path: string; hostKeyCheck: HostKeyCheck } {
  const server = (o.server ?? {}) as Record<string, unknown>;
  if (typeof server.host !== 'string' || !server.host) throw new BlockError('invalid-option', "Parameter 'server.host' is missing", { option: 'server.host' });
  const portText = server.port === undefined ? String(SSH_DEFAULT_PORT) : String(server.port);
  if (!/^[0-9]+$/.test(portText) || Number(portText) > 65535) {
    throw new BlockError('invalid-option', `address resolution failed for ${server.host}:${portText}: the reference takes numeric ports from 0 to 65535 only`, { option: 'server.port', value: portText });
  }
  if (typeof o.path !== 'string' || !o.path) throw new BlockError('invalid-option', "Parameter 'path' is missing", { option: 'path' });
  return {
    host: server.host,
    port: Number(portText),
    user: typeof o.user === 'string' ? o.user : localUser(),
    path: o.path,
    hostKeyCheck: hostKeyCheckOf(o),
  };
}

export function openSshSpec(o: Record<string, unknown>, readOnly: boolean, displayName: string, create = false): Promise<SshNode> {
  return SshNode.connect({ ...sshOptions(o), readOnly, create, displayName });
}

/**
 * qemu-img create over ssh: the image is built in a temporary remote file beside
 * the target and renamed into place once complete, so a failure leaves neither a
 * half-written image nor a clobbered one.
 */
export async function createOverSsh(o: Record<string, unknown>, build: (file: SshNode) => Promise<void>): Promise<void> {
  const opts = sshOptions(o);
  const dir = opts.path.slice(0, opts.path.lastIndexOf('/') + 1);
  const base = opts.path.slice(opts.path.lastIndexOf('/') + 1);
  const tmp = `${dir}.${base}.qbc-${process.pid}-${Date.now()}.tmp`;
  const node = await SshNode.connect({ ...opts, path: tmp, readOnly: false, create: true });
  try {
    await build(node);
    await node.flush();
    await node.renameTo(opts.path);
  } catch (e) {
    await node.remove().catch(() => undefined);
    await node.close().catch(() => undefined);
    throw e;
  }
  await node.close();
}
