/**
 * Sheepdog (removed in QEMU 6.0; the grammar of 5.2's block/sheepdog.c):
 *   sheepdog[+tcp]://[HOST:PORT]/VDI[#SNAPID|#TAG]   sheepdog+unix:///VDI?socket=PATH
 *   sheepdog:[HOST:PORT:]VDI[:SNAPID|:TAG]           (the older syntax)
 * Host "localhost" and port 7000 when absent. The options parse; opening says
 * the driver is gone, as QEMU 6.0 and later ("Unknown protocol 'sheepdog'").
 */
import { parseUriExplained, queryParams } from './rfc3986.js';
import { syntaxError, type FilenameSyntax } from './syntax.js';
import type { QDict } from '../options/qdict.js';

export const SHEEPDOG_DEFAULT_PORT = 7000;
const MAX_VDI_LEN = 256;
const MAX_TAG_LEN = 256;

function parseSheepdogUri(filename: string): QDict {
  const uri = parseUriExplained(filename);
  if ('reason' in uri) throw syntaxError(`invalid URI '${filename}' (${uri.reason})`, uri.part === 'port' ? 'port' : 'filename', filename);
  let isUnix: boolean;
  if (uri.scheme === 'sheepdog' || uri.scheme === 'sheepdog+tcp') isUnix = false;
  else if (uri.scheme === 'sheepdog+unix') isUnix = true;
  else throw syntaxError("URI scheme must be 'sheepdog', 'sheepdog+tcp', or 'sheepdog+unix'", 'transport', filename);
  if (uri.path === null || uri.path === '/') throw syntaxError('missing file path in URI', 'vdi', filename);
  const vdi = uri.path.slice(1);
  if (Buffer.byteLength(vdi) >= MAX_VDI_LEN) throw syntaxError('VDI name is too long', 'vdi', vdi);
  const qp = queryParams(uri.query);
  const out: QDict = {};
  if (isUnix) {
    if (uri.server !== null || uri.port) throw syntaxError(`URI scheme ${uri.scheme} doesn't accept a server address`, 'server', filename);
    if (!qp.length) throw syntaxError(`URI scheme ${uri.scheme} requires query parameter 'socket'`, 'socket', filename);
    if (qp.length !== 1 || qp[0]!.name !== 'socket' || qp[0]!.value === null) throw syntaxError('unexpected query parameters', 'socket', filename);
    out['server.type'] = 'unix';
    out['server.path'] = qp[0]!.value;
  } else {
    if (qp.length) throw syntaxError('unexpected query parameters', 'filename', filename);
    out['server.type'] = 'inet';
    out['server.host'] = uri.server ?? 'localhost';
    out['server.port'] = String(uri.port || SHEEPDOG_DEFAULT_PORT);
  }
  out.vdi = vdi;
  let tag = '';
  if (uri.fragment !== null) {
    const f = uri.fragment;
    if (/^[0-9]+$/.test(f)) {
      if (Number(f) > 0xffffffff) throw syntaxError(`'${f}' is not a valid snapshot ID`, 'snap-id', f);
      if (Number(f) !== 0) out['snap-id'] = String(Number(f));
    } else {
      if (Buffer.byteLength(f) >= MAX_TAG_LEN) throw syntaxError(`'${f}' is not a valid snapshot ID`, 'tag', f);
      tag = f;
    }
  }
  out.tag = tag;
  return out;
}

/** parse_vdiname: the old colon syntax, rewritten to a URI as 5.2 did. */
function parseVdiname(filename: string): QDict {
  const body = filename.startsWith('sheepdog:') ? filename.slice(9) : filename;
  const seps = [...body].filter((c) => c === ':').length;
  let hostSpec = '';
  let rest = body;
  if (seps >= 2) {
    const first = body.indexOf(':');
    const second = body.indexOf(':', first + 1);
    hostSpec = body.slice(0, second);
    rest = body.slice(second + 1);
  }
  const c = rest.indexOf(':');
  const vdiSpec = c >= 0 ? `${rest.slice(0, c)}#${rest.slice(c + 1)}` : rest;
  return parseSheepdogUri(`sheepdog://${hostSpec}/${vdiSpec}`);
}

export const sheepdogSyntax: FilenameSyntax = {
  driver: 'sheepdog',
  prefixes: ['sheepdog', 'sheepdog+tcp', 'sheepdog+unix'],
  strong: ['server.', 'vdi', 'snap-id', 'tag'],
  parse(filename) {
    return filename.includes('://') ? parseSheepdogUri(filename) : parseVdiname(filename);
  },
};
