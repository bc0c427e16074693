/**
 * `qbc bench` (npm run bench): the reference against qemu-img on the same
 * machine in the same run. Fixture: a 1 GiB qcow2 image whose every other
 * MiB holds random data (half full). Timed, as whole commands, each the best
 * of N runs:
 *   convert qcow2 -> raw, convert raw -> qcow2, and 4 KiB random reads
 *   (the same offsets fed to qemu-io and qbc io on standard input).
 * Prints wall times and the reference/qemu ratio; writes reports/bench.json.
 * Not a test: nothing fails on speed, the figures are for people.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const QBC_IMG = path.join(root, 'bin', 'qbc-img');
const QBC_IO = path.join(root, 'bin', 'qbc-io');
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

interface Case { name: string; qemu: () => Promise<void>; reference: () => Promise<void>; cleanup?: () => void }

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
  const runs = Number(argv[argv.indexOf('--runs') + 1]) || 3;
  const reads = Number(argv[argv.indexOf('--reads') + 1]) || 20000;
  const size = (Number(argv[argv.indexOf('--size-gib') + 1]) || 1) * GiB;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-bench-'));
  try {
    process.stdout.write(`qbc bench: ${size / GiB} GiB qcow2 image half filled with random data, best of ${runs}\n`);
    const { qcow2, raw } = await fixture(dir, size);
    const out = path.join(dir, 'out');
    const rm = () => fs.rmSync(out, { force: true });
    const offsets = Array.from({ length: reads }, () => Math.floor(Math.random() * (size / 4096)) * 4096);
    const script = offsets.map((o) => `read -q ${o} 4k`).join('\n') + '\n';
    const cases: Case[] = [
      {
        name: 'convert qcow2 -> raw',
        qemu: async () => { await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow2, out]); },
        reference: async () => { await execa(QBC_IMG, ['convert', '-f', 'qcow2', '-O', 'raw', qcow2, out]); },
        cleanup: rm,
      },
      {
        name: 'convert raw -> qcow2',
        qemu: async () => { await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, out]); },
        reference: async () => { await execa(QBC_IMG, ['convert', '-f', 'raw', '-O', 'qcow2', raw, out]); },
        cleanup: rm,
      },
      {
        name: `${reads} random 4 KiB reads`,
        qemu: async () => { await execa('qemu-io', ['-r', '-f', 'qcow2', qcow2], { input: script }); },
        reference: async () => { await execa(QBC_IO, ['-r', '-f', 'qcow2', qcow2], { input: script }); },
      },
    ];
    const results: Array<{ name: string; qemuMs: number; referenceMs: number; ratio: number }> = [];
    for (const c of cases) {
      const qemuMs = await timed(c.qemu, runs, c.cleanup);
      const referenceMs = await timed(c.reference, runs, c.cleanup);
      const ratio = referenceMs / qemuMs;
      results.push({ name: c.name, qemuMs, referenceMs, ratio });
      process.stdout.write(`${c.name.padEnd(28)} qemu ${qemuMs.toFixed(0).padStart(6)} ms   reference ${referenceMs.toFixed(0).padStart(6)} ms   ratio ${ratio.toFixed(2)}\n`);
    }
    const report = path.join(root, 'reports', 'bench.json');
    fs.mkdirSync(path.dirname(report), { recursive: true });
    fs.writeFileSync(report, JSON.stringify({ date: new Date().toISOString(), sizeBytes: size, runs, reads, results }, null, 2) + '\n');
    process.stdout.write(`written ${path.relative(process.cwd(), report)}\n`);
    return 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
