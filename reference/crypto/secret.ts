/**
 * Secrets as qemu-img takes them: `--object secret,id=ID,data=TEXT|file=PATH[,format=raw|base64]`.
 * The passphrase never goes into a message: errors name the secret's id and the option only.
 */
import { readFileSync } from 'node:fs';
import { BlockError } from '../errors.js';

export interface Secret { id: string; value: Buffer }

/** Parse one `secret,...` object text (QemuOpts: `,,` escapes a comma). */
export function parseSecretObject(text: string): Secret {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ',' && text[i + 1] === ',') { cur += ','; i++; }
    else if (text[i] === ',') { parts.push(cur); cur = ''; }
    else cur += text[i];
  }
  parts.push(cur);
  const [kind, ...kv] = parts;
  const opts: Record<string, string> = {};
  for (const p of kv) {
    const eq = p.indexOf('=');
    if (eq < 0) throw new BlockError('invalid-option', `--object ${kind}: parameter '${p.split('=')[0]}' needs a value`, { option: p });
    opts[p.slice(0, eq)] = p.slice(eq + 1);
  }
  if (kind !== 'secret' && !(kind === '' && 'qom-type' in opts)) throw new BlockError('invalid-option', `--object: only 'secret' objects are supported, not '${kind}'`, { option: 'qom-type' });
  const id = opts.id;
  if (!id) throw new BlockError('invalid-option', "--object secret: Parameter 'id' is missing", { option: 'id' });
  for (const k of Object.keys(opts)) if (!['id', 'data', 'file', 'format', 'qom-type'].includes(k)) throw new BlockError('invalid-option', `--object secret,id=${id}: unknown parameter '${k}'`, { option: k });
  if ((opts.data === undefined) === (opts.file === undefined)) throw new BlockError('option-conflict', `secret '${id}': exactly one of 'data' and 'file' is required`, { option: 'data' });
  const format = opts.format ?? 'raw';
  if (format !== 'raw' && format !== 'base64') throw new BlockError('invalid-option', `secret '${id}': format must be 'raw' or 'base64', not '${format}'`, { option: 'format' });
  let raw: Buffer;
  if (opts.file !== undefined) {
    try { raw = readFileSync(opts.file); } catch (e) { throw new BlockError('not-found', `secret '${id}': cannot read file '${opts.file}'`, { option: 'file', cause: e }); }
  } else raw = Buffer.from(opts.data!, 'utf8');
  if (format === 'base64') {
    const t = raw.toString('latin1').trim();
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4) throw new BlockError('invalid-option', `secret '${id}': data is not valid base64`, { option: 'format' });
    raw = Buffer.from(t, 'base64');
  }
  return { id, value: raw };
}

/** Look up `key-secret=ID`: a missing one is an error naming the option and the id. */
export function lookupSecret(secrets: ReadonlyMap<string, Secret>, id: string | undefined, option = 'key-secret'): Buffer {
  if (!id) throw new BlockError('invalid-option', `Parameter '${option}' is required for cipher`, { option });
  const s = secrets.get(id);
  if (!s) throw new BlockError('invalid-option', `No secret with id '${id}' found (${option})`, { option, value: id });
  return s.value;
}

/** The secrets one command holds, by id. */
export type SecretStore = ReadonlyMap<string, Secret>;

/** The Adapter contract's secret object (fields instead of text) as a secret. */
export function secretFromObject(o: { id: string; data?: string; file?: string; format?: string }): Secret {
  const text = ['secret', `id=${o.id}`];
  if (o.data !== undefined) text.push(`data=${o.data}`);
  if (o.file !== undefined) text.push(`file=${o.file}`);
  if (o.format !== undefined) text.push(`format=${o.format}`);
  return parseSecretObject(text.map((t) => t.replaceAll(',', ',,')).join(','));
}

/** A store from `--object` texts or contract objects; a repeated id is refused, as qemu refuses a duplicate object. */
export function secretStore(objects: Iterable<string | { id: string; data?: string; file?: string; format?: string }> = []): SecretStore {
  const m = new Map<string, Secret>();
  for (const o of objects) {
    const s = typeof o === 'string' ? parseSecretObject(o) : secretFromObject(o);
    if (m.has(s.id)) throw new BlockError('invalid-option', `attempt to add duplicate property '${s.id}' to object (type 'container')`, { option: 'id', value: s.id });
    m.set(s.id, s);
  }
  return m;
}

/** Secrets as a tool receives them: a store already built (the CLI's --object) or the contract's objects. */
export type SecretsLike = SecretStore | ReadonlyArray<{ id: string; data?: string; file?: string; format?: string }> | undefined;

export function asSecretStore(x: SecretsLike): SecretStore | undefined {
  if (x === undefined) return undefined;
  return x instanceof Map ? x : secretStore(x as ReadonlyArray<{ id: string }>);
}

/** Every secret of a command in one store (ids must not repeat with different values). */
export function mergeSecrets(...parts: SecretsLike[]): SecretStore | undefined {
  const m = new Map<string, Secret>();
  for (const p of parts) {
    const s = asSecretStore(p);
    if (!s) continue;
    for (const [id, v] of s) {
      const had = m.get(id);
      if (had && !had.value.equals(v.value)) throw new BlockError('invalid-option', `attempt to add duplicate property '${id}' to object (type 'container')`, { option: 'id', value: id });
      m.set(id, v);
    }
  }
  return m.size ? m : undefined;
}

/** The key-secret an -o text names (key-secret=ID or encrypt.key-secret=ID), as qemu-img convert carries it to the target's open. */
export function keySecretInOptions(text: string | undefined): string | undefined {
  if (!text) return undefined;
  let found: string | undefined;
  for (const part of text.replaceAll(',,', '\u0000').split(',')) {
    const m = /^(?:encrypt\.)?key-secret=(.*)$/.exec(part);
    if (m) found = m[1].replaceAll('\u0000', ',');
  }
  return found;
}
