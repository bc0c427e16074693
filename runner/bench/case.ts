/**
 * What a benchmark case is and what it gets to work with. Each area of the
 * suite (a format, a protocol) keeps its cases in its own module under
 * runner/bench/ and lists it in runner/bench/index.ts, so adding a case
 * never touches another area's code.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const QBC_IMG = path.join(root, 'bin', 'qbc-img');
export const QBC_IO = path.join(root, 'bin', 'qbc-io');
export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

/** One timed comparison: the same job done by qemu and by the reference, each a whole command. */
export interface Case {
  name: string;
  qemu: () => Promise<void>;
  reference: () => Promise<void>;
  /** Runs before every timed run and after the last (removes outputs). */
  cleanup?: () => void;
}

/** Shared by every case of one bench run. */
export interface BenchContext {
  /** A scratch directory removed when the run ends. */
  dir: string;
  /** Virtual size of the shared fixtures (1 GiB unless --size-gib). */
  size: number;
  /** A raw image of `size` bytes, every other MiB random (half full). */
  raw: string;
  /** The same guest data as qcow2, made by qemu-img convert. */
  qcow2: string;
  /** Number of random reads for read cases (--reads). */
  reads: number;
  /** Register what must be undone when the run ends (servers a group started), in any case. */
  atExit(fn: () => Promise<void>): void;
}

/** A module of cases: may build its own fixtures in ctx.dir (untimed). */
export type CaseGroup = (ctx: BenchContext) => Promise<Case[]>;
