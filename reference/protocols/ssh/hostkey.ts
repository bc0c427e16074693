/**
 * Host key checks of QEMU's ssh driver (block/ssh.c over libssh, 7.2):
 *
 * - `no`: any key is accepted;
 * - `md5:HEX`, `sha1:HEX`, `sha256:HEX`: the hash of the server's public key
 *   blob (the key as it travels in the key exchange) must equal the given hex
 *   pairs; ':' may stand anywhere between them, case does not matter;
 * - `yes` (the default): the key must be in known_hosts, which libssh reads
 *   from the home directory of the account (the passwd entry, not $HOME) and
 *   from /etc/ssh/ssh_known_hosts.
 *
 * The messages are qemu-img's, word for word where the machine showed them.
 */
import { createHash, createHmac } from 'node:crypto';
import * as fs from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { BlockError } from '../../errors.js';

export type HostKeyCheck =
  | { mode: 'none' }
  | { mode: 'known_hosts' }
  | { mode: 'hash'; type: 'md5' | 'sha1' | 'sha256'; hash: string };

/** The algorithm name at the start of an SSH public key blob ("ssh-ed25519", "ssh-rsa", ...). */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  if (n === 0 || n > 64 || 4 + n > blob.length) return 'unknown';
  return blob.subarray(4, 4 + n).toString('latin1').replace(/[^\x21-\x7e]/g, '?');
}

export function fingerprintHex(blob: Buffer, type: 'md5' | 'sha1' | 'sha256'): string {
  return createHash(type).update(blob).digest('hex');
}

/**
 * qemu's comparison: walk the expected bytes, skipping ':' before each hex pair;
 * anything left over after the last byte is a mismatch too.
 */
export function fingerprintMatches(hex: string, given: string): boolean {
  const want = Buffer.from(hex, 'hex');
  let at = 0;
  for (const byte of want) {
    while (given[at] === ':') at++;
    const pair = given.slice(at, at + 2);
    if (!/^[0-9a-fA-F]{2}$/.test(pair) || parseInt(pair, 16) !== byte) return false;
    at += 2;
  }
  return at === given.length;
}

/** The known_hosts files libssh consults, in order. */
export function knownHostsFiles(): string[] {
  let home: string | undefined;
  try {
    home = userInfo().homedir;
  } catch {
    home = process.env.HOME;
  }
  return [...(home ? [join(home, '.ssh', 'known_hosts')] : []), '/etc/ssh/ssh_known_hosts'];
}

/** known_hosts names a server on the default port by its host, any other as [host]:port. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(text);
}

/** One host field (comma-separated patterns, `!` negates, or one hashed `|1|salt|hash` name). */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  let hit = false;
  for (const p of field.split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) hit = true;
  }
  return hit;
}

/** At most this much of one known_hosts file is read (a hostile or runaway file cannot exhaust memory). */
const MAX_KNOWN_HOSTS = 4 << 20;

export function checkKnownHosts(blob: Buffer, host: string, port: number, files = knownHostsFiles()): void {
  const name = knownHostsName(host, port);
  const type = keyType(blob);
  const mine = blob.toString('base64');
  let sameTypeOther = false;
  let otherType = false;
  for (const file of files) {
    let text: string;
    try {
      const fd = fs.openSync(file, 'r');
      try {
        const buf = Buffer.alloc(Math.min(fs.fstatSync(fd).size, MAX_KNOWN_HOSTS));
        const n = fs.readSync(fd, buf, 0, buf.length, 0);
        text = buf.subarray(0, n).toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      continue; // a missing or unreadable file holds no keys
    }
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const f = line.split(/\s+/);
      let marker = '';
      if (f[0]!.startsWith('@')) marker = f.shift()!;
      if (f.length < 3 || marker === '@cert-authority') continue;
      if (!hostFieldMatches(f[0]!, name)) continue;
      if (marker === '@revoked') {
        if (f[2] === mine) throw new BlockError('io', 'host key for this server has been revoked in known_hosts', { option: 'host_key_check' });
        continue;
      }
      if (f[1] !== type) {
        otherType = true;
        continue;
      }
      if (f[2] === mine) return;
      sameTypeOther = true;
    }
  }
  if (sameTypeOther) {
    const fp = createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
    throw new BlockError('io', `host key (${type} key with fingerprint SHA256:${fp}) does not match the one in known_hosts; this may be a possible attack`, { option: 'host_key_check' });
  }
  if (otherType) throw new BlockError('io', 'host key for this server not found, another type exists', { option: 'host_key_check' });
  throw new BlockError('io', 'no host key was found in known_hosts', { option: 'host_key_check' });
}

/** Runs the check the options ask for; throws the BlockError qemu-img would report. */
export function verifyHostKey(check: HostKeyCheck, blob: Buffer, host: string, port: number): void {
  if (check.mode === 'none') return;
  if (check.mode === 'known_hosts') return checkKnownHosts(blob, host, port);
  const hex = fingerprintHex(blob, check.type);
  if (!fingerprintMatches(hex, check.hash)) {
    throw new BlockError(
      'io',
      `remote host ${keyType(blob)} key fingerprint '${check.type}:${hex}' does not match host_key_check '${check.type}:${check.hash}'`,
      { option: 'host_key_check', value: `${check.type}:${check.hash}` },
    );
  }
}
