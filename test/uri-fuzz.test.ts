/**
 * Fuzzing the filename parsers with fast-check (fixed seeds, so a failure
 * reproduces): 10,000+ generated URIs of every protocol, json: texts and
 * dotted option lists. Each must parse to a node tree whose options and shown
 * name can be produced, or be refused with a typed BlockError: never another
 * exception, never a hang (each input is timed).
 *
 * Then path traversal: filenames and options that name files through "..",
 * "./", file: prefixes, json: and option lists, written to by the reference,
 * may change only the files they name, and create none.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { BlockError } from '../reference/errors.js';
import { blockdevOptions, displayName, parseFilename } from '../reference/uri/index.js';
import { ioOnImage } from '../reference/tools/io.js';

// A bound for runaway parsing (catastrophic backtracking, loops), not a speed figure: far above
// any honest parse even on a loaded 2-core machine, where a GC pause or preemption can take 200 ms.
const MAX_MS = 5000;

/** Parses, renders, and demands success or a BlockError. */
function survive(text: string, opts: { imageOpts?: boolean; format?: string } = {}): void {
  const t0 = performance.now();
  try {
    const spec = parseFilename(text, opts);
    JSON.stringify(blockdevOptions(spec), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    const shown = displayName(spec, spec.driver ?? 'raw');
    assert.equal(typeof shown, 'string');
  } catch (e) {
    if (!(e instanceof BlockError)) throw new Error(`${JSON.stringify(text)} (${JSON.stringify(opts)}) threw ${(e as Error)?.stack ?? String(e)}`);
    assert.ok(e.message.length > 0);
  }
  const ms = performance.now() - t0;
  assert.ok(ms < MAX_MS, `${JSON.stringify(text)} took ${ms.toFixed(0)} ms`);
}

const PREFIXES = [
  'nbd://', 'nbd+tcp://', 'nbd+unix://', 'nbd:', 'nbd:unix:', 'iscsi://', 'iser://', 'gluster://', 'gluster+unix://', 'gluster+rdma://',
  'ssh://', 'nvme://', 'sheepdog://', 'sheepdog+unix://', 'sheepdog:', 'fat:', 'null-co://', 'null-aio://', 'file:', 'host_device:',
  'json:', 'foo:', 'http://', '', '/dev/', './', '../',
];
const TOKENS = [
  'a', 'h', '0', '1', '65535', '65536', '99999', '127.0.0.1', '[::1]', '[', ']', ':', '/', '//', '?', '#', '@', '%', '%20', '%zz', '%2F', '&', ';', '=',
  ' ', '"', "'", '{', '}', ',', ',,', '\\', 'é', '\u0000', 'socket=', 'exportname=', ':exportname=', 'host_key_check=', 'md5:', 'sha1:', 'ab:cd',
  'iqn.2008-11.org.x', 'vol', 'img', ':12:', ':16:', ':32:', 'floppy:', 'rw:', 'unix:', 'header_digest=', 'iser', '..', '-1', 'x'.repeat(300),
];

const uriArb = fc.tuple(fc.constantFrom(...PREFIXES), fc.array(fc.constantFrom(...TOKENS), { maxLength: 12 })).map(([p, t]) => p + t.join(''));

const KEYS = ['driver', 'file', 'filename', 'file.driver', 'file.filename', 'backing', 'backing.driver', 'server', 'server.type', 'server.host', 'server.port',
  'server.0.type', 'server.1.path', 'export', 'host', 'port', 'path', 'offset', 'size', 'dir', 'fat-type', 'label', 'volume', 'lun', 'portal', 'target',
  'host_key_check', 'host-key-check', 'read-only', 'cache', 'cache.direct', 'locking', 'x', '__proto__', 'constructor', '', '.', 'file..filename', 'a.0', 'a.b.c'];
const DRIVERS = ['raw', 'qcow2', 'file', 'nbd', 'iscsi', 'gluster', 'ssh', 'nvme', 'vvfat', 'null-co', 'sheepdog', 'vmdk', 'nosuch', 'host_device', 'luks'];

const valueArb: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(...DRIVERS),
    fc.string({ maxLength: 12 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom(...KEYS), tie('v'), { maxKeys: 4 }),
  ),
})).v;

const jsonArb = fc.oneof(
  fc.dictionary(fc.constantFrom(...KEYS), valueArb, { maxKeys: 6 }).map((o) => `json:${JSON.stringify(o)}`),
  // a valid text with a few characters dropped, doubled or replaced
  fc.tuple(fc.dictionary(fc.constantFrom(...KEYS), valueArb, { maxKeys: 5 }), fc.array(fc.tuple(fc.nat(), fc.constantFrom('', '{', '}', '"', "'", ',', ':', '\\', '[', '1', 'e', '-', ' ')), { maxLength: 4 }))
    .map(([o, edits]) => {
      let s = JSON.stringify(o);
      for (const [at, ch] of edits) {
        const i = s.length ? at % s.length : 0;
        s = s.slice(0, i) + ch + s.slice(i + 1);
      }
      return `json:${s}`;
    }),
  fc.string({ maxLength: 40 }).map((s) => `json:${s}`),
);

const optionListArb = fc
  .array(fc.tuple(fc.constantFrom(...KEYS, 'file.server.0.host', 'file.file.driver', 'noread-only', 'help'), fc.oneof(fc.constantFrom(...DRIVERS), fc.string({ maxLength: 10 }))), { maxLength: 8 })
  .chain((pairs) => fc.constantFrom(0, 1, 2).map((style) => pairs.map(([k, v]) => (style === 2 ? k : `${k}=${style ? v.replaceAll(',', ',,') : v}`)).join(',')));

test('10,000 generated filenames, json: texts and option lists: a node tree or a BlockError, none running away', () => {
  let runs = 0;
  fc.assert(fc.property(uriArb, (u) => { runs++; survive(u); }), { seed: 8001, numRuns: 4000 });
  fc.assert(fc.property(uriArb, fc.constantFrom('raw', 'qcow2', 'nbd', 'nosuch'), (u, f) => { runs++; survive(u, { format: f }); }), { seed: 8002, numRuns: 1000 });
  fc.assert(fc.property(jsonArb, (j) => { runs++; survive(j); }), { seed: 8003, numRuns: 3000 });
  fc.assert(fc.property(optionListArb, (o) => { runs++; survive(o, { imageOpts: true }); }), { seed: 8004, numRuns: 2500 });
  assert.ok(runs >= 10000, `${runs} inputs`);
});

function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d)) {
      const p = path.join(d, n);
      const st = fs.lstatSync(p);
      if (st.isDirectory()) walk(p);
      else out.set(p, fs.readFileSync(p).toString('hex'));
    }
  };
  walk(dir);
  return out;
}

test('writes through json: and option names touch only the files they name, and create none', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-traversal-'));
  try {
    const box = path.join(root, 'box');
    fs.mkdirSync(path.join(box, 'sub'), { recursive: true });
    for (const f of [path.join(box, 'disk.img'), path.join(box, 'sub', 'other.img'), path.join(root, 'outside.img')]) fs.writeFileSync(f, Buffer.alloc(65536));
    // names relative to the box (the reference resolves them against the process's directory, as qemu-img does)
    const names = ['disk.img', './disk.img', 'sub/../disk.img', 'sub/other.img', '../outside.img', 'missing.img', 'sub/../../outside.img', 'sub/..', ''];
    const wrap: Array<(n: string) => { filename: string; imageOpts?: boolean }> = [
      (n: string) => ({ filename: n }),
      (n: string) => ({ filename: `file:${n}` }),
      (n: string) => ({ filename: `json:${JSON.stringify({ driver: 'raw', file: { driver: 'file', filename: n } })}` }),
      (n: string) => ({ filename: `json:${JSON.stringify({ 'file.filename': n, driver: 'raw' })}` }),
      (n: string) => ({ filename: `json:${JSON.stringify({ driver: 'file', filename: n })}` }),
      (n: string) => ({ filename: `driver=raw,file.driver=file,file.filename=${n.replaceAll(',', ',,')}`, imageOpts: true }),
      (n: string) => ({ filename: `json:${JSON.stringify({ driver: 'raw', offset: 512, file: { filename: n } })}` }),
      (n: string) => ({ filename: `json:${JSON.stringify({ driver: 'raw', file: { driver: 'null-co' }, backing: n })}` }),
      (n: string) => ({ filename: `json:${JSON.stringify({ driver: 'qcow2', 'data-file': { filename: n }, file: { filename: n } })}` }),
    ];
    const cwd = process.cwd();
    process.chdir(box);
    try {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...names), fc.nat(wrap.length - 1), fc.nat(255), async (name, w, pattern) => {
          const ref = wrap[w]!(name);
          const before = snapshot(root);
          try {
            await ioOnImage({ ...ref, format: ref.imageOpts || ref.filename.startsWith('json:') ? undefined : 'raw' }, [{ op: 'write', offset: 0, length: 512, pattern }]);
          } catch (e) {
            if (!(e instanceof BlockError)) throw e;
          }
          const after = snapshot(root);
          assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), `${ref.filename} created or removed a file`);
          const allowed = name ? path.resolve(box, name) : null;
          for (const [f, content] of after) {
            if (content !== before.get(f)) assert.equal(f, allowed, `${ref.filename} changed ${f}, which it does not name`);
          }
        }),
        { seed: 8005, numRuns: 150 },
      );
    } finally {
      process.chdir(cwd);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
