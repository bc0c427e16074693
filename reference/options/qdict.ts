/**
 * Block options as QEMU's block layer holds them: a QDict, i.e. a JSON-like
 * tree whose scalars keep the type they were written with ("512" from a
 * dotted option list, 512 from json:), because qemu-img shows them that way.
 *
 * - flatten: nested dicts and lists become dotted keys (`file.filename`,
 *   `server.0.host`), the form bdrv_open works on (qdict_flatten);
 * - crumple: dotted keys back into nested dicts, and dicts whose keys are
 *   0..n-1 into lists (qdict_crumple);
 * - toQemuJson: the text qobject_to_json prints, keys in QDict iteration order
 *   (QEMU's hash buckets, not insertion order), which is what qemu-img shows
 *   after `json:` on its image: line.
 */
import { BlockError } from '../errors.js';

export type QScalar = string | number | bigint | boolean | null;
export type QValue = QScalar | QDict | QValue[];
export interface QDict {
  [key: string]: QValue;
}

/** Sets a key that came from user input: `__proto__` is a key like any other, never the prototype. */
export function put(d: QDict, key: string, v: QValue): void {
  Object.defineProperty(d, key, { value: v, enumerable: true, writable: true, configurable: true });
}

export function isDict(v: unknown): v is QDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** qdict_flatten: `{"file": {"driver": "file"}}` -> `{"file.driver": "file"}`; empty dicts and lists stay. */
export function flatten(d: QDict): QDict {
  const out: QDict = {};
  const walk = (v: QValue, prefix: string): void => {
    if (isDict(v) && Object.keys(v).length > 0) {
      for (const [k, x] of Object.entries(v)) walk(x, `${prefix}.${k}`);
    } else if (Array.isArray(v) && v.length > 0) {
      v.forEach((x, i) => walk(x, `${prefix}.${i}`));
    } else {
      // A flattened key that is already there (json: {"file": {...}, "file.x": ...}): the nested one wins, as in 7.2.
      put(out, prefix, v);
    }
  };
  // Scalars written with dotted keys first, so nested values written in the same dict replace them.
  for (const [k, v] of Object.entries(d)) if (!(isDict(v) && Object.keys(v).length) && !(Array.isArray(v) && v.length)) put(out, k, v);
  for (const [k, v] of Object.entries(d)) if ((isDict(v) && Object.keys(v).length) || (Array.isArray(v) && v.length)) walk(v, k);
  return out;
}

/** Splits off the options of a child: `file.driver` -> `driver` for prefix "file." (qdict_extract_subqdict). */
export function extractPrefix(flat: QDict, prefix: string): { child: QDict; rest: QDict } {
  const child: QDict = {};
  const rest: QDict = {};
  for (const [k, v] of Object.entries(flat)) {
    if (k.startsWith(prefix)) put(child, k.slice(prefix.length), v);
    else put(rest, k, v);
  }
  return { child, rest };
}

/**
 * qdict_crumple: dotted keys to a tree. A key that is both a scalar and a
 * prefix, or a dict mixing numeric and other keys, is an error naming the key.
 */
export function crumple(flat: QDict): QDict {
  const root: QDict = {};
  for (const [key, v] of Object.entries(flat)) {
    const parts = key.split('.');
    let node: QDict = root;
    for (let i = 0; i < parts.length - 1; i++) {
      const p = parts[i]!;
      const next = Object.prototype.hasOwnProperty.call(node, p) ? node[p] : undefined;
      if (next === undefined) put(node, p, {});
      else if (!isDict(next)) {
        throw new BlockError('invalid-option', `Cannot mix scalar and non-scalar keys: '${parts.slice(0, i + 1).join('.')}' is a value and a prefix`, { option: key });
      }
      node = node[p] as QDict;
    }
    const last = parts[parts.length - 1]!;
    if (Object.prototype.hasOwnProperty.call(node, last) && isDict(node[last])) {
      throw new BlockError('invalid-option', `Cannot mix scalar and non-scalar keys: '${key}' is a value and a prefix`, { option: key });
    }
    put(node, last, v);
  }
  return listify(root) as QDict;
}

function listify(v: QValue): QValue {
  if (!isDict(v)) return v;
  const keys = Object.keys(v);
  const numeric = keys.filter((k) => /^(0|[1-9][0-9]*)$/.test(k));
  if (keys.length > 0 && numeric.length === keys.length) {
    const n = keys.length;
    const list: QValue[] = [];
    for (let i = 0; i < n; i++) {
      if (!Object.prototype.hasOwnProperty.call(v, String(i))) throw new BlockError('invalid-option', `List indices are not contiguous: index ${i} is missing`, { option: String(i) });
      list.push(listify(v[String(i)]!));
    }
    return list;
  }
  if (numeric.length > 0) {
    throw new BlockError('invalid-option', `Cannot mix list and non-list keys ('${numeric[0]}' and '${keys.find((k) => !numeric.includes(k))}')`, { option: numeric[0] });
  }
  const out: QDict = {};
  for (const k of keys) put(out, k, listify(v[k]!));
  return out;
}

// ---------------------------------------------------------------------------
// QEMU's QDict iteration order and JSON text

const QDICT_BUCKET_MAX = 512;

/** qdict.c tdb_hash, modulo the bucket count. */
export function qdictBucket(key: string): number {
  const b = Buffer.from(key, 'utf8');
  let v = Math.imul(0x238f13af, b.length) >>> 0;
  for (let i = 0; i < b.length; i++) v = (v + ((b[i]! << ((i * 5) % 24)) >>> 0)) >>> 0;
  return ((Math.imul(1103515243, v) + 12345) >>> 0) % QDICT_BUCKET_MAX;
}

/**
 * Keys in the order qdict_first/qdict_next visit them: by bucket, and inside a
 * bucket the most recently inserted first (entries go to the head of the list).
 */
export function qdictOrder(keys: string[]): string[] {
  return keys
    .map((k, i) => ({ k, i, b: qdictBucket(k) }))
    .sort((x, y) => x.b - y.b || y.i - x.i)
    .map((e) => e.k);
}

/** C's %.17g, which qobject_to_json uses for doubles. */
export function formatDouble(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  // toExponential gives the decimal exponent after rounding to 17 significant digits.
  const [mant, e] = x.toExponential(16).split('e') as [string, string];
  const e10 = Number(e);
  const strip = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (e10 < -4 || e10 >= 17) {
    const sign = e10 < 0 ? '-' : '+';
    return `${strip(mant)}e${sign}${String(Math.abs(e10)).padStart(2, '0')}`;
  }
  return strip(x.toPrecision(17));
}

function jsonString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (cp > 0xffff) {
      const v = cp - 0x10000;
      out += `\\u${hex4(0xd800 + (v >> 10))}\\u${hex4(0xdc00 + (v & 0x3ff))}`;
    } else if (cp < 0x20 || cp >= 0x7f) out += `\\u${hex4(cp)}`;
    else out += ch;
  }
  return out + '"';
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

/**
 * qobject_to_json (compact form): `{"a": 1, "b": [true, null]}`, strings with
 * non-ASCII as \uXXXX (upper-case hex), dict keys in QDict order.
 * Within one hash bucket the later-inserted key comes first, so object key order matters only there.
 */
export function toQemuJson(v: QValue): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isSafeInteger(v) ? String(v) : formatDouble(v);
  if (typeof v === 'string') return jsonString(v);
  if (Array.isArray(v)) return `[${v.map(toQemuJson).join(', ')}]`;
  const keys = qdictOrder(Object.keys(v));
  return `{${keys.map((k) => `${jsonString(k)}: ${toQemuJson(v[k]!)}`).join(', ')}}`;
}

/** A value as QemuOpts text would hold it (what qemu_opts_absorb_qdict turns scalars into). */
export function scalarText(v: QValue): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isSafeInteger(v) ? String(v) : formatDouble(v);
  return null;
}
