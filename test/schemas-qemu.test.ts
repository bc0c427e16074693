// Cross-checks of the schemas against real qemu-img (7.2): the -o help lists, the
// accept/refuse decisions of resolveCreateOptions, and the --output=json shapes.
// Without qemu-img on PATH every test here reports itself skipped, with the reason.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createOptionsHelp, resolveCreateOptions } from '../reference/options/create-options.js';
import { parseSize } from '../reference/options/qemuopts.js';
import { loadSchema, validate } from '../reference/options/schemas.js';

let qemuMissing: string | null = null;
let dir = '';

before(async () => {
  const r = await execa('qemu-img', ['--version'], { reject: false });
  if (r.failed) qemuMissing = `qemu-img is not on PATH (${r.shortMessage})`;
  dir = mkdtempSync(join(tmpdir(), 'qbc-schemas-'));
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Skips the test (with the reason) when qemu-img is absent; returns true when skipped. */
function skipped(t: TestContext): boolean {
  if (qemuMissing) t.skip(qemuMissing);
  return qemuMissing !== null;
}

async function qemuImg(args: string[]) {
  return execa('qemu-img', args, { reject: false, cwd: dir });
}

for (const format of ['raw', 'qcow2']) {
  test(`every option qemu-img create -f ${format} -o help lists is in the schema, and no other`, async (t) => {
    if (skipped(t)) return;
    const r = await qemuImg(['create', '-f', format, '-o', 'help', 'x']);
    assert.equal(r.exitCode, 0, r.stderr);
    const listed = [...r.stdout.matchAll(/^ {2}(\S+?)=</gm)].map((m) => m[1]).sort();
    assert.ok(listed.length > 3, `parsed option names from:\n${r.stdout}`);
    const ours = Object.keys(loadSchema(`create/${format}`).properties as object).sort();
    assert.deepEqual(ours, listed);
    // and the help text we print is qemu-img's, byte for byte
    assert.equal(createOptionsHelp(format), r.stdout.endsWith('\n') ? r.stdout : r.stdout + '\n');
  });
}

interface Case {
  f: 'raw' | 'qcow2';
  o?: string;
  size?: string;
}

// Option strings whose fate (created or refused) both must agree on.
const cases: Case[] = [
  { f: 'raw', size: '1M' },
  { f: 'raw', o: 'preallocation=falloc', size: '1M' },
  { f: 'raw', o: 'preallocation=metadata', size: '1M' },
  { f: 'raw', o: 'preallocation=sparse', size: '1M' },
  { f: 'raw', o: 'nocow', size: '1M' },
  { f: 'raw', o: 'nonocow', size: '1M' },
  { f: 'raw', o: 'extent_size_hint=4294967295', size: '1M' },
  { f: 'raw', o: 'extent_size_hint=4G', size: '1M' },
  { f: 'raw', o: 'size=1.5k' },
  { f: 'raw', o: 'size=2M', size: '1M' },
  { f: 'raw' },
  { f: 'raw', size: '1.5' },
  { f: 'raw', size: '1.5k' },
  { f: 'raw', size: '0x200' },
  { f: 'raw', size: '8E' },
  { f: 'qcow2', size: '1M' },
  { f: 'qcow2', size: '1' },
  { f: 'qcow2', o: 'cluster_size=512', size: '1M' },
  { f: 'qcow2', o: 'cluster_size=511', size: '1M' },
  { f: 'qcow2', o: 'cluster_size=2M', size: '1M' },
  { f: 'qcow2', o: 'cluster_size=4M', size: '1M' },
  { f: 'qcow2', o: 'cluster_size=3072', size: '1M' },
  { f: 'qcow2', o: 'cluster_size=1.5k', size: '1M' },
  { f: 'qcow2', o: 'cluster_size=abc', size: '1M' },
  { f: 'qcow2', o: 'refcount_bits=1', size: '1M' },
  { f: 'qcow2', o: 'refcount_bits=64', size: '1M' },
  { f: 'qcow2', o: 'refcount_bits=0', size: '1M' },
  { f: 'qcow2', o: 'refcount_bits=128', size: '1M' },
  { f: 'qcow2', o: 'refcount_bits=0x10', size: '1M' },
  { f: 'qcow2', o: 'refcount_bits=16.0', size: '1M' },
  { f: 'qcow2', o: 'compat=0.10,refcount_bits=16', size: '1M' },
  { f: 'qcow2', o: 'compat=0.10,refcount_bits=8', size: '1M' },
  { f: 'qcow2', o: 'compat=v2', size: '1M' },
  { f: 'qcow2', o: 'compat=V3', size: '1M' },
  { f: 'qcow2', o: 'compat=1.0', size: '1M' },
  { f: 'qcow2', o: 'lazy_refcounts', size: '1M' },
  { f: 'qcow2', o: 'lazy_refcounts=y', size: '1M' },
  { f: 'qcow2', o: 'lazy_refcounts=ON', size: '1M' },
  { f: 'qcow2', o: 'compat=0.10,lazy_refcounts=on', size: '1M' },
  { f: 'qcow2', o: 'extended_l2=on', size: '1M' },
  { f: 'qcow2', o: 'compat=0.10,extended_l2=on', size: '1M' },
  { f: 'qcow2', o: 'cluster_size=8k,extended_l2=on', size: '1M' },
  { f: 'qcow2', o: 'cluster_size=16k,extended_l2=on', size: '1M' },
  { f: 'qcow2', o: 'compression_type=zstd', size: '1M' },
  { f: 'qcow2', o: 'compression_type=lz4', size: '1M' },
  { f: 'qcow2', o: 'compat=0.10,compression_type=zstd', size: '1M' },
  { f: 'qcow2', o: 'data_file=CASE.data', size: '1M' },
  { f: 'qcow2', o: 'compat=0.10,data_file=CASE.data', size: '1M' },
  { f: 'qcow2', o: 'data_file_raw=on', size: '1M' },
  { f: 'qcow2', o: 'data_file=CASE.data,data_file_raw=on', size: '1M' },
  { f: 'qcow2', o: 'data_file=CASE.data,data_file_raw=on,backing_file=base.raw,backing_fmt=raw' },
  { f: 'qcow2', o: 'backing_file=base.raw,backing_fmt=raw' },
  { f: 'qcow2', o: 'backing_file=base.raw' },
  { f: 'qcow2', o: 'backing_fmt=raw', size: '1M' },
  { f: 'qcow2', o: 'backing_file=base.raw,backing_fmt=raw,preallocation=metadata' },
  { f: 'qcow2', o: 'backing_file=base.raw,backing_fmt=raw,preallocation=metadata,extended_l2=on' },
  { f: 'qcow2', o: 'preallocation=metadata', size: '1M' },
  { f: 'qcow2', o: 'preallocation=OFF', size: '1M' },
  { f: 'qcow2', o: 'encryption=on', size: '1M' },
  { f: 'qcow2', o: 'encryption=on,encrypt.key-secret=sec0', size: '1M' },
  { f: 'qcow2', o: 'encryption=yes,encrypt.key-secret=sec0', size: '1M' },
  { f: 'qcow2', o: 'encryption=off', size: '1M' },
  { f: 'qcow2', o: 'encryption=on,encrypt.format=aes,encrypt.key-secret=sec0', size: '1M' },
  { f: 'qcow2', o: 'encrypt.format=aes,encrypt.key-secret=sec0', size: '1M' },
  { f: 'qcow2', o: 'encrypt.format=aes,encrypt.key-secret=sec0,encrypt.cipher-alg=aes-128', size: '1M' },
  { f: 'qcow2', o: 'encrypt.format=luks', size: '1M' },
  { f: 'qcow2', o: 'encrypt.key-secret=sec0', size: '1M' },
  { f: 'qcow2', o: 'encrypt.iter-time=10', size: '1M' },
  { f: 'qcow2', o: 'encrypt.format=xyz,encrypt.key-secret=sec0', size: '1M' },
  { f: 'qcow2', o: 'foo=bar', size: '1M' },
  { f: 'qcow2', o: 'cluster-size=4k', size: '1M' },
  { f: 'qcow2', o: 'cluster_size=4k,', size: '1M' },
  { f: 'qcow2', o: 'cluster_size=4k,cluster_size=3000', size: '1M' },
  { f: 'qcow2', o: 'cluster_size=3000,cluster_size=4k', size: '1M' },
  { f: 'qcow2', o: 'cluster_size=4k', size: '8T' },
  { f: 'qcow2', o: 'cluster_size=4k', size: '8796093022720' },
  { f: 'qcow2', o: 'cluster_size=2M', size: '2E' },
  { f: 'qcow2', o: 'cluster_size=2M', size: '2305843009213694464' },
  { f: 'qcow2', o: 'cluster_size=16k,extended_l2=on', size: '64T' },
  { f: 'qcow2', o: 'cluster_size=16k,extended_l2=on', size: '70368744178176' },
  { f: 'qcow2', size: '2P' },
  { f: 'qcow2', size: '2251799813686272' },
  { f: 'qcow2', o: 'cluster_size=64k,extended_l2=on', size: '1P' },
  { f: 'qcow2', o: 'cluster_size=64k,extended_l2=on', size: '1125899906843648' },
];

function caseName(c: Case): string {
  return `${c.f} -o '${c.o ?? ''}' size '${c.size ?? ''}'`;
}

test('resolveCreateOptions accepts exactly what qemu-img create accepts', async (t) => {
  if (skipped(t)) return;
  await execa('qemu-img', ['create', '-q', '-f', 'raw', join(dir, 'base.raw'), '1M']);
  const disagreements: string[] = [];
  let n = 0;
  for (const c of cases) {
    const file = `case${n++}.img`;
    const o = c.o?.replaceAll('CASE', file);
    const args = ['create', '-q', '--object', 'secret,id=sec0,data=qbc-test-key', '-f', c.f];
    if (o !== undefined) args.push('-o', o);
    args.push(file);
    if (c.size !== undefined) args.push(c.size);
    const q = await qemuImg(args);
    let ours: string;
    try {
      const extra = c.size === undefined ? {} : { size: parseSize(c.size) };
      resolveCreateOptions(c.f, o, extra);
      ours = 'accepted';
    } catch (e) {
      ours = `refused (${(e as Error).message})`;
    }
    const theirs = q.exitCode === 0 ? 'accepted' : `refused (${q.stderr.trim()})`;
    if (ours.startsWith('accepted') !== theirs.startsWith('accepted')) {
      disagreements.push(`${caseName(c)}: qemu-img ${theirs}; reference ${ours}`);
    }
    rmSync(join(dir, file), { force: true });
    rmSync(join(dir, `${file}.data`), { force: true });
  }
  assert.deepEqual(disagreements, []);
});

test('qemu-img --output=json of real images matches the output schemas', async (t) => {
  if (skipped(t)) return;
  const run = async (args: string[]) => {
    const r = await qemuImg(args);
    assert.equal(r.exitCode, 0, `qemu-img ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const io = async (file: string, cmds: string[]) => {
    const args = cmds.flatMap((c) => ['-c', c]);
    const r = await execa('qemu-io', [...args, file], { reject: false, cwd: dir });
    assert.equal(r.exitCode, 0, r.stderr);
  };
  await run(['create', '-q', '-f', 'raw', 'b.raw', '4M']);
  await io('b.raw', ['write -P 0xab 0 64k']);
  await run(['create', '-q', '-f', 'qcow2', '-b', 'b.raw', '-F', 'raw', 'o.qcow2']);
  await io('o.qcow2', ['write -P 0xcd 1M 64k', 'write -z 2M 64k']);
  await run(['snapshot', '-c', 'snap1', 'o.qcow2']);
  await run(['bitmap', '--add', 'o.qcow2', 'bm0']);
  await run(['convert', '-c', '-O', 'qcow2', 'o.qcow2', 'c.qcow2']);
  await run(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'v2.qcow2', '1M']);
  await run(['create', '-q', '-f', 'qcow2', 'empty.qcow2', '0']);
  await run(['create', '-q', '-f', 'qcow2', '-o', 'data_file=d.data,data_file_raw=on', 'd.qcow2', '1M']);
  await run(['create', '-q', '--object', 'secret,id=s,data=k', '-f', 'qcow2', '-o', 'encrypt.format=aes,encrypt.key-secret=s', 'e.qcow2', '1M']);

  const docs: Array<[string, string[]]> = [
    ['output/info', ['info', '--output=json', 'b.raw']],
    ['output/info', ['info', '--output=json', 'o.qcow2']],
    ['output/info', ['info', '--output=json', '--backing-chain', 'o.qcow2']],
    ['output/info', ['info', '--output=json', 'c.qcow2']],
    ['output/info', ['info', '--output=json', 'v2.qcow2']],
    ['output/info', ['info', '--output=json', 'd.qcow2']],
    ['output/info', ['info', '--output=json', 'e.qcow2']],
    ['output/check', ['check', '--output=json', 'o.qcow2']],
    ['output/check', ['check', '--output=json', 'c.qcow2']],
    ['output/map', ['map', '--output=json', 'o.qcow2']],
    ['output/map', ['map', '--output=json', 'c.qcow2']],
    ['output/map', ['map', '--output=json', 'b.raw']],
    ['output/map', ['map', '--output=json', 'empty.qcow2']],
    ['output/check', ['check', '--output=json', 'empty.qcow2']],
    ['output/info', ['info', '--output=json', 'empty.qcow2']],
    ['output/measure', ['measure', '--output=json', '-O', 'qcow2', 'o.qcow2']],
    ['output/measure', ['measure', '--output=json', '-O', 'raw', '--size', '1G']],
    ['output/measure', ['measure', '--output=json', '-O', 'qcow2', '-o', 'cluster_size=512', '--size', '100M']],
  ];
  const problems: string[] = [];
  for (const [schema, args] of docs) {
    const doc = JSON.parse(await run(args)) as unknown;
    const errs = validate(schema, doc);
    if (errs.length) problems.push(`qemu-img ${args.join(' ')} vs ${schema}: ${errs.join('; ')}`);
  }
  assert.deepEqual(problems, []);

  // a format without a check prints nothing on stdout and exits 63
  const raw = await qemuImg(['check', '--output=json', 'b.raw']);
  assert.equal(raw.exitCode, 63);
  assert.equal(raw.stdout, '');
});
