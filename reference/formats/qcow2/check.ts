/**
 * qcow2 consistency check and repair (qemu-img check [-r leaks|all]).
 *
 * Rebuild the refcount every cluster should have by walking the metadata
 * (header, L1, L2 tables, data clusters, refcount table and blocks), then
 * compare with the stored counts: stored below expected is a corruption (a
 * cluster could be handed out twice), above is a leak (space lost). Repair
 * rewrites the stored counts; with "all" it also fixes corruptions.
 */
import type { CheckResult } from '../../../adapters/adapter.js';
import { EXT_CRYPTO_HEADER, INCOMPAT_CORRUPT, INCOMPAT_DIRTY, MAX_L1_BYTES } from './layout.js';
import type { Qcow2Image } from './image.js';

export interface CheckOptions {
  repair?: 'leaks' | 'all';
  /** messages as qemu-img prints them (ERROR ..., Leaked cluster ...) */
  log?: (line: string) => void;
}

interface Tally {
  /** references found per host cluster of the file (nothing beyond the file is counted: that is an error) */
  expected: Uint32Array;
  corruptions: number;
  checkErrors: number;
  allocated: number;
  fragmented: number;
  compressed: number;
  /** L2 entries whose COPIED flag disagrees with the refcount: [l2 offset, index] */
  copiedFixes: Array<{ table: number; index: number; l1: boolean }>;
}

export async function checkQcow2(img: Qcow2Image, opts: CheckOptions = {}): Promise<CheckResult> {
  const log = opts.log ?? (() => undefined);
  const cs = img.clusterSize;
  const fileClusters = Math.ceil(img.file.size() / cs);
  const first = await tally(img, log);

  let leaks = 0;
  let corruptions = first.corruptions;
  let leaksFixed = 0;
  let corruptionsFixed = 0;
  const rc = img.refcounts;
  // Bounded by the file: a hostile table pointing far beyond it cannot make this loop long.
  for (let i = 0; i < fileClusters; i++) {
    const want = first.expected[i];
    const have = await rc.get(i);
    if (want === have) continue;
    const leak = have > want;
    const fix = opts.repair === 'all' || (opts.repair === 'leaks' && leak);
    log(`${fix ? 'Repairing' : leak ? 'Leaked' : 'ERROR'} cluster ${i} refcount=${have} reference=${want}`);
    if (leak) leaks++; else corruptions++;
    if (fix) {
      await setRefcount(img, i, want);
      if (leak) leaksFixed++; else corruptionsFixed++;
    }
  }
  if (opts.repair === 'all') {
    for (const f of first.copiedFixes) {
      await fixCopied(img, f);
      corruptionsFixed++;
    }
  }
  if (opts.repair) await rc.flush();

  // After a repair, report what is left, as qemu-img does.
  let result = { leaks, corruptions };
  let tallyNow = first;
  if (opts.repair && (leaksFixed || corruptionsFixed)) {
    rc.invalidate();
    tallyNow = await tally(img, () => undefined);
    let l = 0;
    let c = tallyNow.corruptions;
    for (let i = 0; i < tallyNow.expected.length; i++) {
      const want = tallyNow.expected[i];
      const have = await rc.get(i);
      if (have > want) l++;
      else if (have < want) c++;
    }
    result = { leaks: l, corruptions: c };
  }
  // A repair that leaves no corruption marks the image clean and consistent again.
  if (opts.repair && tallyNow.checkErrors === 0 && result.corruptions === 0) {
    if (img.dirty) await img.setIncompatBit(INCOMPAT_DIRTY, false);
    if (img.corrupt) await img.setIncompatBit(INCOMPAT_CORRUPT, false);
  }
  let highest = -1;
  for (let k = tallyNow.expected.length - 1; k >= 0; k--) if (tallyNow.expected[k] > 0) { highest = k; break; }
  const out: CheckResult = { 'check-errors': tallyNow.checkErrors, exitCode: 0 };
  // Like qemu-img, counters that are zero are left out.
  const put = (k: keyof CheckResult, v: number) => { if (v) (out as unknown as Record<string, number>)[k] = v; };
  put('image-end-offset', (highest + 1) * cs);
  put('corruptions', result.corruptions);
  put('leaks', result.leaks);
  put('corruptions-fixed', corruptionsFixed);
  put('leaks-fixed', leaksFixed);
  put('total-clusters', Math.ceil(img.size() / cs));
  put('allocated-clusters', tallyNow.allocated);
  put('fragmented-clusters', tallyNow.fragmented);
  put('compressed-clusters', tallyNow.compressed);
  out.exitCode = out['check-errors'] ? 1 : result.corruptions ? 2 : result.leaks ? 3 : 0;
  return out;
}

async function tally(img: Qcow2Image, log: (l: string) => void): Promise<Tally> {
  const cs = img.clusterSize;
  const fileSize = img.file.size();
  const fileClusters = Math.ceil(fileSize / cs);
  const t: Tally = { expected: new Uint32Array(fileClusters), corruptions: 0, checkErrors: 0, allocated: 0, fragmented: 0, compressed: 0, copiedFixes: [] };
  /**
   * Count a reference to the clusters of [offset, offset+bytes). Starting past
   * the end of the file is a corruption (a cluster may end past it: QEMU does
   * not always write a cluster's tail, e.g. unallocated subclusters).
   */
  const ref = (offset: number, bytes: number, what: string): boolean => {
    if (offset >= fileSize) {
      log(`ERROR ${what} at offset=0x${offset.toString(16)} is beyond the end of the image file`);
      t.corruptions++;
      return false;
    }
    const a = Math.floor(offset / cs);
    const b = Math.min(fileClusters - 1, Math.floor((offset + bytes - 1) / cs));
    for (let c = a; c <= b; c++) t.expected[c]++;
    return true;
  };
  ref(0, Math.min(cs, fileSize), 'header');
  if (img.header.l1Size) ref(img.header.l1TableOffset, img.header.l1Size * 8, 'L1 table');
  // a LUKS-encrypted image's header and key slots (the full disk encryption header extension)
  const cryptoExt = img.extensions.find((e) => e.type === EXT_CRYPTO_HEADER);
  if (cryptoExt && cryptoExt.data.length >= 16) ref(Number(cryptoExt.data.readBigUInt64BE(0)), Number(cryptoExt.data.readBigUInt64BE(8)), 'encryption header');
  for (let i = 0; i < img.l1.length; i++) {
    // QEMU measures fragmentation within each L2 table.
    let nextContiguous = 0;
    const l2Off = img.l1[i];
    if (!l2Off) continue;
    if (!ref(l2Off, cs, 'L2 table')) continue;
    const l1Copied = await entryCopiedFlag(img, img.header.l1TableOffset + i * 8);
    const l2Refs = await img.refcounts.get(l2Off / cs);
    if (l1Copied !== (l2Refs === 1)) {
      log(`ERROR OFLAG_COPIED L2 cluster: l1_index=${i} l1_entry=${l2Off.toString(16)} refcount=${l2Refs}`);
      t.corruptions++;
      t.copiedFixes.push({ table: img.header.l1TableOffset, index: i, l1: true });
    }
    const table = await img.file.read(l2Off, cs);
    for (let j = 0; j < img.l2.entries; j++) {
      const e = img.l2.decode(table, j);
      if (e.kind === 'compressed') {
        t.allocated++;
        t.compressed++;
        // Compressed clusters count as fragmented: adjacent ones share sectors.
        t.fragmented++;
        ref(e.host, Math.max(1, e.compressedSize), 'compressed cluster');
        continue;
      }
      if (e.kind !== 'normal' && e.kind !== 'zero-alloc') continue;
      if (e.host % cs) {
        log(`ERROR offset=${e.host.toString(16)}: Cluster is not properly aligned; L2 entry corrupted.`);
        t.corruptions++;
        continue;
      }
      t.allocated++;
      if (nextContiguous && e.host !== nextContiguous) t.fragmented++;
      nextContiguous = e.host + cs;
      // Clusters of an external data file are not refcounted.
      if (img.hasDataFile) continue;
      if (!ref(e.host, cs, 'data cluster')) continue;
      const refs = await img.refcounts.get(e.host / cs);
      if (e.copied !== (refs === 1)) {
        log(`ERROR OFLAG_COPIED data cluster: l2_entry=${e.host.toString(16)} refcount=${refs}`);
        t.corruptions++;
        t.copiedFixes.push({ table: l2Off, index: j, l1: false });
      }
    }
  }
  // Every snapshot's tree counts too (QEMU checks no flags or statistics there).
  for (const sn of img.snapshots) {
    if (sn.l1Size * 8 > MAX_L1_BYTES) {
      log(`ERROR snapshot ${sn.id} (${sn.name}) l1_size=0x${sn.l1Size.toString(16)}: L1 table is too large; snapshot table entry corrupted`);
      t.corruptions++;
      continue;
    }
    if (sn.l1TableOffset % cs) {
      log(`ERROR snapshot ${sn.id} (${sn.name}) l1_offset=0x${sn.l1TableOffset.toString(16)}: L1 table is not cluster-aligned; snapshot table entry corrupted`);
      t.corruptions++;
      continue;
    }
    if (!sn.l1Size) continue;
    if (!ref(sn.l1TableOffset, sn.l1Size * 8, 'snapshot L1 table')) continue;
    if (sn.l1TableOffset + sn.l1Size * 8 > fileSize) continue;
    const raw = await img.file.read(sn.l1TableOffset, sn.l1Size * 8);
    for (let i = 0; i < sn.l1Size; i++) {
      const l2Off = Number(raw.readBigUInt64BE(i * 8) & 0x00fffffffffffe00n);
      if (!l2Off) continue;
      if (l2Off % cs) {
        log(`ERROR snapshot ${sn.id} L1 entry ${i}: L2 table offset 0x${l2Off.toString(16)} is not cluster aligned`);
        t.corruptions++;
        continue;
      }
      if (!ref(l2Off, cs, 'L2 table')) continue;
      if (l2Off + cs > fileSize) continue;
      const table = await img.file.read(l2Off, cs);
      for (let j = 0; j < img.l2.entries; j++) {
        const e = img.l2.decode(table, j);
        if (e.kind === 'compressed') ref(e.host, Math.max(1, e.compressedSize), 'compressed cluster');
        else if ((e.kind === 'normal' || e.kind === 'zero-alloc') && !img.hasDataFile) {
          if (e.host % cs) {
            log(`ERROR offset=${e.host.toString(16)}: Cluster is not properly aligned; L2 entry corrupted.`);
            t.corruptions++;
          } else ref(e.host, cs, 'data cluster');
        }
      }
    }
  }
  if (img.snapshotsSize) ref(img.header.snapshotsOffset, img.snapshotsSize, 'snapshot table');
  // Persistent bitmaps: the directory, each bitmap table and its data clusters.
  if (img.bitmaps) {
    ref(img.bitmaps.offset, img.bitmaps.size, 'bitmap directory');
    for (const b of img.bitmaps.bitmaps) {
      if (!b.tableSize) continue;
      if (!ref(b.tableOffset, b.tableSize * 8, 'bitmap table')) continue;
      const raw = await img.file.read(b.tableOffset, b.tableSize * 8);
      for (let k = 0; k < b.tableSize; k++) {
        const data = Number(raw.readBigUInt64BE(k * 8) & 0x00fffffffffffe00n);
        if (!data) continue;
        if (data % cs) {
          log(`ERROR bitmap '${b.name}': data cluster 0x${data.toString(16)} is not cluster aligned`);
          t.corruptions++;
        } else ref(data, cs, 'bitmap data cluster');
      }
    }
  }
  // Refcount metadata counts itself.
  const rc = img.refcounts;
  ref(rc.tableOffset, rc.table.length * 8, 'refcount table');
  for (const off of rc.table) if (off) ref(off, cs, 'refcount block');
  return t;
}

async function entryCopiedFlag(img: Qcow2Image, at: number): Promise<boolean> {
  const b = await img.file.read(at, 1);
  return (b[0] & 0x80) !== 0;
}

async function setRefcount(img: Qcow2Image, cluster: number, value: number): Promise<void> {
  const cur = await img.refcounts.get(cluster);
  const off = cluster * img.clusterSize;
  if (value > cur) for (let k = cur; k < value; k++) await img.refcounts.increment(off, 1);
  else for (let k = cur; k > value; k--) await img.refcounts.decrement(off, 1);
}

async function fixCopied(img: Qcow2Image, f: { table: number; index: number; l1: boolean }): Promise<void> {
  const esize = f.l1 ? 8 : img.l2.entrySize;
  const at = f.table + f.index * esize;
  const b = await img.file.read(at, 8);
  const v = b.readBigUInt64BE(0);
  const host = Number(v & 0x00fffffffffffe00n);
  const refs = await img.refcounts.get(host / img.clusterSize);
  const nv = refs === 1 ? v | (1n << 63n) : v & ~(1n << 63n);
  b.writeBigUInt64BE(nv);
  await img.file.write(at, b);
}
