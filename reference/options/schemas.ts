/**
 * The schema registry: every JSON Schema under the repo's schemas/ directory, loaded
 * at run time (never bundled) and compiled by one ajv instance, so cross-file $refs
 * (the corpus manifest points at output/info.json) resolve by $id.
 *
 * Names are paths under schemas/ without `.json`: 'create/qcow2', 'output/info',
 * 'corpus-manifest', 'expectations', 'manual-items'.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { BlockError } from '../errors.js';

// ajv and ajv-formats are CommonJS; under NodeNext their default export is the module object.
const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;
type AjvInstance = InstanceType<typeof Ajv>;

/** schemas/ of the repo: this file runs as dist/reference/options/schemas.js. */
export const schemasDir: string = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'schemas');

/**
 * Our annotation keywords. They carry data (spec ids, qemu parsing hints, rules)
 * that ajv does not evaluate itself; registering them keeps ajv's strict mode on.
 */
export const annotationKeywords = [
  'x-manual', // @spec id of the documenting manual item
  'x-qemu-only', // QEMU version that has it while the manual does not
  'x-qemu-type', // how QemuOpts parses the text: size | bool | number | str
  'x-allowed', // human description of the allowed values, for error messages
  'x-help', // the one-line help text qemu-img -o help prints
  'x-aliases', // text value -> canonical value (compat v3 -> 1.1)
  'x-bool-words', // restricts the accepted bool words (encryption: on/off only)
  'x-round-up', // the value is rounded up to a multiple of this before checks
  'x-implies', // { when, set }: another option set by this one's value
  'x-default-when', // the default applies only when the options match this schema
  'x-conflicts', // rules between options, see create-options.ts
  'x-format', // format name of a create schema
  'x-formatting', // create: { order, always }: the options qemu-img's "Formatting ..." line shows, in its order
  'x-driver', // driver name of a blockdev schema
  'x-kind', // blockdev: format or protocol
  'x-missing', // blockdev: { option: qemu's message when the required option is missing }
  'x-invalid', // blockdev: qemu's message when the option's value is refused
  'x-reference', // blockdev: ignored (accepted, no effect on the bytes) or unsupported (the reference refuses it)
] as const;

export type SchemaObject = Record<string, unknown>;

let registry: { ajv: AjvInstance; byName: Map<string, SchemaObject> } | null = null;

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else if (name.endsWith('.json')) out.push(path);
  }
  return out;
}

function load() {
  if (registry) return registry;
  // strictTypes/strictRequired off: rule fragments like { required: [...] } apply to the
  // options object without restating it (a unit test checks the names they use exist).
  // validateSchema off: checking every schema against the draft-07 meta-schema at load costs ~70 ms per
  // process (every qbc img call); test/blockdev-schemas.test.ts checks them all once instead.
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true, validateSchema: false });
  addFormats(ajv);
  ajv.addVocabulary([...annotationKeywords]);
  const byName = new Map<string, SchemaObject>();
  for (const file of walk(schemasDir)) {
    const name = relative(schemasDir, file).split(sep).join('/').replace(/\.json$/, '');
    let schema: SchemaObject;
    try {
      schema = JSON.parse(readFileSync(file, 'utf8')) as SchemaObject;
    } catch (e) {
      throw new BlockError('malformed', `schemas/${name}.json: not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    byName.set(name, schema);
    ajv.addSchema(schema, name);
  }
  registry = { ajv, byName };
  return registry;
}

/** Names of every schema, e.g. ['corpus-manifest', 'create/qcow2', ...]. */
export function schemaNames(): string[] {
  return [...load().byName.keys()];
}

/** The parsed JSON of one schema; throws BlockError('not-found') for an unknown name. */
export function loadSchema(name: string): SchemaObject {
  const s = load().byName.get(name);
  if (!s) {
    throw new BlockError('not-found', `no schema '${name}'; known: ${schemaNames().join(', ')}`, { value: name });
  }
  return s;
}

/** A compiled validator for a whole schema by name. */
export function getValidator(name: string): ValidateFunction {
  loadSchema(name);
  const v = load().ajv.getSchema(name);
  if (!v) throw new BlockError('not-found', `schema '${name}' did not compile`, { value: name });
  return v;
}

/** Compiles a schema fragment (a rule's `when`, say) with the shared ajv instance. */
export function compileFragment(schema: unknown): ValidateFunction {
  return load().ajv.compile(schema as object);
}

/** Validates data against a named schema; returns readable error lines (empty when valid). */
export function validate(name: string, data: unknown): string[] {
  const v = getValidator(name);
  if (v(data)) return [];
  return (v.errors ?? []).map(formatAjvError);
}

export function formatAjvError(e: ErrorObject): string {
  return `${e.instancePath || '/'} ${e.message ?? e.keyword}${e.params && Object.keys(e.params).length ? ' ' + JSON.stringify(e.params) : ''}`;
}
