/**
 * The read-only formats (issue 7): ADC round trips and its hostile codes, the UDIF
 * fixture writer's layouts read back by the reference, bzip2 and zlib zip bombs
 * stopping at the chunk size, and mutation fuzzing of the bochs, cloop and dmg
 * readers over the golden images (typed errors or data, never a crash or a hang).
 * Cross-checks with the producers' own readers: extract_compressed_fs for cloop,
 * dmg2img for dmg (skipped, with the reason, when the tool is not installed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlockError } from '../reference/errors.js';
import { openImage } from '../reference/graph/open.js';
import { adcDecompress } from '../reference/formats/dmg/adc.js';
import { prng } from './support/fuzz.js';
import { adcEncode, writeUdif, type Layout } from '../runner/fixtures/udif-writer.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const images = path.join(root, 'corpus', 'images');
const ITERATIONS = Number(process.env.QBC_FUZZ_ITERATIONS ?? 200);

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(file: string, format: string): Promise<Buffer> {
  const node = await openImage(file, { format, readOnly: true });
  try {
    return await node.read(0, node.size());
  } finally {
    await node.close();
  }
}

function sample(rnd: (n: number) => number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size;) {
    const kind = rnd(3);
    const n = Math.min(size - i, 1 + rnd(3000));
    if (kind === 0) b.fill(rnd(256), i, i + n);
    else if (kind === 1) for (let k = 0; k < n; k++) b[i + k] = rnd(256);
    else b.fill(0, i, i + n);
    i += n;
  }
  return b;
}

test('ADC: what the encoder writes decodes to the input; hostile codes are refused', () => {
  const rnd = prng(7);
  for (let i = 0; i < 50; i++) {
    const data = sample(rnd, 1 + rnd(20000));
    const enc = adcEncode(data);
    const out = Buffer.alloc(data.length);
    assert.equal(adcDecompress(enc, out), data.length);
    assert.ok(out.equals(data), `round trip ${i}`);
  }
  // a hand-made stream: literal "ab", a 2-byte match of 3 at distance 2, a 3-byte match of 4 at distance 1 (repeating the last a)
  const out = Buffer.alloc(9);
  assert.equal(adcDecompress(Buffer.from([0x81, 0x61, 0x62, 0x00, 0x01, 0x40, 0x00, 0x00]), out), 9);
  assert.equal(out.toString('latin1'), 'ababaaaaa');
  assert.throws(() => adcDecompress(Buffer.from([0x80, 0x61, 0x00, 0x05]), Buffer.alloc(100)), /before the chunk's start/);
  assert.throws(() => adcDecompress(Buffer.from([0x80, 0x61, 0x7f, 0x00, 0x00]), Buffer.alloc(8)), /beyond/);
  assert.throws(() => adcDecompress(Buffer.from([0x85, 0x61]), Buffer.alloc(8)), /cut off/);
});

test('every layout of the UDIF writer reads back as its source in the reference (and in dmg2img)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-udif-'));
  try {
    const src = sample(prng(11), 600 * 512);
    for (const layout of ['raw', 'zlib', 'bzip2', 'adc', 'mixed'] as Layout[]) {
      for (const [chunk, parts] of [[1, 1], [64, 2], [2048, 3]] as const) {
        if (layout === 'bzip2' && !has('bzip2')) continue;
        if (layout === 'mixed' && !has('bzip2')) continue;
        const f = path.join(dir, `${layout}-${chunk}-${parts}.dmg`);
        fs.writeFileSync(f, writeUdif(src, { layout, chunkSectors: chunk, parts }));
        assert.equal(sha(await readAll(f, 'dmg')), sha(src), `${layout} chunk ${chunk} parts ${parts}`);
        if (has('dmg2img') && chunk === 64) {
          execFileSync('dmg2img', ['-s', f, `${f}.raw`], { stdio: 'ignore' });
          assert.equal(sha(fs.readFileSync(`${f}.raw`)), sha(src), `dmg2img: ${layout} chunk ${chunk} parts ${parts}`);
        }
      }
    }
    if (!has('dmg2img')) t.diagnostic('dmg2img is not installed: its cross-check was skipped');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a bzip2 chunk that decompresses beyond its sectors is refused at the chunk size', { skip: has('bzip2') ? false : 'bzip2 is not installed' }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-bomb-'));
  try {
    // 8 sectors claimed, 8 MiB of zeroes inside (about 40 bytes of bzip2)
    const good = writeUdif(Buffer.alloc(8 * 512, 0x11), { layout: 'bzip2', chunkSectors: 8, parts: 1 });
    const f = path.join(dir, 'bomb.dmg');
    const bomb = execFileSync('bzip2', ['-9', '-c'], { input: Buffer.alloc(8 << 20) });
    const xmlOffset = Number(good.readBigUInt64BE(good.length - 512 + 0xd8));
    const xml = good.toString('utf8', xmlOffset, good.length - 512);
    const table = Buffer.from(/<data>([^<]*)<\/data>/.exec(xml)![1]!.replace(/\s+/g, ''), 'base64');
    table.writeBigUInt64BE(BigInt(bomb.length), 204 + 0x20);
    const { plist, koly } = await import('../runner/fixtures/udif-writer.js');
    const x = Buffer.from(plist([table]));
    fs.writeFileSync(f, Buffer.concat([bomb, x, koly({ dataLength: bomb.length, dataCrc: 0, xmlOffset: bomb.length, xmlLength: x.length, sectors: 8 })]));
    const t0 = Date.now();
    await assert.rejects(readAll(f, 'dmg'), (e: unknown) => e instanceof BlockError && /beyond/.test(e.message));
    assert.ok(Date.now() - t0 < 5000, 'the bomb was not stopped early');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('cloop golden images read as extract_compressed_fs extracts them', { skip: has('extract_compressed_fs') ? false : 'extract_compressed_fs is not installed' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-cloop-'));
  try {
    for (const name of fs.readdirSync(images).filter((n) => n.endsWith('.cloop'))) {
      const out = path.join(dir, `${name}.raw`);
      // extract_compressed_fs 4.x dies of a division by zero on images of fewer than 64 blocks or so (its progress meter)
      const r = spawnSync('extract_compressed_fs', [path.join(images, name), out], { stdio: 'ignore', timeout: 30_000 });
      if (r.status !== 0) { t.diagnostic(`extract_compressed_fs failed on ${name} (signal ${r.signal}, status ${r.status}): not compared`); continue; }
      assert.equal(sha(await readAll(path.join(images, name), 'cloop')), sha(fs.readFileSync(out)), name);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test(`${ITERATIONS} mutated bochs, cloop and dmg images give typed errors or data, never a crash or a hang`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-rofuzz-'));
  const rnd = prng(20261203);
  const seeds = fs.readdirSync(images).filter((n) => /^(bochs|cloop|dmg)-.*\.(bochs|cloop|dmg)$/.test(n) && fs.statSync(path.join(images, n)).size < 300_000);
  assert.ok(seeds.length >= 6, `golden images to mutate: ${seeds.join(', ')}`);
  try {
    for (let i = 0; i < ITERATIONS; i++) {
      const seed = seeds[i % seeds.length]!;
      const format = path.extname(seed).slice(1);
      const img = Buffer.from(fs.readFileSync(path.join(images, seed)));
      for (let f = 1 + rnd(4); f > 0; f--) {
        const region = rnd(3);
        // the header and tables of each format: bochs's first 4 KiB, cloop's first 2 KiB, dmg's last 4 KiB (plist and koly)
        const at = region === 2 ? rnd(img.length) : format === 'dmg' ? Math.max(0, img.length - 1 - rnd(4096)) : rnd(Math.min(img.length, format === 'bochs' ? 4096 : 2048));
        img[at] = region === 1 ? img[at]! ^ (1 << rnd(8)) : rnd(256);
      }
      const p = path.join(dir, `m${i}.${format}`);
      fs.writeFileSync(p, img);
      const t0 = Date.now();
      try {
        const node = await openImage(p, { format, readOnly: true });
        try {
          for (let o = 0; o < node.size() && o < 64 << 20; o += 1 << 20) await node.read(o, Math.min(1 << 20, node.size() - o));
        } finally {
          await node.close();
        }
      } catch (e) {
        assert.ok(e instanceof BlockError, `mutation ${i} of ${seed} threw ${(e as Error).stack}`);
      }
      assert.ok(Date.now() - t0 < 10_000, `mutation ${i} of ${seed} took ${Date.now() - t0} ms`);
      fs.rmSync(p);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
