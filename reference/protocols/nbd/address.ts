/**
 * NBD filenames as qemu accepts them, to client options:
 *   nbd://HOST[:PORT]/EXPORT   nbd+tcp://...   nbd+unix:///EXPORT?socket=PATH
 *   nbd:HOST:PORT[:exportname=NAME]   nbd:unix:PATH[:exportname=NAME]
 * The default port is 10809 and the default export "" (qemu-nbd without -x).
 */
import { BlockError } from '../../errors.js';
import type { NbdClientOptions } from './client.js';

export const NBD_DEFAULT_PORT = 10809;

export function isNbdFilename(name: string): boolean {
  return /^nbd(\+tcp|\+unix)?:/.test(name);
}

function bad(name: string, why: string): BlockError {
  return new BlockError('invalid-option', `invalid NBD filename '${name}': ${why}`, { option: 'filename', value: name });
}

function port(name: string, text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw bad(name, `bad port '${text}'`);
  return Number(text);
}

export function parseNbdFilename(name: string): Pick<NbdClientOptions, 'server' | 'export'> {
  const uri = /^nbd(\+tcp|\+unix)?:\/\/([^/?]*)(\/[^?]*)?(\?.*)?$/.exec(name);
  if (uri) {
    const [, transport, authority, path = '', query = ''] = uri;
    const exp = decodeURIComponent(path.replace(/^\//, ''));
    const params = new URLSearchParams(query.slice(1));
    if (transport === '+unix') {
      if (authority) throw bad(name, 'a unix socket URI takes no host');
      const socket = params.get('socket');
      if (!socket) throw bad(name, 'missing socket parameter');
      for (const k of params.keys()) if (k !== 'socket') throw bad(name, `unexpected parameter '${k}'`);
      return { server: { type: 'unix', path: socket }, export: exp };
    }
    if (query) throw bad(name, 'a TCP URI takes no parameters');
    const hp = /^(\[[^\]]+\]|[^:]*)(?::(.*))?$/.exec(authority)!;
    const host = hp[1].replace(/^\[|\]$/g, '') || 'localhost';
    return { server: { type: 'inet', host, port: hp[2] === undefined ? NBD_DEFAULT_PORT : port(name, hp[2]) }, export: exp };
  }
  if (!name.startsWith('nbd:') || name.startsWith('nbd://')) throw bad(name, 'not an NBD filename');
  const rest = name.slice(4);
  const [addr, exportPart] = splitExport(rest);
  const exp = exportPart ?? '';
  if (addr.startsWith('unix:')) {
    const path = addr.slice(5);
    if (!path) throw bad(name, 'missing socket path');
    return { server: { type: 'unix', path }, export: exp };
  }
  const m = /^(\[[^\]]+\]|[^:]+):([^:]+)$/.exec(addr);
  if (!m) throw bad(name, 'expected nbd:HOST:PORT or nbd:unix:PATH');
  return { server: { type: 'inet', host: m[1].replace(/^\[|\]$/g, ''), port: port(name, m[2]) }, export: exp };
}

function splitExport(rest: string): [string, string | undefined] {
  const at = rest.indexOf(':exportname=');
  return at < 0 ? [rest, undefined] : [rest.slice(0, at), rest.slice(at + ':exportname='.length)];
}
