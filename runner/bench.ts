/**
 * `qbc bench` (npm run bench): the reference against qemu-img on the same
 * machine in the same run. Fixture: a 1 GiB qcow2 image whose every other
 * MiB holds random data (half full). Timed, as whole commands, each the best
 * of N runs:
 *   convert qcow2 -> raw, convert raw -> qcow2, and 4 KiB random reads
 *   (the same offsets fed to qemu-io and qbc io on standard input).
 * Areas add cases in runner/bench/<area>.ts (listed in runner/bench/index.ts);
 * `--only AREA` runs one area's cases (comma-separated for several), building
 * only their fixtures.
 * Prints wall times and the reference/qemu ratio; writes reports/bench.json.
 * Not a test: nothing fails on speed, the figures are for people.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GiB, MiB, root, type BenchContext, type Case } from './bench/case.js';
import { caseGroups } from './bench/index.js';

async function timed(fn: () => Promise<void>, runs: number, cleanup?: () => void): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    cleanup?.();
    const t = process.hrtime.bigint();
    await fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
  }
  cleanup?.();
  return best;
}

async function fixture(dir: string, sizeBytes: number): Promise<{ qcow2: string; raw: string }> {
  const raw = path.join(dir, 'half.raw');
  const fd = fs.openSync(raw, 'w');
  fs.ftruncateSync(fd, sizeBytes);
  // every other MiB random: half full, in runs qcow2 allocates as clusters
  for (let off = 0; off < sizeBytes; off += 2 * MiB) fs.writeSync(fd, randomBytes(MiB), 0, MiB, off);
  fs.closeSync(fd);
  const qcow2 = path.join(dir, 'half.qcow2');
  await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  return { qcow2, raw };
}

export async function main(argv: string[]): Promise<number> {
  const arg = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
  const runs = Number(arg('--runs')) || 3;
  const reads = Number(arg('--reads')) || 20000;
  const size = (Number(arg('--size-gib')) || 1) * GiB;
  const only = arg('--only');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-bench-'));
  const exits: Array<() => Promise<void>> = [];
  try {
    process.stdout.write(`qbc bench: ${size / GiB} GiB images half filled with random data, best of ${runs}\n`);
    const { qcow2, raw } = await fixture(dir, size);
    const ctx: BenchContext = { dir, size, raw, qcow2, reads, atExit: (fn) => { exits.push(fn); } };
    const results: Array<{ area: string; name: string; qemuMs: number; referenceMs: number; ratio: number }> = [];
    for (const [area, group] of caseGroups) {
      // a group is only built (its untimed fixtures made) when it is to run
      if (only && !only.split(',').includes(area)) continue;
      const cases: Case[] = await group(ctx);
      for (const c of cases) {
        const qemuMs = await timed(c.qemu, runs, c.cleanup);
        const referenceMs = await timed(c.reference, runs, c.cleanup);
        const ratio = referenceMs / qemuMs;
        results.push({ area, name: c.name, qemuMs, referenceMs, ratio });
        process.stdout.write(`${`${area}: ${c.name}`.padEnd(40)} qemu ${qemuMs.toFixed(0).padStart(6)} ms   reference ${referenceMs.toFixed(0).padStart(6)} ms   ratio ${ratio.toFixed(2)}\n`);
      }
    }
    const report = path.join(root, 'reports', 'bench.json');
    fs.mkdirSync(path.dirname(report), { recursive: true });
    fs.writeFileSync(report, JSON.stringify({ date: new Date().toISOString(), sizeBytes: size, runs, reads, results }, null, 2) + '\n');
    process.stdout.write(`written ${path.relative(process.cwd(), report)}\n`);
    return 0;
  } finally {
    for (const fn of exits.reverse()) await fn().catch((e: Error) => process.stderr.write(`bench: cleanup failed: ${e.message}\n`));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
