/**
 * URIs as QEMU 7.2's util/uri.c reads them (RFC 3986, the libxml2 parser QEMU
 * carries): scheme, optional user info, server, port, path, raw query and
 * fragment. The server, user and path come back percent-decoded; the query
 * stays raw until queryParams splits it. A port above 65535, an empty port
 * after ':', a stray character anywhere (space, '{', a bare '%') makes the whole
 * URI invalid, which every URI-based driver reports in its own words.
 */

export interface Uri {
  scheme: string;
  /** null when there is no user info before '@' */
  user: string | null;
  /** null when the authority's host is empty; IPv6 literals keep their brackets */
  server: string | null;
  /** 0 when absent (and when written as 0: QEMU cannot tell them apart) */
  port: number;
  /** null when empty */
  path: string | null;
  /** raw, null when there is no '?' */
  query: string | null;
  fragment: string | null;
}

const ALPHA = /[A-Za-z]/;
const DIGIT = /[0-9]/;
const HEX = /[0-9A-Fa-f]/;
const UNRESERVED = /[A-Za-z0-9\-._~]/;
const SUB_DELIM = /[!$&'()*+,;=]/;

class Cursor {
  constructor(
    readonly s: string,
    public i = 0,
  ) {}
  ch(): string {
    return this.s[this.i] ?? '';
  }
  /** length of a pct-encoded triplet at the cursor, else 0 */
  pct(): number {
    return this.s[this.i] === '%' && HEX.test(this.s[this.i + 1] ?? '') && HEX.test(this.s[this.i + 2] ?? '') ? 3 : 0;
  }
  /** unreserved / pct-encoded / sub-delims, plus the extra characters given */
  take(extra: string): boolean {
    const c = this.ch();
    if (c === '') return false;
    const p = this.pct();
    if (p) {
      this.i += p;
      return true;
    }
    if (UNRESERVED.test(c) || SUB_DELIM.test(c) || extra.includes(c)) {
      this.i++;
      return true;
    }
    return false;
  }
}

/** uri_string_unescape: %XX to the byte, the bytes read as UTF-8. */
export function unescape(s: string): string {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%' && HEX.test(s[i + 1] ?? '') && HEX.test(s[i + 2] ?? '')) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      for (const b of Buffer.from(s[i]!, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

export interface UriError {
  /** why, in a few words */
  reason: string;
  /** the URI part at fault: scheme, port, server, path, query */
  part: string;
}

/** uri_parse for an absolute URI; null when it is not one (the relative-reference fallback can never match a "scheme:" string). */
export function parseUri(text: string): Uri | null {
  const r = parseUriExplained(text);
  return 'reason' in r ? null : r;
}

/** parseUri, or the reason the text is no URI. */
export function parseUriExplained(text: string): Uri | UriError {
  const cur = new Cursor(text);
  const fail = (part: string, reason: string): UriError => ({ part, reason });
  if (!ALPHA.test(cur.ch())) return fail('scheme', 'a URI starts with a scheme of letters');
  while (cur.ch() !== '' && (ALPHA.test(cur.ch()) || DIGIT.test(cur.ch()) || '+-.'.includes(cur.ch()))) cur.i++;
  const scheme = text.slice(0, cur.i);
  if (cur.ch() !== ':') return fail('scheme', `the scheme must be followed by ':'`);
  cur.i++;
  const uri: Uri = { scheme, user: null, server: null, port: 0, path: null, query: null, fragment: null };
  if (text.startsWith('//', cur.i)) {
    cur.i += 2;
    const bad = authority(cur, uri);
    if (bad) return bad;
    const start = cur.i;
    while (cur.ch() === '/') {
      cur.i++;
      while (cur.take(':@'));
    }
    uri.path = cur.i > start ? unescape(text.slice(start, cur.i)) : null;
  } else if (cur.ch() === '/' || (cur.ch() !== '' && (cur.pct() || UNRESERVED.test(cur.ch()) || SUB_DELIM.test(cur.ch()) || ':@'.includes(cur.ch())))) {
    // path-absolute or path-rootless: segments of pchars
    const start = cur.i;
    if (cur.ch() === '/') {
      cur.i++;
      if (cur.ch() === '/') return fail('path', 'a path cannot start with //'); // "//" would have been an authority
    }
    for (;;) {
      while (cur.take(':@'));
      if (cur.ch() !== '/') break;
      cur.i++;
    }
    uri.path = cur.i > start ? unescape(text.slice(start, cur.i)) : null;
  }
  if (cur.ch() === '?') {
    cur.i++;
    const start = cur.i;
    while (cur.take(':@/?'));
    uri.query = text.slice(start, cur.i);
  }
  if (cur.ch() === '#') {
    cur.i++;
    const start = cur.i;
    while (cur.take(':@/?'));
    uri.fragment = text.slice(start, cur.i);
  }
  if (cur.i === text.length) return uri;
  const c = text[cur.i]!;
  const part = uri.fragment !== null ? 'fragment' : uri.query !== null ? 'query' : uri.path !== null || cur.i > 0 ? 'path' : 'server';
  return fail(part, c === '%' ? `'%' at offset ${cur.i} does not start a %XX escape` : `character '${c}' at offset ${cur.i} is not allowed there`);
}

function authority(cur: Cursor, uri: Uri): UriError | null {
  const s = cur.s;
  const begin = cur.i;
  // user info, only if an '@' follows it
  while (cur.take(':'));
  if (cur.ch() === '@') {
    uri.user = unescape(s.slice(begin, cur.i));
    cur.i++;
  } else cur.i = begin;
  const host = cur.i;
  if (cur.ch() === '[') {
    while (cur.ch() !== '' && cur.ch() !== ']') cur.i++;
    if (cur.ch() !== ']') return { part: 'server', reason: `'[' opens an IPv6 address that no ']' closes` };
    cur.i++;
  } else {
    while (cur.take(''));
  }
  uri.server = cur.i > host ? unescape(s.slice(host, cur.i)) : null;
  if (cur.ch() === ':') {
    cur.i++;
    if (!DIGIT.test(cur.ch())) return { part: 'port', reason: cur.ch() === '' || cur.ch() === '/' ? "the port after ':' is empty" : `the port must be digits, not '${cur.ch()}'` };
    const start = cur.i;
    let port = 0;
    while (cur.ch() !== '' && DIGIT.test(cur.ch())) {
      port = port * 10 + Number(cur.ch());
      if (port > 65535) {
        while (cur.ch() !== '' && DIGIT.test(cur.ch())) cur.i++;
        return { part: 'port', reason: `port ${cur.s.slice(start, cur.i)} is above 65535` };
      }
      cur.i++;
    }
    uri.port = port;
  }
  return null;
}

export interface QueryParam {
  name: string;
  /** null for a bare "name" without '=' (QEMU's drivers then crash or ignore it) */
  value: string | null;
}

/**
 * query_params_parse: pieces split at '&' (at ';' only when no '&' follows),
 * "name=value" unescaped, "=value" and empty pieces dropped.
 */
export function queryParams(query: string | null): QueryParam[] {
  const out: QueryParam[] = [];
  if (!query) return out;
  let q = 0;
  while (q < query.length) {
    let end = query.indexOf('&', q);
    if (end < 0) end = query.indexOf(';', q);
    if (end < 0) end = query.length;
    let eq = query.indexOf('=', q);
    if (eq >= end) eq = -1;
    if (end !== q) {
      if (eq < 0) out.push({ name: unescape(query.slice(q, end)), value: null });
      else if (eq !== q) out.push({ name: unescape(query.slice(q, eq)), value: unescape(query.slice(eq + 1, end)) });
    }
    q = end < query.length ? end + 1 : end;
  }
  return out;
}
