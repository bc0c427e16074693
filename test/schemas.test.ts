// The schemas themselves: they compile, carry the annotations the options layer and
// traceability need, agree with spec/manual-items.json, and the generated types are fresh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { getValidator, loadSchema, schemaNames, schemasDir, validate } from '../reference/options/schemas.js';

const repo = join(schemasDir, '..');
type Obj = Record<string, unknown>;
interface Item {
  id: string;
  section: string;
  summary: string;
  source: 'manual' | 'qemu-7.2';
}
const items = JSON.parse(readFileSync(join(repo, 'spec', 'manual-items.json'), 'utf8')) as Item[];
const createNames = schemaNames().filter((n) => n.startsWith('create/'));

test('every schema compiles with ajv strict mode', () => {
  const names = schemaNames();
  for (const want of ['create/raw', 'create/qcow2', 'output/info', 'output/check', 'output/map', 'output/measure', 'corpus-manifest', 'expectations', 'manual-items']) {
    assert.ok(names.includes(want), `schemas/${want}.json exists`);
  }
  for (const n of names) assert.equal(typeof getValidator(n), 'function', n);
});

test('every create option says how qemu parses it, what it allows, and where it is specified', () => {
  const qemuTypes = ['size', 'bool', 'number', 'str'];
  for (const name of createNames) {
    const props = loadSchema(name).properties as Record<string, Obj>;
    for (const [opt, p] of Object.entries(props)) {
      const where = `${name}: ${opt}`;
      assert.ok(qemuTypes.includes(p['x-qemu-type'] as string), `${where} x-qemu-type`);
      assert.ok(typeof p.description === 'string' && p.description.length > 10, `${where} description`);
      assert.ok(typeof p['x-allowed'] === 'string', `${where} x-allowed`);
      assert.ok(typeof p['x-help'] === 'string', `${where} x-help`);
      assert.ok(('x-manual' in p) !== ('x-qemu-only' in p), `${where}: exactly one of x-manual / x-qemu-only`);
      const jsonType = { size: 'integer', number: 'integer', bool: 'boolean', str: 'string' }[p['x-qemu-type'] as string];
      assert.equal(p.type, jsonType, `${where} type matches x-qemu-type`);
    }
  }
});

test('defaults are valid values of their own option', () => {
  for (const name of createNames) {
    const props = loadSchema(name).properties as Record<string, Obj>;
    for (const [opt, p] of Object.entries(props)) {
      if (!('default' in p)) continue;
      // validate { opt: default } against the schema with every rule ignored: only the property's own keywords
      const errs = validate(name, { [opt]: p.default }).filter((e) => e.startsWith(`/${opt}`));
      assert.deepEqual(errs, [], `${name}: default of ${opt}`);
    }
  }
});

/** Option names a rule fragment mentions (required lists and property keys), recursively. */
function namesIn(node: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) node.forEach((n) => namesIn(n, out));
  else if (node && typeof node === 'object') {
    const o = node as Obj;
    if (Array.isArray(o.required)) (o.required as string[]).forEach((n) => out.add(n));
    if (o.properties && typeof o.properties === 'object') {
      for (const [k, v] of Object.entries(o.properties as Obj)) {
        out.add(k);
        namesIn(v, out);
      }
    }
    for (const k of ['not', 'anyOf', 'allOf', 'oneOf', 'if', 'then', 'else']) if (k in o) namesIn(o[k], out);
  }
  return out;
}

test('conflict rules and conditional defaults only name options that exist', () => {
  for (const name of createNames) {
    const schema = loadSchema(name);
    const props = Object.keys(schema.properties as Obj);
    const rules = (schema['x-conflicts'] ?? []) as Obj[];
    const ids = new Set<string>();
    for (const r of rules) {
      assert.ok(!ids.has(r.id as string), `${name}: duplicate rule id ${r.id}`);
      ids.add(r.id as string);
      assert.ok('requires' in r || 'forbids' in r, `${name}: rule ${r.id} has requires or forbids`);
      const used = new Set([...(r.options as string[]), ...namesIn(r.when), ...namesIn(r.requires), ...namesIn(r.forbids)]);
      for (const [, n] of (r.message as string).matchAll(/\$\{([^}]+)\}/g)) used.add(n);
      for (const n of used) assert.ok(props.includes(n), `${name}: rule ${r.id} names unknown option ${n}`);
      // the message names every option the rule is about
      for (const n of r.options as string[]) assert.ok((r.message as string).includes(n), `${name}: rule ${r.id} message names ${n}`);
    }
    for (const [opt, p] of Object.entries(schema.properties as Record<string, Obj>)) {
      for (const n of namesIn(p['x-default-when'])) assert.ok(props.includes(n), `${name}: ${opt} x-default-when names ${n}`);
    }
  }
});

test('spec/manual-items.json is valid, ids are unique, and covers the create schemas', () => {
  assert.deepEqual(validate('manual-items', items), []);
  const ids = items.map((i) => i.id);
  assert.equal(new Set(ids).size, ids.length, 'unique ids');
  const byId = new Map(items.map((i) => [i.id, i]));
  for (const name of createNames) {
    const schema = loadSchema(name);
    const fmt = schema['x-format'] as string;
    assert.equal(byId.get(schema['x-manual'] as string)?.source, 'manual', `${fmt} itself is a manual item`);
    for (const [opt, p] of Object.entries(schema.properties as Record<string, Obj>)) {
      if (p['x-manual']) {
        assert.equal(p['x-manual'], `${fmt}.${opt}`, `${fmt}.${opt} x-manual id`);
        assert.equal(byId.get(`${fmt}.${opt}`)?.source, 'manual', `${fmt}.${opt} is a manual item`);
      } else {
        assert.equal(byId.get(`${fmt}.${opt}`)?.source, 'qemu-7.2', `${fmt}.${opt} is a qemu-7.2 item`);
      }
    }
  }
  // every section of the manual is represented
  for (const s of ['qed', 'qcow', 'luks', 'vdi', 'vmdk', 'vpc', 'vhdx', 'bochs', 'cloop', 'dmg', 'parallels', 'vvfat', 'nbd', 'sheepdog', 'iscsi', 'gluster', 'ssh', 'nvme', 'locking']) {
    assert.ok(byId.has(s), `manual item ${s}`);
  }
  for (const s of ['nbd.uri', 'iscsi.url', 'iscsi.chap-env', 'ssh.host_key_check', 'locking.locking', 'vvfat.rw']) {
    assert.ok(byId.has(s), `manual item ${s}`);
  }
});

// Shapes copied from qemu-img 7.2 runs (trimmed); options-qemu checks live output too.
const sampleInfo = {
  'virtual-size': 4194304,
  filename: 'ov.qcow2',
  'cluster-size': 65536,
  format: 'qcow2',
  'actual-size': 331776,
  'format-specific': {
    type: 'qcow2',
    data: { compat: '1.1', 'compression-type': 'zlib', 'lazy-refcounts': false, 'refcount-bits': 16, corrupt: false, 'extended-l2': false },
  },
  'full-backing-filename': 'base.raw',
  'backing-filename': 'base.raw',
  'backing-filename-format': 'raw',
  'dirty-flag': false,
};

test('output schemas accept qemu-img shapes and refuse broken ones', () => {
  assert.deepEqual(validate('output/info', sampleInfo), []);
  assert.deepEqual(validate('output/info', [sampleInfo, { filename: 'base.raw', format: 'raw', 'virtual-size': 4194304 }]), []);
  assert.notDeepEqual(validate('output/info', { ...sampleInfo, 'virtual-size': -1 }), []);
  assert.notDeepEqual(validate('output/info', { ...sampleInfo, 'format-specific': { type: 'qcow2', data: { compat: '2.0' } } }), []);
  assert.notDeepEqual(validate('output/info', { filename: 'x', format: 'raw' }), []);
  assert.notDeepEqual(validate('output/info', []), []);

  assert.deepEqual(validate('output/check', { 'image-end-offset': 393216, 'total-clusters': 64, 'check-errors': 0, 'allocated-clusters': 1, filename: 'a', format: 'qcow2' }), []);
  assert.notDeepEqual(validate('output/check', { 'check-errors': 0, filename: 'a', format: 'qcow2', leaks: 0 }), [], 'zero counters are omitted');
  assert.notDeepEqual(validate('output/check', { filename: 'a', format: 'qcow2' }), []);
  assert.notDeepEqual(validate('output/check', { 'check-errors': 0, filename: 'a', format: 'qcow2', 'total-clusters': 0 }), []);

  assert.deepEqual(validate('output/map', [{ start: 0, length: 65536, depth: 0, present: true, zero: false, data: true, offset: 0 }]), []);
  // an empty image maps as one 0-length entry
  assert.deepEqual(validate('output/map', [{ start: 0, length: 0, depth: 0, present: false, zero: false, data: false }]), []);
  assert.notDeepEqual(validate('output/map', [{ start: 0, length: -1, depth: 0, present: true, zero: false, data: true }]), []);
  assert.notDeepEqual(validate('output/map', [{ start: 0, length: 1, depth: 0, zero: false, data: true }]), []);

  assert.deepEqual(validate('output/measure', { required: 458752, 'fully-allocated': 4521984, bitmaps: 0 }), []);
  assert.notDeepEqual(validate('output/measure', { required: 1 }), []);
});

test('corpus manifest and expectations shapes', () => {
  const sha = 'a'.repeat(64);
  const manifest = {
    producer: 'qemu-img version 7.2.22',
    entries: [
      {
        id: 'qcow2-cluster-512',
        format: 'qcow2',
        file: 'images/qcow2-cluster-512.qcow2',
        recipe: {
          create: { format: 'qcow2', size: 4194304, options: 'cluster_size=512' },
          io: [
            { op: 'write', offset: 0, length: 65536, pattern: 0xab },
            { op: 'zero', offset: 65536, length: 512, unmap: true },
            { op: 'discard', offset: 0, length: 512 },
          ],
        },
        fileSha256: sha,
        guestSha256: sha,
        info: { filename: 'images/qcow2-cluster-512.qcow2', format: 'qcow2', 'virtual-size': 4194304 },
        map: [{ start: 0, length: 4194304, depth: 0, present: false, zero: true, data: false }],
        check: { 'check-errors': 0, filename: 'x', format: 'qcow2' },
        tags: ['cluster_size'],
        spec: ['qcow2.cluster_size'],
      },
    ],
  };
  assert.deepEqual(validate('corpus-manifest', manifest), []);
  const noCheck = structuredClone(manifest);
  (noCheck.entries[0] as Obj).check = null;
  assert.deepEqual(validate('corpus-manifest', noCheck), []);
  const badIo = structuredClone(manifest);
  (badIo.entries[0].recipe.io[0] as Obj).pattern = 256;
  assert.notDeepEqual(validate('corpus-manifest', badIo), []);

  const exp = { implementation: 'qemu', entries: [{ scenario: 'features/formats/qcow2/create.feature :: x', expected: 'failed', reason: 'why', kind: 'spec-ambiguity' }] };
  assert.deepEqual(validate('expectations', exp), []);
  assert.notDeepEqual(validate('expectations', { ...exp, entries: [{ ...exp.entries[0], kind: undefined }] }), []);
  assert.notDeepEqual(validate('expectations', { ...exp, entries: [{ ...exp.entries[0], kind: 'implementation-bug' }] }), []);
  assert.deepEqual(validate('expectations', { ...exp, entries: [{ ...exp.entries[0], kind: 'implementation-bug', reproduction: 'qemu-img info x' }] }), []);
  assert.notDeepEqual(validate('expectations', { ...exp, entries: [{ ...exp.entries[0], expected: 'passed' }] }), []);
  assert.notDeepEqual(validate('expectations', { ...exp, entries: [{ ...exp.entries[0], reason: '' }] }), []);
});

test('generated types are up to date (node scripts/gen-types.mjs --check)', async () => {
  const r = await execa('node', [join(repo, 'scripts', 'gen-types.mjs'), '--check'], { reject: false, cwd: repo });
  assert.equal(r.exitCode, 0, `gen-types --check: ${r.stderr}`);
});
