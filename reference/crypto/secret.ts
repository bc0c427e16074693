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
