/** What the mutation-fuzz tests share: a seeded PRNG, and the judgement of one attempt on a mutated image. */
import assert from 'node:assert/strict';
import { BlockError } from '../../reference/errors.js';

/** mulberry32, a tiny seeded PRNG: prng(seed)(n) is an integer in [0, n). The same seed gives the same run. */
export function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** fn may succeed or throw a BlockError; anything else, or taking longer than limitMs (a hang), fails. */
export async function typedOrNothing(what: string, fn: () => Promise<unknown>, limitMs = 10_000): Promise<void> {
  const t = Date.now();
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof BlockError, `${what} threw ${(e as Error).stack}`);
  }
  assert.ok(Date.now() - t < limitMs, `${what} took ${Date.now() - t} ms`);
}
