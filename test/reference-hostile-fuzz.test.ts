/**
 * Mutation fuzzing of the qcow2 reader: golden images with a few random bytes
 * changed in the header, the tables or anywhere. Whatever the damage, open,
 * read, check, map and writes must either work or fail with a typed BlockError, and
 * finish quickly (no hang, no unbounded work). Seeded, so failures reproduce.
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
const SEEDS = ['qcow2-data-aligned', 'qcow2-cluster-512', 'qcow2-compressed-zlib', 'qcow2-extended-l2', 'qcow2-refcount-bits-1', 'qcow2-compressed-zstd', 'qcow2-lazy-refcounts-dirty'];
const ITERATIONS = Number(process.env.QBC_FUZZ_ITERATIONS ?? 800);

test(`${ITERATIONS} mutated qcow2 images give typed errors or data, never a crash or a hang`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-fuzz-'));
  const rnd = prng(20261125);
  try {
    for (let i = 0; i < ITERATIONS; i++) {
      const seed = SEEDS[i % SEEDS.length];
      const img = Buffer.from(fs.readFileSync(path.join(images, `${seed}.qcow2`)));
      const cs = 2 ** img.readUInt32BE(20);
      for (let f = 1 + rnd(4); f > 0; f--) {
        const region = rnd(3);
        const at = region === 0 ? rnd(112) : region === 1 ? rnd(Math.min(img.length, 6 * cs)) : rnd(img.length);
        img[at] = rnd(256);
      }
      const p = path.join(dir, `m${i}.qcow2`);
      fs.writeFileSync(p, img);
      const what = `mutation ${i} of ${seed}`;
      await typedOrNothing(`${what}: open+read`, async () => {
        const node = await openImage(p, { format: 'qcow2', readOnly: true });
        try {
          for (let o = 0; o < node.size(); o += 1 << 20) await node.read(o, Math.min(1 << 20, node.size() - o));
        } finally {
          await node.close();
        }
      });
      await typedOrNothing(`${what}: check`, () => checkImage(p, { format: 'qcow2' }));
      await typedOrNothing(`${what}: map`, () => mapImage(p, { format: 'qcow2' }));
      await typedOrNothing(`${what}: writes`, async () => {
        const node = await openImage(p, { format: 'qcow2', readOnly: false });
        try {
          const size = node.size();
          for (let k = 0; k < 4 && size > 0; k++) {
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
