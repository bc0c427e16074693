/**
 * Mutation fuzzing of the qed, qcow, vdi and parallels readers (issue 4): their
 * golden images with a few random bytes changed in the header, the tables or
 * anywhere. Open, read, check, map and writes must either work or fail with a
 * typed BlockError, quickly, and never grow the file without bound. Seeded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openImage } from '../reference/graph/open.js';
import { checkImage } from '../reference/tools/check.js';
import { prng, typedOrNothing } from './support/fuzz.js';
import { mapImage } from '../reference/tools/map.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const images = path.join(root, 'corpus', 'images');
/** [golden image, format, bytes of header and tables to aim most mutations at] */
const SEEDS: Array<[string, string, number]> = [
  ['qed-data.qed', 'qed', 320 * 1024 + 64],
  ['qed-cluster-4k.qed', 'qed', 32 * 1024],
  ['qcow-data.qcow', 'qcow', 8192],
  ['vdi-dynamic-written.vdi', 'vdi', 1024],
  ['parallels-cluster-4k.parallels', 'parallels', 4096],
  ['parallels-zeroed.parallels', 'parallels', 4096],
];
const ITERATIONS = Number(process.env.QBC_FUZZ_ITERATIONS ?? 120);

test(`${ITERATIONS} mutated qed, qcow, vdi and parallels images give typed errors or data, never a crash or a hang`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-fuzz4-'));
  const rnd = prng(20261203);
  const originals = new Map(SEEDS.map(([file]) => [file, fs.readFileSync(path.join(images, file))]));
  try {
    for (let i = 0; i < ITERATIONS; i++) {
      const [file, format, meta] = SEEDS[i % SEEDS.length];
      const img = Buffer.from(originals.get(file)!);
      for (let f = 1 + rnd(4); f > 0; f--) {
        const region = rnd(3);
        const at = region === 0 ? rnd(Math.min(img.length, 512)) : region === 1 ? rnd(Math.min(img.length, meta)) : rnd(img.length);
        img[at] = rnd(256);
      }
      const p = path.join(dir, `m${i}.${format}`);
      fs.writeFileSync(p, img);
      const what = `mutation ${i} of ${file}`;
      await typedOrNothing(`${what}: open+read`, async () => {
        const node = await openImage(p, { format, readOnly: true });
        try {
          for (let o = 0; o < node.size(); o += 1 << 20) await node.read(o, Math.min(1 << 20, node.size() - o));
        } finally {
          await node.close();
        }
      });
      await typedOrNothing(`${what}: check`, () => checkImage(p, { format }));
      await typedOrNothing(`${what}: map`, () => mapImage(p, { format }));
      await typedOrNothing(`${what}: writes`, async () => {
        const node = await openImage(p, { format, readOnly: false });
        try {
          const size = node.size();
          for (let k = 0; k < 3 && size > 0; k++) {
            const off = rnd(Math.max(1, size - 70000));
            const len = Math.min(size - off, 1 + rnd(70000));
            const op = rnd(3);
            if (op === 0) await node.write(off, Buffer.alloc(len, 0x5a));
            else if (op === 1) await node.writeZeroes(off, len, { unmap: rnd(2) === 1 });
            else await node.discard(off, len);
          }
        } finally {
          await node.close();
        }
      });
      // damage must not turn into an unbounded file
      assert.ok(fs.statSync(p).size < 256 * 1024 * 1024, `${what}: the file grew to ${fs.statSync(p).size} bytes`);
      fs.rmSync(p);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
