// QemuOpts text and scalar parsing; expected values are what qemu-img 7.2 did with the same text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockError } from '../reference/errors.js';
import {
  isValidOptionList,
  parseBool,
  parseNumber,
  parseQemuOpts,
  parseSize,
  strtosz,
  formatQemuOpts,
} from '../reference/options/qemuopts.js';

function pairs(text: string, firstName?: string): Array<[string, string]> {
  return parseQemuOpts(text, { firstName }).pairs;
}

function throwsBlock(fn: () => unknown, code: string, option: string, includes: string[] = []): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BlockError, `expected BlockError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.option, option);
    for (const s of includes) assert.ok(e.message.includes(s), `message "${e.message}" should include "${s}"`);
    return true;
  });
}

test('name=value pairs, commas escaped as ,, inside values', () => {
  assert.deepEqual(pairs('cluster_size=4k,compat=1.1'), [
    ['cluster_size', '4k'],
    ['compat', '1.1'],
  ]);
  assert.deepEqual(pairs('backing_file=a,,b,backing_fmt=raw'), [
    ['backing_file', 'a,b'],
    ['backing_fmt', 'raw'],
  ]);
  assert.deepEqual(pairs('backing_file=base.raw,,,backing_fmt=raw'), [
    ['backing_file', 'base.raw,'],
    ['backing_fmt', 'raw'],
  ]);
  // an even run of trailing commas is an escaped comma in the last value
  assert.deepEqual(pairs('lazy_refcounts=on,,'), [['lazy_refcounts', 'on,']]);
});

test('the value is everything after the first =', () => {
  assert.deepEqual(pairs('backing_file=a=b'), [['backing_file', 'a=b']]);
  assert.deepEqual(pairs('data_file='), [['data_file', '']]);
  assert.deepEqual(pairs('=4k'), [['', '4k']]);
});

test('a bare name is name=on, a bare noname is name=off (so nocow is cow=off)', () => {
  assert.deepEqual(pairs('lazy_refcounts'), [['lazy_refcounts', 'on']]);
  assert.deepEqual(pairs('nolazy_refcounts'), [['lazy_refcounts', 'off']]);
  assert.deepEqual(pairs('nocow'), [['cow', 'off']]);
  assert.deepEqual(pairs('nonocow'), [['nocow', 'off']]);
});

test('help and ? ask for help; help=on does not', () => {
  assert.equal(parseQemuOpts('help').help, true);
  assert.equal(parseQemuOpts('?').help, true);
  assert.equal(parseQemuOpts('cluster_size=4k,help').help, true);
  const p = parseQemuOpts('help=on');
  assert.equal(p.help, false);
  assert.deepEqual(p.pairs, [['help', 'on']]);
});

test('the last of repeated names wins', () => {
  const p = parseQemuOpts('cluster_size=4k,cluster_size=8k');
  assert.equal(p.values.get('cluster_size'), '8k');
  assert.equal(p.pairs.length, 2);
});

test('an implicit first name takes a leading bare value', () => {
  assert.deepEqual(pairs('disk.img,format=raw', 'file'), [
    ['file', 'disk.img'],
    ['format', 'raw'],
  ]);
  assert.deepEqual(pairs('file=x,format=raw', 'file'), [
    ['file', 'x'],
    ['format', 'raw'],
  ]);
});

test('formatQemuOpts escapes commas so the text parses back', () => {
  const text = formatQemuOpts([
    ['backing_file', 'a,b'],
    ['compat', '1.1'],
  ]);
  assert.equal(text, 'backing_file=a,,b,compat=1.1');
  assert.deepEqual(pairs(text), [
    ['backing_file', 'a,b'],
    ['compat', '1.1'],
  ]);
});

test('qemu-img refuses empty lists, a leading comma and an odd trailing comma run', () => {
  for (const ok of ['a=1', 'a=1,,', 'a', 'a=1,b=2']) assert.equal(isValidOptionList(ok), true, ok);
  for (const bad of ['', ',', ',a=1', 'a=1,', 'a=1,,,']) assert.equal(isValidOptionList(bad), false, bad);
});

test('sizes: suffixes are powers of 1024, fractions round half up like qemu_strtosz', () => {
  const table: Array<[string, number]> = [
    ['0', 0],
    ['512', 512],
    ['1b', 1],
    ['1B', 1],
    ['1k', 1024],
    ['1K', 1024],
    ['1m', 1 << 20],
    ['1M', 1 << 20],
    ['1g', 2 ** 30],
    ['2G', 2 ** 31],
    ['1T', 2 ** 40],
    ['1P', 2 ** 50],
    ['1E', 2 ** 60],
    ['1.5k', 1536],
    ['1.5M', 1572864],
    ['1.25k', 1280],
    ['1.7k', 1741], // 1740.8 rounds up
    ['1.333k', 1365],
    ['0.1k', 102],
    ['5.k', 5120],
    ['1.0000000001k', 1024],
    ['010', 10], // decimal, not octal
    ['0x10', 16],
    ['0x200', 512],
    [' 1k', 1024],
    ['+1k', 1024],
    ['18446744073709551615', Number(2n ** 64n - 1n)],
  ];
  for (const [text, want] of table) {
    const r = strtosz(text);
    assert.ok(r && r !== 'range', `${text} should parse`);
    assert.equal(Number(r.value), want, text);
  }
  const hexSuffix = strtosz('0x1k');
  assert.ok(hexSuffix && hexSuffix !== 'range');
  assert.equal(hexSuffix.value, 1024n);
  assert.equal(hexSuffix.deprecatedHexSuffix, true);
});

test('sizes: malformed text and overflow are refused', () => {
  for (const bad of ['', 'k', 'abc', '1.5', '1.5B', '0.5', '.5k', '0x1.8k', '1k ', '-1', '-0', '1kb', '1KiB', '1e3', '1.5e3k', '1x', '2.5']) {
    assert.equal(strtosz(bad), null, `[${bad}]`);
  }
  assert.equal(strtosz('16E'), 'range');
  assert.equal(strtosz('18446744073709551616'), 'range');
});

test('parseSize names the option and refuses sizes it cannot hold exactly', () => {
  assert.equal(parseSize('64k', 'cluster_size'), 65536);
  assert.equal(parseSize('1E'), 2 ** 60);
  throwsBlock(() => parseSize('abc', 'cluster_size'), 'invalid-option', 'cluster_size', ["'abc'", 'suffix']);
  throwsBlock(() => parseSize('1.5'), 'invalid-size', 'size', ["'1.5'"]);
  throwsBlock(() => parseSize('9223372036854775807'), 'invalid-size', 'size', ['exactly']);
});

test('bools: on/yes/true/y and off/no/false/n, case-sensitive', () => {
  for (const w of ['on', 'yes', 'true', 'y']) assert.equal(parseBool(w, 'x'), true, w);
  for (const w of ['off', 'no', 'false', 'n']) assert.equal(parseBool(w, 'x'), false, w);
  for (const bad of ['ON', 'Y', 'True', '1', '0', '', 'on ', 'maybe']) {
    throwsBlock(() => parseBool(bad, 'lazy_refcounts'), 'invalid-option', 'lazy_refcounts', [`'${bad}'`, 'on']);
  }
});

test('numbers: decimal, 0x hex, leading-0 octal; negatives wrap like strtoull', () => {
  assert.equal(parseNumber('16'), 16);
  assert.equal(parseNumber('0x10'), 16);
  assert.equal(parseNumber('010'), 8);
  assert.equal(parseNumber(' 16'), 16);
  assert.equal(parseNumber('+16'), 16);
  assert.equal(parseNumber('-0'), 0);
  assert.equal(parseNumber('-1'), Number(2n ** 64n - 1n));
  for (const bad of ['', '16.0', '1k', 'abc', '08', '0x', '16 ']) {
    throwsBlock(() => parseNumber(bad, 'refcount_bits'), 'invalid-option', 'refcount_bits', [`'${bad}'`]);
  }
  throwsBlock(() => parseNumber('18446744073709551616', 'refcount_bits'), 'invalid-option', 'refcount_bits', ['too large']);
});
