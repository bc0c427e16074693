/**
 * GlusterFS: gluster[+tcp|+unix|+rdma]://[HOST[:PORT]]/VOLUME/PATH[?socket=SOCKET]
 * or the json:/dotted form with a `server` array of {type: inet|tcp|unix, ...}.
 * QEMU's driver keeps the URI as the `filename` option and parses it when it
 * opens (qemu_gluster_parse_uri), so qemu-img shows the URI as typed; here the
 * same parse gives the -blockdev options (volume, path, server[0]). Host
 * "localhost" and port 24007 when absent; +rdma falls back to tcp, as QEMU warns.
 */
import { parseUriExplained, queryParams } from './rfc3986.js';
import { str, syntaxError, type FilenameSyntax } from './syntax.js';
import type { QDict, QValue } from '../options/qdict.js';

export const GLUSTER_DEFAULT_PORT = 24007;
const USAGE = 'Usage: file=gluster[+transport]://[host[:port]]volume/path[?socket=...][,file.debug=N][,file.logfile=/path/filename.log]';

function bad(filename: string, why: string, option: string) {
  return syntaxError(`invalid URI ${filename} (${why})\n${USAGE}`, option, filename);
}

/** qemu_gluster_parse_uri: the URI to volume, path and one server. */
export function parseGlusterUri(filename: string): QDict {
  const uri = parseUriExplained(filename);
  if ('reason' in uri) throw bad(filename, uri.reason, uri.part === 'port' ? 'port' : 'filename');
  let type: 'inet' | 'unix';
  let warning: string | undefined;
  if (uri.scheme === 'gluster' || uri.scheme === 'gluster+tcp') type = 'inet';
  else if (uri.scheme === 'gluster+unix') type = 'unix';
  else if (uri.scheme === 'gluster+rdma') {
    type = 'inet';
    warning = 'rdma feature is not supported, falling back to tcp';
  } else throw bad(filename, `transport '${uri.scheme}' is none of tcp, unix, rdma`, 'transport');
  const path = uri.path;
  if (path === null) throw bad(filename, 'missing /volume/path', 'volume');
  const rest = path.replace(/^\/+/, '');
  const cut = rest.indexOf('/');
  if (cut < 0) throw bad(filename, rest ? `'${rest}' names a volume but no image path in it` : 'missing volume', rest ? 'path' : 'volume');
  const volume = rest.slice(0, cut);
  const image = rest.slice(cut).replace(/^\/+/, '');
  if (!image) throw bad(filename, `volume '${volume}' but no image path`, 'path');
  const qp = queryParams(uri.query);
  if (qp.length > 1) throw bad(filename, `one query parameter at most, not ${qp.length}`, 'socket');
  const out: QDict = { volume, path: image };
  if (type === 'unix') {
    if (qp.length === 0) throw bad(filename, 'gluster+unix needs ?socket=PATH', 'socket');
    if (uri.server !== null || uri.port) throw bad(filename, 'gluster+unix takes no host or port', 'server');
    if (qp[0]!.name !== 'socket') throw bad(filename, `unknown parameter '${qp[0]!.name}'; gluster+unix takes socket=PATH`, 'socket');
    if (qp[0]!.value === null) throw bad(filename, 'socket has no value', 'socket');
    out['server.0.type'] = 'unix';
    out['server.0.path'] = qp[0]!.value;
  } else {
    if (qp.length) throw bad(filename, `a ${uri.scheme} URI takes no query parameters ('${qp[0]!.name}')`, 'socket');
    out['server.0.type'] = 'inet';
    out['server.0.host'] = uri.server ?? 'localhost';
    out['server.0.port'] = String(uri.port || GLUSTER_DEFAULT_PORT);
  }
  if (warning) Object.defineProperty(out, 'warning', { value: warning, enumerable: false });
  return out;
}

/** The json:/dotted server list as QEMU reads it (qemu_gluster_parse_json): "tcp" is the old name of "inet". */
export function checkGlusterServers(own: QDict): void {
  const servers = Object.keys(own).filter((k) => /^server\.\d+\.type$/.test(k));
  if (servers.length === 0) throw syntaxError(`Parameter 'server' is missing\n${USAGE.replace('file=gluster', '-drive file=gluster')}`, 'server');
  for (const k of servers) {
    const idx = k.split('.')[1]!;
    const t = own[k];
    if (t !== 'inet' && t !== 'tcp' && t !== 'unix') {
      throw syntaxError(`Parameter 'type' may be 'inet' or 'unix'\nhint: check in 'server' array index '${idx}'`, `server.${idx}.type`, t);
    }
    const pre = `server.${idx}.`;
    if (t === 'unix') {
      if (own[`${pre}path`] !== undefined && own[`${pre}socket`] !== undefined) {
        throw syntaxError(`Conflicting parameters 'path' and 'socket'\nhint: check in 'server' array index '${idx}'`, `${pre}socket`);
      }
      if (own[`${pre}path`] === undefined && own[`${pre}socket`] === undefined) {
        throw syntaxError(`Parameter 'path' is missing\nhint: check in 'server' array index '${idx}'`, `${pre}path`);
      }
    } else {
      if (own[`${pre}host`] === undefined) throw syntaxError(`Parameter 'host' is missing\nhint: check in 'server' array index '${idx}'`, `${pre}host`);
      const port = own[`${pre}port`];
      if (port !== undefined && !/^[0-9]+$/.test(String(port))) {
        throw syntaxError(`'${String(port)}' is not a valid port number\nhint: check in 'server' array index '${idx}'`, `${pre}port`, port);
      }
    }
  }
}

export const glusterSyntax: FilenameSyntax = {
  driver: 'gluster',
  prefixes: ['gluster', 'gluster+tcp', 'gluster+unix', 'gluster+rdma'],
  keepsFilename: true,
  strong: ['volume', 'path', 'type', 'server.', 'host', 'port', 'to', 'ipv4', 'ipv6', 'socket'],
  // the driver parses its filename at open; check it now so a bad URI is refused before any connection
  parse(filename) {
    const parsed = parseGlusterUri(filename);
    // nothing is added to the options (the driver keeps its filename), but rdma's warning is passed on
    const none: QDict = {};
    const warning = (parsed as { warning?: string }).warning;
    if (warning) Object.defineProperty(none, 'warning', { value: warning, enumerable: false });
    return none;
  },
  canonical(own) {
    const out: QDict = {};
    const fn = str(own.filename);
    for (const [k, v] of Object.entries(own)) if (k !== 'filename') out[k] = v;
    if (fn !== undefined) Object.assign(out, parseGlusterUri(fn));
    else checkGlusterServers(own);
    // old names in the server list: tcp -> inet, socket -> path
    for (const k of Object.keys(out)) {
      const m = /^server\.(\d+)\.(type|socket)$/.exec(k);
      if (!m) continue;
      if (m[2] === 'type' && out[k] === 'tcp') out[k] = 'inet';
      if (m[2] === 'socket') {
        out[`server.${m[1]}.path`] = out[k] as QValue;
        delete out[k];
      }
    }
    return out;
  },
};
