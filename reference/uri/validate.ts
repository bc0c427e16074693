/**
 * A node's options against its driver's schema (schemas/blockdev/<driver>.json):
 * every key must be an option of the driver or of every node (common.json's
 * base), values written as text (dotted lists) are converted the way QemuOpts
 * and QEMU's "keyval" visitor convert them (sizes with suffixes, numbers, on/off
 * words), then ajv checks types, ranges, enums and required options. Messages
 * are qemu's ("Block format 'raw' does not support the option 'x'", "NBD server
 * address missing") and name the option.
 */
import type { ErrorObject } from 'ajv';
import { BlockError } from '../errors.js';
import { parseBool, parseNumber, parseSize } from '../options/qemuopts.js';
import { crumple, isDict, put, scalarText, type QDict, type QValue } from '../options/qdict.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getValidator, schemasDir, type SchemaObject } from '../options/schemas.js';
import { drivers } from './drivers.js';

type Schema = SchemaObject & {
  properties?: Record<string, Schema>;
  items?: Schema;
  type?: string | string[];
  $ref?: string;
  allOf?: Schema[];
  enum?: unknown[];
  'x-qemu-type'?: string;
  'x-missing'?: Record<string, string>;
  'x-invalid'?: string;
  'x-reference'?: string;
};

// The schemas are read straight from their files (a few hundred microseconds) for the option
// names, types and messages; ajv is compiled only for options beyond driver and filename, so a
// plain file name costs no schema compilation.
const files = new Map<string, Schema | null>();

function schemaFile(name: string): Schema | null {
  if (!files.has(name)) {
    const path = join(schemasDir, 'blockdev', `${name}.json`);
    files.set(name, existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Schema) : null);
  }
  return files.get(name)!;
}

export function hasBlockdevSchema(driver: string): boolean {
  return /^[A-Za-z0-9_+-]+$/.test(driver) && schemaFile(driver) !== null;
}

export function blockdevSchema(driver: string): Schema {
  const s = hasBlockdevSchema(driver) ? schemaFile(driver) : null;
  if (!s) throw new BlockError('not-found', `no schema 'blockdev/${driver}'`, { value: driver });
  return s;
}

/** Follows a "common.json#/definitions/x" reference inside schemas/blockdev/. */
function deref(s: Schema): Schema {
  if (!s.$ref) return s;
  const [file, pointer] = s.$ref.split('#') as [string, string | undefined];
  let target = blockdevSchema(file.replace(/\.json$/, ''));
  for (const part of (pointer ?? '').split('/').filter(Boolean)) target = (target as Record<string, Schema>)[part]!;
  return { ...target, ...s, $ref: undefined, properties: { ...(target.properties ?? {}), ...(s.properties ?? {}) } };
}

/** Every option name a node of this driver takes (its own and the base ones). */
export function optionNames(driver: string): Set<string> {
  const s = blockdevSchema(driver);
  const base = deref({ $ref: 'common.json#/definitions/base' } as Schema);
  return new Set([...Object.keys(s.properties ?? {}), ...Object.keys(base.properties ?? {})]);
}

function propertiesOf(s: Schema): Record<string, Schema> {
  const d = deref(s);
  const props: Record<string, Schema> = { ...(d.properties ?? {}) };
  for (const part of d.allOf ?? []) Object.assign(props, deref(part).properties ?? {});
  return props;
}

/** Text to the schema's type, as QEMU converts option text; other values as they are. */
function coerce(s: Schema, v: QValue, path: string): QValue {
  const d = deref(s);
  const type = Array.isArray(d.type) ? undefined : d.type;
  if (typeof v === 'string') {
    // QemuOpts' words for text that is no value of the type (qemu-option.c, qapi_bool_parse)
    try {
      if (type === 'integer') return d['x-qemu-type'] === 'size' ? parseSize(v, path) : parseNumber(v, path);
      if (type === 'boolean') return parseBool(v, path);
    } catch (e) {
      if (!(e instanceof BlockError)) throw e;
      const what = type === 'boolean' ? "'on' or 'off'" : d['x-qemu-type'] === 'size' ? 'a non-negative number below 2^64' : 'a number';
      throw new BlockError('invalid-option', `Parameter '${path}' expects ${what} (${e.message})`, { option: path, value: v, cause: e });
    }
    return v;
  }
  if ((typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') && type === 'string') return scalarText(v) ?? v;
  if (typeof v === 'bigint' && type === 'integer') return v;
  if (isDict(v) && (type === 'object' || d.properties || d.allOf)) {
    const props = propertiesOf(d);
    const out: QDict = {};
    for (const [k, x] of Object.entries(v)) put(out, k, props[k] ? coerce(props[k]!, x, path ? `${path}.${k}` : k) : x);
    return out;
  }
  if (Array.isArray(v) && type === 'array' && d.items) return v.map((x, i) => coerce(d.items!, x, `${path}.${i}`));
  return v;
}

function at(schemaPath: string[], root: Schema): Schema | undefined {
  let s: Schema | undefined = root;
  for (const p of schemaPath) {
    if (!s) return undefined;
    const d = deref(s);
    s = /^\d+$/.test(p) ? d.items : propertiesOf(d)[p];
  }
  return s ? deref(s) : undefined;
}

function message(driver: string, root: Schema, e: ErrorObject, data: QDict): BlockError {
  const parts = e.instancePath.split('/').filter(Boolean);
  const path = parts.join('.');
  const value = parts.reduce<unknown>((o, p) => (o as Record<string, unknown> | undefined)?.[p], data);
  const prop = at(parts, root);
  switch (e.keyword) {
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      const full = path ? `${path}.${missing}` : missing;
      const text = (!path && root['x-missing']?.[missing]) || `Parameter '${full}' is missing`;
      return new BlockError('invalid-option', text, { option: full });
    }
    case 'enum':
      // QemuOpts says "invalid parameter value: V", the QAPI visitor "Parameter 'P' does not accept value 'V'"
      return new BlockError('invalid-option', prop?.['x-invalid'] ?? `Parameter '${parts[parts.length - 1] ?? path}' does not accept value '${String(value)}' (invalid parameter value: ${String(value)}; ${path} allows: ${(prop?.enum ?? []).join(', ')})`, { option: path, value });
    case 'type':
      return new BlockError('invalid-option', `Invalid parameter type for '${path}', expected: ${(e.params as { type: string }).type}`, { option: path, value });
    case 'minimum':
    case 'maximum':
    case 'exclusiveMaximum':
      return new BlockError('invalid-option', prop?.['x-invalid'] ?? `Parameter '${path}' expects a value ${e.message} (got ${String(value)})`, { option: path, value });
    case 'maxLength':
    case 'minItems':
      return new BlockError('invalid-option', prop?.['x-invalid'] ?? `Parameter '${path}' ${e.message}`, { option: path, value });
    case 'const':
      return new BlockError('invalid-option', `Parameter '${path}' must be '${String((e.params as { allowedValue: unknown }).allowedValue)}'`, { option: path, value });
    default:
      return new BlockError('invalid-option', `${driver}: option '${path}' ${e.message ?? e.keyword}`, { option: path, value });
  }
}

/**
 * Checks the node's own options (flat, as written) and returns them as typed
 * -blockdev options (nested, legacy spellings translated). Throws BlockError.
 */
export function checkBlockdevNode(driver: string, protocol: boolean, own: QDict): QDict {
  const entry = drivers.get(driver);
  if (!hasBlockdevSchema(driver)) {
    // a driver QEMU has and this suite does not describe: its options pass as written
    return crumple(own);
  }
  const names = optionNames(driver);
  for (const k of Object.keys(own)) {
    const top = k.split('.')[0]!;
    if (!names.has(top)) {
      throw new BlockError(
        'invalid-option',
        protocol ? `Block protocol '${driver}' doesn't support the option '${k}'` : `Block format '${driver}' does not support the option '${k}'`,
        { option: k },
      );
    }
  }
  let flat = own;
  if (entry?.syntax?.canonical) flat = entry.syntax.canonical(own);
  const root = blockdevSchema(driver);
  const nested = crumple(flat);
  const typed = coerce(root, nested, '') as QDict;
  // driver and a string filename only: nothing for ajv to find beyond the required filename
  const required = (root.required as string[] | undefined) ?? [];
  if (Object.keys(typed).every((k) => (k === 'driver' || k === 'filename') && typeof typed[k] === 'string') && required.every((r) => r in typed)) return typed;
  const v = getValidator(`blockdev/${driver}`);
  if (!v(typed)) {
    const errs = (v.errors ?? []).filter((e) => e.keyword !== 'if' && e.keyword !== 'allOf' && e.keyword !== 'anyOf');
    // the most specific complaint first: a bad value before a missing sibling
    errs.sort((a, b) => b.instancePath.length - a.instancePath.length);
    const first = errs[0] ?? v.errors![0]!;
    throw message(driver, root, first, typed);
  }
  return typed;
}
