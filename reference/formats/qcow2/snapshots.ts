/**
 * qcow2 internal snapshots: create, apply (goto) and delete, step for step as
 * QEMU's block/qcow2-snapshot.c orders them, so that the same commands give the
 * same file. A snapshot is a copy of the active L1 table; everything it reaches
 * gains one reference, so later guest writes copy shared clusters first.
 */
import { BlockError } from '../../errors.js';
import { MAX_L1_BYTES } from './layout.js';
import type { Qcow2Image } from './image.js';
import { MAX_SNAPSHOTS, serializeSnapshotTable, type Qcow2Snapshot } from './snapshot-table.js';

export interface SnapshotCreateInfo {
  name: string;
  /** seconds and nanoseconds since the epoch (qemu-img: the time of the call, microsecond precision) */
  dateSec: number;
  dateNsec: number;
  vmClockNsec?: number;
  vmStateSize?: number;
  icount?: number;
}

/** qemu-img snapshot -c: a new snapshot of the active state; its ID is one more than the largest. */
export async function createSnapshot(img: Qcow2Image, info: SnapshotCreateInfo): Promise<Qcow2Snapshot> {
  await img.beginMetadataChange();
  if (img.snapshots.length >= MAX_SNAPSHOTS) throw new BlockError('invalid-option', `File too large: an image holds at most ${MAX_SNAPSHOTS} snapshots`, { field: 'nb_snapshots' });
  const cs = img.clusterSize;
  let maxId = 0;
  for (const sn of img.snapshots) maxId = Math.max(maxId, leadingNumber(sn.id));
  const l1Size = img.l1.length;
  // the copy of the active L1 table, flags and all
  const l1Copy = await img.l1Bytes();
  const l1TableOffset = await img.refcounts.alloc(Math.ceil((l1Size * 8) / cs));
  if (l1Size) await img.file.write(l1TableOffset, l1Copy);
  const active = await img.activeL1Entries();
  const adjusted = await img.adjustTreeRefcounts(active, 1);
  if (adjusted.modified) await img.setActiveL1(adjusted.entries);
  const sn: Qcow2Snapshot = {
    l1TableOffset, l1Size, id: String(maxId + 1), name: info.name,
    dateSec: info.dateSec, dateNsec: info.dateNsec, vmClockNsec: info.vmClockNsec ?? 0,
    vmStateSize: info.vmStateSize ?? 0, diskSize: img.size(), icount: info.icount ?? 0, unknownExtra: Buffer.alloc(0),
  };
  await writeSnapshotTable(img, [...img.snapshots, sn]);
  await img.endMetadataChange();
  return sn;
}

/** find_snapshot_by_id_or_name: an ID first, then a name (the first that matches). */
export function findSnapshot(img: Qcow2Image, idOrName: string): number {
  const byId = img.snapshots.findIndex((s) => s.id === idOrName);
  return byId >= 0 ? byId : img.snapshots.findIndex((s) => s.name === idOrName);
}

/** qemu-img snapshot -a: the active state becomes the snapshot's (its size too). */
export async function applySnapshot(img: Qcow2Image, idOrName: string): Promise<void> {
  // 7.2 refuses any image with persistent bitmaps (enabled or not), before looking the name up
  if (img.bitmaps?.bitmaps.length) throw new BlockError('unsupported', `Could not apply snapshot '${idOrName}': Device has active dirty bitmaps`, { field: 'bitmaps', value: idOrName });
  const i = findSnapshot(img, idOrName);
  if (i < 0) throw new BlockError('not-found', `Could not apply snapshot '${idOrName}': Failed to load snapshot: No such file or directory`, { value: idOrName });
  const sn = img.snapshots[i];
  await img.beginMetadataChange();
  validateSnapshotL1(img, sn, `Could not apply snapshot '${idOrName}': `);
  if (sn.diskSize !== img.size()) await img.resize(sn.diskSize, { shrink: true });
  await img.growL1(sn.l1Size);
  const snL1 = await readL1(img, sn);
  // Take the snapshot tree's references before the active L1 is overwritten...
  const snAdjusted = await img.adjustTreeRefcounts(snL1, 1);
  if (snAdjusted.modified) await writeL1(img, sn.l1TableOffset, snAdjusted.entries);
  const oldActive = await img.activeL1Entries();
  const padded = Array.from({ length: img.l1.length }, (_, k) => snL1[k] ?? 0n);
  await img.setActiveL1(padded);
  // ...then drop the old active tree's, and set the COPIED flags of the new one.
  await img.adjustTreeRefcounts(oldActive, -1);
  const now = await img.adjustTreeRefcounts(padded, 0);
  if (now.modified) await img.setActiveL1(now.entries);
  await img.endMetadataChange();
}

/**
 * qemu-img snapshot -d: by name only (qemu-img 7.2 looks the name up with
 * bdrv_snapshot_find, which compares names, unlike -a); everything only the
 * snapshot held is freed.
 */
export async function deleteSnapshot(img: Qcow2Image, idOrName: string): Promise<void> {
  const i = img.snapshots.findIndex((s) => s.name === idOrName);
  if (i < 0) throw new BlockError('not-found', `Could not delete snapshot '${idOrName}': snapshot not found`, { value: idOrName });
  const sn = img.snapshots[i];
  await img.beginMetadataChange();
  validateSnapshotL1(img, sn, `Could not delete snapshot '${idOrName}': `);
  await writeSnapshotTable(img, img.snapshots.filter((_, k) => k !== i));
  const snL1 = await readL1(img, sn);
  await img.adjustTreeRefcounts(snL1, -1);
  if (sn.l1Size) await img.refcounts.addRange(sn.l1TableOffset, Math.ceil((sn.l1Size * 8) / img.clusterSize), -1);
  const now = await img.adjustTreeRefcounts(await img.activeL1Entries(), 0);
  if (now.modified) await img.setActiveL1(now.entries);
  await img.endMetadataChange();
}

/** qcow2_validate_table for a snapshot's L1 table, with QEMU's words. */
export function validateSnapshotL1(img: Qcow2Image, sn: Qcow2Snapshot, prefix = ''): void {
  if (sn.l1Size * 8 > MAX_L1_BYTES) throw new BlockError('malformed', `${prefix}Snapshot L1 table too large (l1_size ${sn.l1Size} of snapshot ${sn.id}, at most ${MAX_L1_BYTES / 8})`, { field: 'snapshot table' });
  if (sn.l1TableOffset % img.clusterSize !== 0 || sn.l1TableOffset + sn.l1Size * 8 > img.file.size() || (sn.l1Size && sn.l1TableOffset < img.clusterSize)) {
    throw new BlockError('malformed', `${prefix}Snapshot L1 table offset invalid (0x${sn.l1TableOffset.toString(16)} of snapshot ${sn.id})`, { field: 'snapshot table' });
  }
}

async function readL1(img: Qcow2Image, sn: Qcow2Snapshot): Promise<bigint[]> {
  const raw = sn.l1Size ? await img.file.read(sn.l1TableOffset, sn.l1Size * 8) : Buffer.alloc(0);
  const out: bigint[] = [];
  for (let k = 0; k < sn.l1Size; k++) out.push(raw.readBigUInt64BE(k * 8));
  return out;
}

async function writeL1(img: Qcow2Image, offset: number, entries: readonly bigint[]): Promise<void> {
  const b = Buffer.alloc(entries.length * 8);
  entries.forEach((v, k) => b.writeBigUInt64BE(v, k * 8));
  await img.file.write(offset, b);
}

/**
 * qcow2_write_snapshots: the whole table at a new place, the header pointed at
 * it, the old table freed. An empty table is "allocated" at the free cursor with
 * no clusters, as QEMU does (usually offset 0).
 */
async function writeSnapshotTable(img: Qcow2Image, list: Qcow2Snapshot[]): Promise<void> {
  const cs = img.clusterSize;
  const bytes = serializeSnapshotTable(list);
  const offset = await img.refcounts.alloc(Math.ceil(bytes.length / cs));
  if (bytes.length) await img.file.write(offset, bytes);
  const h = Buffer.alloc(12);
  h.writeUInt32BE(list.length, 0);
  h.writeBigUInt64BE(BigInt(offset), 4);
  await img.file.write(60, h);
  const oldOffset = img.header.snapshotsOffset;
  const oldSize = img.snapshotsSize;
  if (oldSize) await img.refcounts.addRange(oldOffset, Math.ceil(oldSize / cs), -1);
  img.header.nbSnapshots = list.length;
  img.header.snapshotsOffset = offset;
  img.snapshots = list;
  img.snapshotsSize = bytes.length;
}

/** strtoul's reading of an ID: its leading decimal digits, 0 without any. */
function leadingNumber(id: string): number {
  const m = /^\s*\+?(\d+)/.exec(id);
  return m ? Number(m[1]) : 0;
}
