/**
 * qemu-img check for QED, as QEMU's qed-check does it: mark every cluster the
 * L1 table, the L2 tables and the data use; an offset outside the file (or not
 * aligned, or inside the header) is a corruption, a cluster used twice is a
 * corruption, a cluster of the file nobody uses is a leak. Repair drops the
 * invalid entries (they read as unallocated afterwards) and, when nothing is
 * left corrupt, clears the need-check flag. Leaks are only reported: QED
 * simply reuses no space, so they cost nothing but room.
 */
import type { CheckResult } from '../../../adapters/adapter.js';
import { clusterOffsetValid, F_NEED_CHECK, tableOffsetValid, ZERO_CLUSTER } from './header.js';
import type { QedImage } from './image.js';

export async function checkQed(img: QedImage, opts: { repair?: 'leaks' | 'all'; log?: (line: string) => void }): Promise<CheckResult> {
  const first = await pass(img, !!opts.repair, opts.log ?? (() => undefined));
  if (!opts.repair) return first.result;
  // Like qemu-img, report what is left after the repair, plus what was fixed.
  img.invalidateCache();
  const again = await pass(img, false, () => undefined);
  if (first.fixed) (again.result as unknown as Record<string, number>)['corruptions-fixed'] = first.fixed;
  return again.result;
}

async function pass(img: QedImage, fix: boolean, log: (line: string) => void): Promise<{ result: CheckResult; fixed: number }> {
  const h = img.header;
  const cs = img.clusterSize;
  const fileEnd = img.fileEnd;
  const nclusters = fileEnd / cs;
  const used = new Uint8Array(nclusters);
  let corruptions = 0;
  let fixed = 0;
  let allocated = 0;
  let fragmented = 0;
  const mark = (offset: number, n: number): boolean => {
    let dup = 0;
    for (let c = offset / cs, k = 0; k < n; k++, c++) {
      if (used[c]) dup++;
      used[c] = 1;
    }
    corruptions += dup;
    return dup === 0;
  };
  mark(h.l1TableOffset, h.tableSize);
  let l1Dirty = false;
  for (let i = 0; i < img.entries; i++) {
    const l2Off = img.l1Entry(i);
    if (l2Off === 0) continue;
    if (!tableOffsetValid(h, fileEnd, l2Off)) {
      log(`ERROR: invalid L2 table offset ${l2Off} in L1 entry ${i}`);
      if (fix) { img.l1.writeBigUInt64LE(0n, i * 8); l1Dirty = true; fixed++; } else corruptions++;
      continue;
    }
    if (!mark(l2Off, h.tableSize)) continue;
    const table = await img.l2Table(l2Off);
    let tableDirty = false;
    let last = 0;
    for (let j = 0; j < img.entries; j++) {
      const e = Number(table.readBigUInt64LE(j * 8));
      if (e === 0 || e === ZERO_CLUSTER) continue;
      allocated++;
      if (last && last + cs !== e) fragmented++;
      last = e;
      if (!clusterOffsetValid(h, fileEnd, e)) {
        log(`ERROR: invalid cluster offset ${e} in L2 entry ${j} of L1 entry ${i}`);
        if (fix) { table.writeBigUInt64LE(0n, j * 8); tableDirty = true; fixed++; } else corruptions++;
        continue;
      }
      mark(e, 1);
    }
    if (tableDirty) await img.file.write(l2Off, table);
  }
  if (l1Dirty) await img.file.write(h.l1TableOffset, img.l1);
  let leaks = 0;
  for (let c = h.headerSize; c < nclusters; c++) if (!used[c]) leaks++;
  if (fix && corruptions === 0 && (h.features & F_NEED_CHECK)) {
    await img.file.flush();
    h.features &= ~F_NEED_CHECK;
    await img.writeHeader();
  }
  const out: CheckResult = { 'check-errors': 0, exitCode: 0 };
  const put = (k: keyof CheckResult, v: number) => { if (v) (out as unknown as Record<string, number>)[k] = v; };
  put('corruptions', corruptions);
  put('leaks', leaks);
  put('total-clusters', Math.ceil(img.size() / cs));
  put('allocated-clusters', allocated);
  put('fragmented-clusters', fragmented);
  out.exitCode = corruptions ? 2 : leaks ? 3 : 0;
  return { result: out, fixed };
}
