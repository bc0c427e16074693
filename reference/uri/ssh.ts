/**
 * ssh://[USER@]HOST[:PORT]/PATH[?host_key_check=yes|no|md5:FP|sha1:FP|sha256:FP]
 * (block/ssh.c in 7.2). The user defaults to the local user, the port to 22,
 * host_key_check to yes (known_hosts). qemu-img shows ssh://USER@HOST:PORT/PATH
 * with the user filled in. Other query parameters are ignored, as QEMU does.
 *
 * QEMU compares a fingerprint's text only once connected (a malformed one is a
 * mismatch, reported after the handshake); the reference checks its syntax up
 * front: MD5 16, SHA-1 20, SHA-256 32 bytes as hex pairs, ':' allowed between.
 */
import { userInfo } from 'node:os';
import { parseUriExplained, queryParams } from './rfc3986.js';
import { str, syntaxError, type FilenameSyntax } from './syntax.js';
import type { QDict } from '../options/qdict.js';

export const SSH_DEFAULT_PORT = 22;
const FINGERPRINT_BYTES: Record<string, number> = { md5: 16, sha1: 20, sha256: 32 };

export function localUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'root';
  }
}

/** host_key_check text to the -blockdev host-key-check object; throws naming host_key_check. */
export function hostKeyCheck(text: string): QDict {
  if (text === 'no') return { mode: 'none' };
  if (text === 'yes') return { mode: 'known_hosts' };
  const m = /^(md5|sha1|sha256):(.*)$/s.exec(text);
  if (!m) {
    throw syntaxError(`unknown host_key_check setting (${text}); allowed: yes, no, md5:FINGERPRINT, sha1:FINGERPRINT, sha256:FINGERPRINT`, 'host_key_check', text);
  }
  const [, type, hash] = m as unknown as [string, string, string];
  const want = FINGERPRINT_BYTES[type]!;
  const hex = hash.replace(/:/g, '');
  if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length !== want * 2) {
    throw syntaxError(
      `host_key_check: '${text}' is not a ${type} fingerprint: expected ${want} bytes as hex pairs (':' between them allowed), e.g. ${type}:${'ab:'.repeat(want - 1)}ab`,
      'host_key_check',
      text,
    );
  }
  return { mode: 'hash', type, hash };
}

const CONFLICTING = ['user', 'host', 'port', 'path', 'host_key_check'];

export const sshSyntax: FilenameSyntax = {
  driver: 'ssh',
  prefixes: ['ssh'],
  strong: ['host', 'port', 'path', 'user', 'host_key_check', 'server.'],

  parse(filename, given) {
    for (const k of Object.keys(given)) {
      if (CONFLICTING.includes(k) || k.startsWith('server.')) throw syntaxError(`Option '${k}' cannot be used with a file name`, k);
    }
    const uri = parseUriExplained(filename);
    // qemu 7.2 drops an unparsable URI silently and then misses its server ("Parameter 'server' is missing")
    if ('reason' in uri) throw syntaxError(`Parameter 'server' is missing: '${filename}' is no valid URI (${uri.reason})`, uri.part === 'port' ? 'port' : 'server', filename);
    if (uri.scheme !== 'ssh') throw syntaxError("URI scheme must be 'ssh'", 'filename', filename);
    if (!uri.server) throw syntaxError('missing hostname in URI', 'host', filename);
    if (!uri.path) throw syntaxError('missing remote path in URI', 'path', filename);
    const out: QDict = {};
    if (uri.user) out.user = uri.user;
    out['server.host'] = uri.server;
    out['server.port'] = String(uri.port || SSH_DEFAULT_PORT);
    out.path = uri.path;
    for (const p of queryParams(uri.query)) {
      if (p.name !== 'host_key_check') continue;
      // 7.2 crashes on a bare "host_key_check" without '='
      if (p.value === null) throw syntaxError('host_key_check has no value; allowed: yes, no, md5:FINGERPRINT, sha1:FINGERPRINT, sha256:FINGERPRINT', 'host_key_check', filename);
      hostKeyCheck(p.value);
      out.host_key_check = p.value;
    }
    return out;
  },

  refresh(own) {
    if (['server.ipv4', 'server.ipv6', 'server.to', 'server.numeric'].some((k) => k in own)) return '';
    const host = str(own['server.host']) ?? str(own.host);
    const port = own['server.port'] ?? own.port ?? String(SSH_DEFAULT_PORT);
    const path = str(own.path);
    if (host === undefined || path === undefined) return '';
    const user = str(own.user) ?? localUser();
    const hkc = str(own.host_key_check);
    return `ssh://${user}@${host}:${String(port)}${path}${hkc !== undefined ? `?host_key_check=${hkc}` : ''}`;
  },

  /** ssh_process_legacy_options: host/port to server.*, host_key_check to host-key-check */
  canonical(own) {
    const out: QDict = { ...own };
    const host = str(own.host);
    if (own.port !== undefined && host === undefined && own['server.host'] === undefined) throw syntaxError('port may not be used without host', 'port');
    if (host !== undefined) {
      delete out.host;
      delete out.port;
      out['server.host'] = host;
      out['server.port'] = own.port === undefined ? String(SSH_DEFAULT_PORT) : String(own.port);
    }
    const hkc = str(own.host_key_check);
    if (hkc !== undefined) {
      delete out.host_key_check;
      for (const [k, v] of Object.entries(hostKeyCheck(hkc))) out[`host-key-check.${k}`] = v;
    } else if (own['host-key-check.mode'] === 'hash') {
      // the -blockdev spelling gets the same fingerprint check as the filename's
      const type = str(own['host-key-check.type']);
      const hash = str(own['host-key-check.hash']);
      if (type === undefined || hash === undefined) throw syntaxError("host-key-check mode hash needs 'type' and 'hash'", 'host-key-check.hash');
      hostKeyCheck(`${type}:${hash}`);
    }
    return out;
  },
};
