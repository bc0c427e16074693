/**
 * NBD filenames (block/nbd.c in 7.2):
 *   nbd://HOST[:PORT][/EXPORT]   nbd+tcp://...   nbd+unix:///[EXPORT]?socket=PATH
 *   nbd:HOST:PORT[:exportname=EXPORT]   nbd:unix:PATH[:exportname=EXPORT]
 * Port 10809 by default (also for an explicit port 0, which the URI parser
 * cannot tell from none). The shown name is the URI form with the port filled
 * in: the legacy nbd:unix:P becomes nbd+unix://?socket=P.
 */
import { parseUriExplained, queryParams } from './rfc3986.js';
import { str, syntaxError, type FilenameSyntax } from './syntax.js';
import type { QDict } from '../options/qdict.js';

export const NBD_DEFAULT_PORT = 10809;
const EN_OPTSTR = ':exportname=';

function badUrl(filename: string, why: string, option: string) {
  return syntaxError(`No valid URL specified (${why})`, option, filename);
}

function parseNbdUri(filename: string): QDict {
  const uri = parseUriExplained(filename);
  if ('reason' in uri) throw badUrl(filename, uri.reason, uri.part === 'port' ? 'port' : 'filename');
  let isUnix: boolean;
  if (uri.scheme === 'nbd' || uri.scheme === 'nbd+tcp') isUnix = false;
  else if (uri.scheme === 'nbd+unix') isUnix = true;
  else throw badUrl(filename, `transport '${uri.scheme}' is none of nbd, nbd+tcp, nbd+unix`, 'transport');
  const out: QDict = {};
  let p = uri.path ?? '';
  if (p.startsWith('/')) p = p.slice(1);
  if (p) out.export = p;
  const qp = queryParams(uri.query);
  if (qp.length > 1) throw badUrl(filename, `one query parameter at most, not ${qp.length}`, 'socket');
  if (isUnix) {
    if (qp.length === 0) throw badUrl(filename, 'nbd+unix needs ?socket=PATH', 'socket');
    if (uri.server !== null || uri.port) throw badUrl(filename, 'nbd+unix takes no host or port', 'server');
    if (qp[0]!.name !== 'socket') throw badUrl(filename, `unknown parameter '${qp[0]!.name}'; nbd+unix takes socket=PATH`, 'socket');
    // qemu 7.2 dereferences the missing value and crashes; refuse it instead
    if (qp[0]!.value === null) throw badUrl(filename, 'socket has no value', 'socket');
    out['server.type'] = 'unix';
    out['server.path'] = qp[0]!.value;
  } else {
    if (qp.length) throw badUrl(filename, `a TCP URI takes no query parameters ('${qp[0]!.name}')`, 'filename');
    if (uri.server === null) throw badUrl(filename, 'missing host', 'host');
    const host = uri.server.startsWith('[') ? uri.server.slice(1, -1) : uri.server;
    out['server.type'] = 'inet';
    out['server.host'] = host;
    out['server.port'] = String(uri.port || NBD_DEFAULT_PORT);
  }
  return out;
}

/** The InetSocketAddress text form HOST:PORT[,to=N][,ipv4[=on|off]][,ipv6...] (util/qemu-sockets.c inet_parse). */
export function inetParse(text: string): { host: string; port: string; to?: number; ipv4?: boolean; ipv6?: boolean; keepAlive?: boolean } {
  let host: string;
  let m: RegExpExecArray | null;
  let pos: number;
  if (text.startsWith(':')) {
    m = /^:([^,]{1,32})/.exec(text);
    if (!m) throw syntaxError(`error parsing port in address '${text}'`, 'port', text);
    host = '';
  } else if (text.startsWith('[')) {
    m = /^\[([^\]]{1,64})\]:([^,]{1,32})/.exec(text);
    if (!m) throw syntaxError(`error parsing IPv6 address '${text}'`, 'host', text);
    host = m[1]!;
  } else {
    m = /^([^:]{1,64}):([^,]{1,32})/.exec(text);
    if (!m) throw syntaxError(`error parsing address '${text}' (expected HOST:PORT)`, 'host', text);
    host = m[1]!;
  }
  const port = text.startsWith(':') ? m[1]! : m[2]!;
  pos = m[0].length;
  const opts = text.slice(pos);
  const out: ReturnType<typeof inetParse> = { host, port };
  const to = opts.indexOf(',to=');
  if (to >= 0) {
    const t = /^([+-]?[0-9]+)(?=$|,)/.exec(opts.slice(to + 4));
    if (!t) throw syntaxError('error parsing to= argument', 'to', text);
    out.to = Number(t[1]);
  }
  const flag = (name: string): boolean | undefined => {
    const at = opts.indexOf(`,${name}`);
    if (at < 0) return undefined;
    const rest = opts.slice(at + name.length + 1);
    const comma = rest.indexOf(',');
    if (comma >= 0 && rest[comma + 1] === ',') throw syntaxError(`error parsing '${name}' flag '${rest}'`, name, text);
    const v = comma >= 0 ? rest.slice(0, comma) : rest;
    if (v === '' || v === '=on') return true;
    if (v === '=off') return false;
    throw syntaxError(`error parsing '${name}' flag '${rest}'`, name, text);
  };
  out.ipv4 = flag('ipv4');
  out.ipv6 = flag('ipv6');
  out.keepAlive = flag('keep-alive');
  return out;
}

const CONFLICTING = ['host', 'port', 'path', 'export'];

export const nbdSyntax: FilenameSyntax = {
  driver: 'nbd',
  prefixes: ['nbd', 'nbd+tcp', 'nbd+unix'],
  strong: ['path', 'host', 'port', 'export', 'tls-creds', 'tls-hostname', 'server.'],

  parse(filename, given) {
    for (const k of Object.keys(given)) {
      if (CONFLICTING.includes(k) || k.startsWith('server.')) throw syntaxError(`Option '${k}' cannot be used with a file name`, k);
    }
    if (filename.includes('://')) return parseNbdUri(filename);
    const out: QDict = {};
    let file = filename;
    const en = file.indexOf(EN_OPTSTR);
    if (en >= 0) {
      // qemu 7.2 ignores the whole filename when the export name is empty ("NBD server address missing" follows)
      if (en + EN_OPTSTR.length === file.length) return out;
      out.export = file.slice(en + EN_OPTSTR.length);
      file = file.slice(0, en);
    }
    if (!file.startsWith('nbd:')) throw syntaxError("File name string for NBD must start with 'nbd:'", 'filename', filename);
    const spec = file.slice(4);
    if (!spec) return out;
    if (spec.startsWith('unix:')) {
      out['server.type'] = 'unix';
      out['server.path'] = spec.slice(5);
    } else {
      const a = inetParse(spec);
      out['server.type'] = 'inet';
      out['server.host'] = a.host;
      out['server.port'] = a.port;
    }
    return out;
  },

  refresh(own) {
    const type = str(own['server.type']);
    const exp = str(own.export);
    if (type === 'unix') {
      const path = str(own['server.path']);
      if (path === undefined) return '';
      return exp !== undefined ? `nbd+unix:///${exp}?socket=${path}` : `nbd+unix://?socket=${path}`;
    }
    if (type === 'inet') {
      if (['server.ipv4', 'server.ipv6', 'server.to'].some((k) => k in own)) return '';
      const host = str(own['server.host']);
      const port = str(own['server.port']) ?? (typeof own['server.port'] === 'number' ? String(own['server.port']) : undefined);
      if (host === undefined || port === undefined) return '';
      return exp !== undefined ? `nbd://${host}:${port}/${exp}` : `nbd://${host}:${port}`;
    }
    return '';
  },

  /** nbd_process_legacy_socket_options: host/port/path to server.* */
  canonical(own) {
    const out: QDict = { ...own };
    const path = str(own.path);
    const host = str(own.host);
    const port = own.port;
    if (path === undefined && host === undefined && port === undefined) return out;
    if (Object.keys(own).some((k) => k.startsWith('server.'))) throw syntaxError("Cannot use 'server' and path/host/port at the same time", 'server');
    if (path !== undefined && host !== undefined) throw syntaxError('path and host may not be used at the same time', 'path');
    delete out.path;
    delete out.host;
    delete out.port;
    if (path !== undefined) {
      if (port !== undefined) throw syntaxError('port may not be used without host', 'port');
      out['server.type'] = 'unix';
      out['server.path'] = path;
    } else if (host !== undefined) {
      out['server.type'] = 'inet';
      out['server.host'] = host;
      out['server.port'] = port === undefined ? String(NBD_DEFAULT_PORT) : String(port);
    }
    // a port alone gives no address at all, as in 7.2 ("NBD server address missing" follows)
    return out;
  },
};
