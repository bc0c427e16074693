// resolveCreateOptions: valid, boundary, invalid and conflicting -o text for raw and qcow2.
// The accept/refuse decisions are the ones qemu-img 7.2 made (see options-qemu.test.ts for the live cross-check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockError } from '../reference/errors.js';
import {
  createFormats,
  createOptionsHelp,
  listCreateOptions,
  resolveCreateOptions,
} from '../reference/options/create-options.js';

const MiB = 1 << 20;

function refused(fn: () => unknown, code: string, option: string | undefined, includes: string[] = []): BlockError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof BlockError, `expected a BlockError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.option, option, caught.message);
  for (const s of includes) assert.ok(caught.message.includes(s), `"${caught.message}" should include "${s}"`);
  return caught;
}

test('qcow2 defaults are applied and typed', () => {
  const o = resolveCreateOptions('qcow2', undefined, { size: 64 * MiB });
  assert.deepEqual(o, {
    size: 64 * MiB,
    cluster_size: 65536,
    compat: '1.1',
    compression_type: 'zlib',
    data_file_raw: false,
    encryption: false,
    extended_l2: false,
    extent_size_hint: MiB,
    lazy_refcounts: false,
    nocow: false,
    preallocation: 'off',
    refcount_bits: 16,
  });
});

test('raw defaults and sizes with suffixes inside -o', () => {
  assert.deepEqual(resolveCreateOptions('raw', 'size=1.5k'), {
    size: 1536,
    preallocation: 'off',
    nocow: false,
    extent_size_hint: MiB,
  });
  assert.equal(resolveCreateOptions('raw', 'preallocation=full', { size: MiB }).preallocation, 'full');
  refused(() => resolveCreateOptions('raw', 'preallocation=metadata', { size: MiB }), 'invalid-option', 'preallocation', [
    "'metadata'",
    'off, falloc, full',
  ]);
});

test('size is rounded up to a multiple of 512, may be 0, and is needed', () => {
  assert.equal(resolveCreateOptions('qcow2', undefined, { size: 1 }).size, 512);
  assert.equal(resolveCreateOptions('qcow2', undefined, { size: 513 }).size, 1024);
  assert.equal(resolveCreateOptions('raw', undefined, { size: 0 }).size, 0);
  refused(() => resolveCreateOptions('raw', undefined), 'option-conflict', 'size', ['size', 'missing']);
  refused(() => resolveCreateOptions('qcow2', ''), 'invalid-option', undefined, ['Invalid option list']);
  refused(() => resolveCreateOptions('qcow2', 'size=2M', { size: MiB }), 'option-conflict', 'size', ['only once']);
  refused(() => resolveCreateOptions('qcow2', 'size=1.5'), 'invalid-size', 'size', ["'1.5'"]);
  // a backing file gives the size
  const o = resolveCreateOptions('qcow2', 'backing_file=b.raw,backing_fmt=raw');
  assert.equal(o.size, undefined);
});

test('cluster_size: powers of two from 512 to 2M', () => {
  for (const ok of ['512', '1k', '4096B', '64k', '2M', '2097152', '1024b']) {
    assert.ok(resolveCreateOptions('qcow2', `cluster_size=${ok}`, { size: MiB }).cluster_size, ok);
  }
  for (const bad of ['256', '511', '513', '3072', '4097', '0', '4M', '1.5k']) {
    refused(() => resolveCreateOptions('qcow2', `cluster_size=${bad}`, { size: MiB }), 'invalid-option', 'cluster_size', [
      `cluster_size: '${bad}' is invalid; allowed: a power of two between 512 and 2M`,
    ]);
  }
  refused(() => resolveCreateOptions('qcow2', 'cluster_size=abc', { size: MiB }), 'invalid-option', 'cluster_size', [
    "'abc'",
    'power of two',
  ]);
});

test('refcount_bits: powers of two from 1 to 64; numbers in hex or octal', () => {
  for (const [text, want] of [
    ['1', 1],
    ['64', 64],
    ['0x10', 16],
    ['010', 8],
  ] as const) {
    assert.equal(resolveCreateOptions('qcow2', `refcount_bits=${text}`, { size: MiB }).refcount_bits, want);
  }
  for (const bad of ['0', '3', '128', '-1', '1k', '16.0']) {
    refused(() => resolveCreateOptions('qcow2', `refcount_bits=${bad}`, { size: MiB }), 'invalid-option', 'refcount_bits', [
      'a power of two between 1 and 64',
    ]);
  }
});

test('compat: 0.10 / 1.1 and the v2 / v3 aliases', () => {
  assert.equal(resolveCreateOptions('qcow2', 'compat=v2', { size: MiB }).compat, '0.10');
  assert.equal(resolveCreateOptions('qcow2', 'compat=v3', { size: MiB }).compat, '1.1');
  for (const bad of ['1.0', '0.9', '', 'V3', '1.10']) {
    refused(() => resolveCreateOptions('qcow2', `compat=${bad}`, { size: MiB }), 'invalid-option', 'compat', ['0.10', '1.1']);
  }
});

test('bool options take qemu bool words; encryption only on/off', () => {
  assert.equal(resolveCreateOptions('qcow2', 'lazy_refcounts', { size: MiB }).lazy_refcounts, true);
  assert.equal(resolveCreateOptions('qcow2', 'lazy_refcounts=y', { size: MiB }).lazy_refcounts, true);
  assert.equal(resolveCreateOptions('qcow2', 'lazy_refcounts=no', { size: MiB }).lazy_refcounts, false);
  assert.equal(resolveCreateOptions('qcow2', 'nolazy_refcounts', { size: MiB }).lazy_refcounts, false);
  refused(() => resolveCreateOptions('qcow2', 'lazy_refcounts=1', { size: MiB }), 'invalid-option', 'lazy_refcounts', ['on or off']);
  refused(() => resolveCreateOptions('qcow2', 'encryption=yes,encrypt.key-secret=s', { size: MiB }), 'invalid-option', 'encryption', [
    "'yes'",
    'on or off',
  ]);
});

test('unknown options are refused with the valid names', () => {
  const e = refused(() => resolveCreateOptions('qcow2', 'foo=bar', { size: MiB }), 'invalid-option', 'foo', [
    "Invalid parameter 'foo' for qcow2",
    'cluster_size',
    'refcount_bits',
  ]);
  assert.ok(!e.message.includes('undefined'));
  refused(() => resolveCreateOptions('qcow2', 'cluster-size=4k', { size: MiB }), 'invalid-option', 'cluster-size');
  refused(() => resolveCreateOptions('qcow2', 'Cluster_size=4k', { size: MiB }), 'invalid-option', 'Cluster_size');
  // QemuOpts reads a bare nocow as cow=off
  refused(() => resolveCreateOptions('raw', 'nocow', { size: MiB }), 'invalid-option', 'cow', ["'cow'"]);
  refused(() => resolveCreateOptions('qcow2', 'help', { size: MiB }), 'invalid-option', 'help', ['help']);
  refused(() => resolveCreateOptions('vmdk-nope', undefined, { size: MiB }), 'unknown-format', undefined, [
    'vmdk-nope',
  ]);
});

test('extent_size_hint: 0 up to 4G - 1', () => {
  assert.equal(resolveCreateOptions('raw', 'extent_size_hint=0', { size: MiB }).extent_size_hint, 0);
  assert.equal(resolveCreateOptions('raw', 'extent_size_hint=4294967295', { size: MiB }).extent_size_hint, 4294967295);
  for (const bad of ['4G', '4294967296', '-1']) {
    refused(() => resolveCreateOptions('raw', `extent_size_hint=${bad}`, { size: MiB }), 'invalid-option', 'extent_size_hint', [
      'below 4G',
    ]);
  }
});

// Each conflict names both options and says what is allowed.
const conflicts: Array<[string, string, string[]]> = [
  ['compat=0.10,lazy_refcounts=on', 'lazy_refcounts', ['lazy_refcounts', 'compat=1.1']],
  ['compat=0.10,refcount_bits=8', 'refcount_bits', ['refcount_bits=8', 'compat=1.1', 'refcount_bits=16']],
  ['compat=0.10,extended_l2=on', 'extended_l2', ['extended_l2', 'compat=1.1']],
  ['cluster_size=8k,extended_l2=on', 'extended_l2', ['extended_l2', 'cluster_size', '16k']],
  ['compat=0.10,compression_type=zstd', 'compression_type', ['zstd', 'compat=1.1', 'zlib']],
  ['compat=0.10,data_file=d', 'data_file', ['data_file', 'compat=1.1']],
  ['data_file_raw=on', 'data_file_raw', ['data_file_raw', 'data_file']],
  ['data_file=d,data_file_raw=on,backing_file=b,backing_fmt=raw', 'data_file_raw', ['data_file_raw', 'backing_file']],
  ['backing_file=b,backing_fmt=raw,preallocation=metadata', 'backing_file', ['backing_file', 'preallocation=metadata', 'extended_l2']],
  ['backing_file=b,backing_fmt=raw,preallocation=full', 'backing_file', ['preallocation=full', 'extended_l2']],
  ['backing_fmt=raw', 'backing_fmt', ['backing_fmt', 'backing_file']],
  ['backing_file=b', 'backing_file', ['backing_file', 'backing_fmt']],
  ['encryption=on,encrypt.format=luks,encrypt.key-secret=s', 'encryption', ['encryption', 'encrypt.format']],
  ['encrypt.format=luks', 'encrypt.key-secret', ['encrypt.key-secret', 'encrypt.format']],
  ['encryption=on', 'encrypt.key-secret', ['encrypt.key-secret', 'encryption=on']],
  ['encrypt.key-secret=s', 'encrypt.key-secret', ['encrypt.key-secret', 'encrypt.format']],
  ['encrypt.format=aes,encrypt.key-secret=s,encrypt.cipher-alg=aes-128', 'encrypt.cipher-alg', ['encrypt.cipher-alg', 'encrypt.format=luks']],
  ['encrypt.format=aes,encrypt.key-secret=s,encrypt.iter-time=10', 'encrypt.iter-time', ['encrypt.iter-time', 'luks']],
  ['encrypt.iter-time=10', 'encrypt.iter-time', ['encrypt.iter-time', 'encrypt.format=luks']],
];

for (const [text, option, includes] of conflicts) {
  test(`conflict: ${text}`, () => {
    refused(() => resolveCreateOptions('qcow2', text, { size: MiB }), 'option-conflict', option, includes);
  });
}

test('the combinations qemu allows are allowed', () => {
  for (const text of [
    'compat=0.10',
    'compat=0.10,refcount_bits=16,lazy_refcounts=off,compression_type=zlib',
    'cluster_size=16k,extended_l2=on',
    'backing_file=b,backing_fmt=raw,preallocation=metadata,extended_l2=on',
    'backing_file=b,backing_fmt=raw,preallocation=off',
    'data_file=d,data_file_raw=on,preallocation=full',
    'data_file=d,backing_file=b,backing_fmt=raw',
    'encryption=off',
    'compat=0.10,encrypt.format=aes,encrypt.key-secret=s',
    'refcount_bits=64,cluster_size=512',
    'compression_type=zstd,extended_l2=on',
  ]) {
    assert.doesNotThrow(() => resolveCreateOptions('qcow2', text, { size: MiB }), text);
  }
});

test('encryption=on means encrypt.format=aes; luks gets its encrypt.* defaults, aes does not', () => {
  const aes = resolveCreateOptions('qcow2', 'encryption,encrypt.key-secret=s', { size: MiB });
  assert.equal(aes['encrypt.format'], 'aes');
  assert.equal(aes['encrypt.cipher-alg'], undefined);
  const luks = resolveCreateOptions('qcow2', 'encrypt.format=luks,encrypt.key-secret=s,encrypt.cipher-mode=cbc', { size: MiB });
  assert.equal(luks['encrypt.cipher-alg'], 'aes-256');
  assert.equal(luks['encrypt.cipher-mode'], 'cbc');
  assert.equal(luks['encrypt.iter-time'], 2000);
  assert.equal(luks['encrypt.hash-alg'], 'sha256');
  const plain = resolveCreateOptions('qcow2', undefined, { size: MiB });
  assert.equal(plain['encrypt.format'], undefined);
  assert.equal(plain['encrypt.iter-time'], undefined);
  refused(
    () => resolveCreateOptions('qcow2', 'encrypt.format=luks,encrypt.key-secret=s,encrypt.cipher-alg=sm4', { size: MiB }),
    'invalid-option',
    'encrypt.cipher-alg',
    ["'sm4'", 'aes-256'],
  );
});

test('-b and -F override the text; the last repeated option wins', () => {
  const o = resolveCreateOptions('qcow2', 'backing_file=x,backing_fmt=qcow2', { backing_file: 'y', backing_fmt: 'raw' });
  assert.equal(o.backing_file, 'y');
  assert.equal(o.backing_fmt, 'raw');
  assert.equal(resolveCreateOptions('qcow2', 'cluster_size=4k,cluster_size=8k', { size: MiB }).cluster_size, 8192);
  assert.equal(resolveCreateOptions('qcow2', 'backing_file=a,,b,backing_fmt=raw').backing_file, 'a,b');
});

test('largest qcow2 size: 2^22 L2 tables of cluster_size/8 (or /16 with extended_l2) clusters', () => {
  const limits: Array<[string, number, number]> = [
    ['cluster_size=512', 512, 2 ** 37],
    ['cluster_size=4k', 4096, 2 ** 43],
    ['cluster_size=64k', 65536, 2 ** 51],
    ['cluster_size=2M', 2 * MiB, 2 ** 61],
    ['cluster_size=16k,extended_l2=on', 16384, 2 ** 46],
    ['cluster_size=64k,extended_l2=on', 65536, 2 ** 50],
  ];
  for (const [text, , max] of limits) {
    assert.equal(resolveCreateOptions('qcow2', text, { size: max }).size, max, text);
    refused(() => resolveCreateOptions('qcow2', text, { size: max + 2 ** 20 }), 'option-conflict', 'size', [
      'too large',
      'cluster_size',
      BigInt(max).toString(),
    ]);
  }
  refused(() => resolveCreateOptions('qcow2', undefined, { size: 2 ** 60 }), 'option-conflict', 'size', ['cluster_size=64k']);
  refused(() => resolveCreateOptions('raw', undefined, { size: 2 ** 63 }), 'invalid-size', 'size', ['2^63']);
});

test('listCreateOptions and the -o help text come from the schema', () => {
  for (const f of ['qcow2', 'raw']) assert.ok(createFormats().includes(f), `${f} has a create schema`);
  const raw = listCreateOptions('raw');
  assert.deepEqual(
    raw.map((o) => o.name),
    ['extent_size_hint', 'nocow', 'preallocation', 'size'],
  );
  const cs = listCreateOptions('qcow2').find((o) => o.name === 'cluster_size');
  assert.ok(cs);
  assert.equal(cs.type, 'size');
  assert.equal(cs.default, 65536);
  assert.equal(cs.manual, 'qcow2.cluster_size');
  const rb = listCreateOptions('qcow2').find((o) => o.name === 'refcount_bits');
  assert.equal(rb?.qemuOnly, '7.2');
  assert.equal(rb?.manual, undefined);
  const help = createOptionsHelp('raw');
  assert.ok(help.startsWith('Supported options:\n'));
  assert.ok(help.includes('  preallocation=<str>    - Preallocation mode (allowed values: off, falloc, full)\n'), help);
  assert.ok(help.includes('  nocow=<bool (on/off)>  - '), help);
});
