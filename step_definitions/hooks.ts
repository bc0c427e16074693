/**
 * Life cycle: adapters once per worker, a fresh scratch directory per scenario,
 * and `@requires:<tool>` tags turned into "not applicable" when the tool is absent.
 */
import { mkdir, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { After, AfterAll, Before, BeforeAll, setDefaultTimeout } from '@cucumber/cucumber';
import { loadAdapter, repoRoot } from '../adapters/index.js';
import { adapters, type QbcWorld } from './world.js';
import { toolAvailable } from './support/tools.js';

// Every adapter call has its own (shorter) timeout; this only guards a step made of many calls.
setDefaultTimeout(180_000);

BeforeAll(async function (this: { parameters: Record<string, unknown> }) {
  const impl = typeof this.parameters.impl === 'string' ? this.parameters.impl : 'reference';
  const oracle = typeof this.parameters.oracle === 'string' ? this.parameters.oracle : 'qemu';
  adapters.iut = await loadAdapter(impl);
  adapters.oracle = oracle === 'none' ? null : await loadAdapter(oracle);
});

AfterAll(async function () {
  await adapters.iut?.dispose?.();
  if (adapters.oracle !== adapters.iut) await adapters.oracle?.dispose?.();
});

export const SCRATCH_ROOT = join(repoRoot(), '.tmp', 'scenarios');

Before(async function (this: QbcWorld, { pickle }) {
  this.scratch = join(SCRATCH_ROOT, randomUUID());
  await mkdir(this.scratch, { recursive: true });
  for (const tag of pickle.tags) {
    const m = /^@requires:(.+)$/.exec(tag.name);
    if (m && !(await toolAvailable(m[1]!))) return this.notApplicable(`required tool ${m[1]} is not installed`);
  }
  return undefined;
});

After(function (this: QbcWorld, { result }) {
  // The oracle made the image and the implementation was never asked anything: the steps
  // judged the oracle alone, which says nothing about the implementation.
  if (result?.status === 'PASSED' && this.madeByOracle && !this.iutActed) {
    return this.notApplicable(`only the oracle acted: ${adapters.iut?.name ?? 'the implementation'} was asked nothing about the image ${adapters.oracle?.name ?? 'the oracle'} made`);
  }
  return undefined;
});

After(async function (this: QbcWorld) {
  if (this.scratch) await rm(this.scratch, { recursive: true, force: true });
});
