/**
 * `-o` option text of `qemu-img create` -> a typed, checked options object.
 *
 * Everything about an option (type, default, range, aliases, conflicts, messages)
 * lives in schemas/create/<format>.json; this module only applies it:
 *   1. parse QemuOpts text; unknown names are refused;
 *   2. turn each value into its type as QemuOpts would (x-qemu-type);
 *   3. merge -b/-F/size given outside the text;
 *   4. round (x-round-up), apply unconditional defaults;
 *   5. ajv checks every value against its property schema;
 *   6. the schema's x-conflicts rules;
 *   7. implied options (x-implies) and conditional defaults (x-default-when).
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { BlockError } from '../errors.js';
import type { RawCreateOptions } from '../types/create-raw.js';
import type { Qcow2CreateOptions } from '../types/create-qcow2.js';
import { isValidOptionList, parseBool, parseNumber, parseQemuOpts, parseSize } from './qemuopts.js';
import { compileFragment, getValidator, loadSchema, schemaNames, type SchemaObject } from './schemas.js';

export type { RawCreateOptions, Qcow2CreateOptions };
export type CreateOptions = Record<string, unknown>;

export type QemuType = 'size' | 'bool' | 'number' | 'str';

interface PropertySchema {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  'x-qemu-type': QemuType;
  'x-manual'?: string;
  'x-qemu-only'?: string;
  'x-allowed'?: string;
  'x-help'?: string;
  'x-aliases'?: Record<string, string>;
  'x-bool-words'?: string[];
  'x-round-up'?: number;
  'x-implies'?: { when: unknown; set: Record<string, unknown> };
  'x-default-when'?: unknown;
}

interface ConflictRule {
  id: string;
  options: string[];
  when: unknown;
  requires?: unknown;
  forbids?: unknown;
  message: string;
}

interface CompiledFormat {
  format: string;
  schema: SchemaObject;
  properties: Record<string, PropertySchema>;
  validate: ValidateFunction;
  rules: Array<ConflictRule & { whenFn: ValidateFunction; requiresFn?: ValidateFunction; forbidsFn?: ValidateFunction }>;
  defaultWhen: Map<string, ValidateFunction>;
}

const compiled = new Map<string, CompiledFormat>();

/** Formats that have a create schema (schemas/create/<format>.json). */
export function createFormats(): string[] {
  return schemaNames()
    .filter((n) => n.startsWith('create/'))
    .map((n) => n.slice('create/'.length));
}

function formatSchema(format: string): CompiledFormat {
  const hit = compiled.get(format);
  if (hit) return hit;
  if (!createFormats().includes(format)) {
    throw new BlockError('unknown-format', `no create options for format '${format}'; known: ${createFormats().join(', ')}`, {
      value: format,
    });
  }
  const name = `create/${format}`;
  const schema = loadSchema(name);
  const properties = schema.properties as Record<string, PropertySchema>;
  const rules = ((schema['x-conflicts'] ?? []) as ConflictRule[]).map((r) => ({
    ...r,
    whenFn: compileFragment(r.when),
    requiresFn: r.requires === undefined ? undefined : compileFragment(r.requires),
    forbidsFn: r.forbids === undefined ? undefined : compileFragment(r.forbids),
  }));
  const defaultWhen = new Map<string, ValidateFunction>();
  for (const [n, p] of Object.entries(properties)) {
    if (p['x-default-when'] !== undefined) defaultWhen.set(n, compileFragment(p['x-default-when']));
  }
  const c: CompiledFormat = { format, schema, properties, validate: getValidator(name), rules, defaultWhen };
  compiled.set(format, c);
  return c;
}

/** Error code for a bad value: the size option is a size problem, the rest option problems. */
function codeFor(option: string): 'invalid-size' | 'invalid-option' {
  return option === 'size' ? 'invalid-size' : 'invalid-option';
}

function coerce(format: CompiledFormat, name: string, text: string): unknown {
  const p = format.properties[name];
  const allowed = p['x-allowed'];
  const withAllowed = (e: unknown): never => {
    if (e instanceof BlockError && allowed) {
      throw new BlockError(codeFor(name), `${name}: '${text}' is invalid; allowed: ${allowed}`, { option: name, value: text });
    }
    throw e;
  };
  switch (p['x-qemu-type']) {
    case 'size':
      try {
        return parseSize(text, name);
      } catch (e) {
        // keep parseSize's message when the number is valid but not exact
        if (e instanceof BlockError && /represented exactly/.test(e.message)) throw e;
        return withAllowed(e);
      }
    case 'number':
      try {
        return parseNumber(text, name);
      } catch (e) {
        return withAllowed(e);
      }
    case 'bool': {
      const words = p['x-bool-words'];
      if (words && !words.includes(text)) {
        throw new BlockError('invalid-option', `${name}: '${text}' is invalid; allowed: ${words.join(' or ')}`, {
          option: name,
          value: text,
        });
      }
      try {
        return parseBool(text, name);
      } catch (e) {
        return withAllowed(e);
      }
    }
    case 'str':
      return p['x-aliases']?.[text] ?? text;
    default:
      throw new BlockError('malformed', `schemas/create/${format.format}.json: ${name} has no x-qemu-type`, { option: name });
  }
}

/** Integers above 2^53 print exactly (String() would show 2305843009213694000 for 2^61). */
function show(v: unknown): string {
  return typeof v === 'number' && Number.isInteger(v) ? BigInt(v).toString() : String(v);
}

function display(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : show(v);
}

/** Maps the first ajv error of a property to a BlockError naming it. */
function valueError(format: CompiledFormat, opts: CreateOptions, errors: ErrorObject[], texts: Map<string, string>): BlockError {
  const e = errors[0];
  let option = e.instancePath.replace(/^\//, '').split('/')[0].replaceAll('~1', '/').replaceAll('~0', '~');
  if (!option && e.keyword === 'additionalProperties') option = String(e.params.additionalProperty);
  const p = format.properties[option];
  const shown = texts.has(option) ? `'${texts.get(option)}'` : display(opts[option]);
  const allowed = p?.['x-allowed'] ?? e.message ?? 'see the schema';
  return new BlockError(codeFor(option), `${option}: ${shown} is invalid; allowed: ${allowed}`, {
    option,
    value: opts[option],
  });
}

function fillMessage(message: string, opts: CreateOptions): string {
  return message.replace(/\$\{([^}]+)\}/g, (_, n: string) => (n in opts ? show(opts[n]) : '(unset)'));
}

export interface ExtraCreateOptions {
  /** positional size argument of qemu-img create (bytes) */
  size?: number;
  /** -b: overrides backing_file in the text */
  backing_file?: string;
  /** -F: overrides backing_fmt in the text */
  backing_fmt?: string;
}

export function resolveCreateOptions(format: 'raw', text: string | undefined, extra?: ExtraCreateOptions): RawCreateOptions;
export function resolveCreateOptions(format: 'qcow2', text: string | undefined, extra?: ExtraCreateOptions): Qcow2CreateOptions;
export function resolveCreateOptions(format: string, text: string | undefined, extra?: ExtraCreateOptions): CreateOptions;
export function resolveCreateOptions(format: string, text: string | undefined, extra: ExtraCreateOptions = {}): CreateOptions {
  const f = formatSchema(format);
  const opts: CreateOptions = {};
  const texts = new Map<string, string>(); // option -> text as typed, for messages

  if (text !== undefined) {
    if (!isValidOptionList(text)) {
      throw new BlockError('invalid-option', `Invalid option list: '${text}' (empty, a leading comma or a trailing single comma)`, {
        value: text,
      });
    }
    const parsed = parseQemuOpts(text);
    if (parsed.help) {
      throw new BlockError('invalid-option', `help: the option list asks for help; use listCreateOptions('${format}')`, {
        option: 'help',
      });
    }
    for (const [name, value] of parsed.values) {
      if (!(name in f.properties)) {
        throw new BlockError(
          'invalid-option',
          `Invalid parameter '${name}' for ${format}; valid: ${Object.keys(f.properties).sort().join(', ')}`,
          { option: name, value },
        );
      }
      texts.set(name, value);
      opts[name] = coerce(f, name, value);
    }
  }

  if (extra.size !== undefined) {
    if ('size' in opts) {
      throw new BlockError('option-conflict', 'size: given both in the option list and as the size argument; give it only once', {
        option: 'size',
      });
    }
    opts.size = extra.size;
  }
  if (extra.backing_file !== undefined) opts.backing_file = extra.backing_file;
  if (extra.backing_fmt !== undefined) opts.backing_fmt = extra.backing_fmt;

  for (const [name, p] of Object.entries(f.properties)) {
    const unit = p['x-round-up'];
    if (unit !== undefined && typeof opts[name] === 'number' && Number.isFinite(opts[name])) {
      opts[name] = Math.ceil((opts[name] as number) / unit) * unit;
    }
    if (!(name in opts) && p.default !== undefined && p['x-default-when'] === undefined) opts[name] = p.default;
  }

  if (!f.validate(opts)) throw valueError(f, opts, f.validate.errors ?? [], texts);

  for (const r of f.rules) {
    if (!r.whenFn(opts)) continue;
    const broken = (r.requiresFn !== undefined && !r.requiresFn(opts)) || (r.forbidsFn !== undefined && r.forbidsFn(opts));
    if (broken) {
      throw new BlockError('option-conflict', fillMessage(r.message, opts), { option: r.options[0], value: r.id });
    }
  }

  for (const [name, p] of Object.entries(f.properties)) {
    const imp = p['x-implies'];
    if (imp && opts[name] === imp.when) {
      for (const [k, v] of Object.entries(imp.set)) if (!(k in opts)) opts[k] = v;
    }
  }
  for (const [name, when] of f.defaultWhen) {
    if (!(name in opts) && when(opts)) opts[name] = f.properties[name].default;
  }
  return opts;
}

export interface CreateOptionInfo {
  name: string;
  /** how qemu parses it */
  type: QemuType;
  description: string;
  /** the one-line text qemu-img 7.2 prints for -o help */
  help: string;
  default?: unknown;
  /** the allowed values in words */
  allowed?: string;
  /** @spec id when the manual documents it */
  manual?: string;
  /** QEMU version that has it when the manual does not */
  qemuOnly?: string;
}

/** Every create option of a format, sorted by name (the order of qemu-img -o help). */
export function listCreateOptions(format: string): CreateOptionInfo[] {
  const f = formatSchema(format);
  return Object.entries(f.properties)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, p]) => ({
      name,
      type: p['x-qemu-type'],
      description: p.description ?? '',
      help: p['x-help'] ?? p.description ?? '',
      ...(p.default !== undefined ? { default: p.default } : {}),
      ...(p['x-allowed'] ? { allowed: p['x-allowed'] } : {}),
      ...(p['x-manual'] ? { manual: p['x-manual'] } : {}),
      ...(p['x-qemu-only'] ? { qemuOnly: p['x-qemu-only'] } : {}),
    }));
}

const TYPE_LABEL: Record<QemuType, string> = { size: 'size', bool: 'bool (on/off)', number: 'num', str: 'str' };

/** The text `qemu-img create -f <format> -o help` prints (QemuOpts help layout). */
export function createOptionsHelp(format: string): string {
  const lines = listCreateOptions(format).map((o) => `  ${`${o.name}=<${TYPE_LABEL[o.type]}>`.padEnd(22)} - ${o.help}`);
  return ['Supported options:', ...lines].join('\n') + '\n';
}

/** True when -o text asks for help (a bare `help` or `?`), which qemu-img answers with createOptionsHelp. */
export function wantsHelp(text: string | undefined): boolean {
  return text !== undefined && isValidOptionList(text) && parseQemuOpts(text).help;
}

// Any schema by name ('create/qcow2', 'output/info', 'corpus-manifest', ...).
export { loadSchema, getValidator, validate, schemaNames } from './schemas.js';
