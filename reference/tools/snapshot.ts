/**
 * qemu-img snapshot [-l | -c NAME | -a NAME | -d NAME] FILE: internal snapshots
 * (qcow2 only among the reference's formats), and the snapshot list as
 * qemu-img info and snapshot -l show it.
 */
import { BlockError } from '../errors.js';
import { openImage } from '../graph/open.js';
import { Qcow2Image } from '../formats/qcow2/image.js';
import { applySnapshot, createSnapshot, deleteSnapshot } from '../formats/qcow2/snapshots.js';
import type { Qcow2Snapshot } from '../formats/qcow2/snapshot-table.js';

export type SnapshotAction = 'list' | 'create' | 'apply' | 'delete';

export interface SnapshotRequest {
  filename: string;
  format?: string;
  action: SnapshotAction;
  /** the snapshot's name (create) or ID/name (apply, delete) */
  name?: string;
  /** create: when, instead of now (tests pin it) */
  date?: Date;
}

/** One entry of qemu-img info's "snapshots" list, keys in the order qemu-img 7.2 prints them. */
export interface SnapshotInfoJson {
  icount?: number;
  'vm-clock-nsec': number;
  name: string;
  'date-sec': number;
  'date-nsec': number;
  'vm-clock-sec': number;
  id: string;
  'vm-state-size': number;
}

export function snapshotInfo(sn: Qcow2Snapshot): SnapshotInfoJson {
  const out: Partial<SnapshotInfoJson> = {};
  if (sn.icount !== -1) out.icount = sn.icount;
  out['vm-clock-nsec'] = sn.vmClockNsec % 1e9;
  out.name = sn.name;
  out['date-sec'] = sn.dateSec;
  out['date-nsec'] = sn.dateNsec;
  out['vm-clock-sec'] = Math.floor(sn.vmClockNsec / 1e9);
  out.id = sn.id;
  out['vm-state-size'] = sn.vmStateSize;
  return out as SnapshotInfoJson;
}

export async function snapshotImage(req: SnapshotRequest): Promise<SnapshotInfoJson[]> {
  const needsName = req.action !== 'list';
  if (needsName && req.name === undefined) throw new BlockError('invalid-option', `snapshot -${req.action[0]}: a snapshot name is required`, { option: req.action });
  const node = await openImage(req.filename, { format: req.format, readOnly: req.action === 'list', noBacking: true });
  try {
    if (!(node instanceof Qcow2Image)) {
      if (req.action === 'list') return [];
      throw new BlockError('unsupported', `Could not ${req.action} snapshot '${req.name}': Operation not supported (format '${node.driver}' has no internal snapshots)`, { option: 'format' });
    }
    if (req.action === 'create') {
      const when = req.date ?? new Date();
      const ms = when.getTime();
      try {
        await createSnapshot(node, { name: req.name!.slice(0, 255), dateSec: Math.floor(ms / 1000), dateNsec: (ms % 1000) * 1e6 });
      } catch (e) {
        if (e instanceof BlockError) throw new BlockError(e.code, `Could not create snapshot '${req.name}': ${e.message}`, { field: e.field, option: e.option });
        throw e;
      }
    } else if (req.action === 'apply') await applySnapshot(node, req.name!);
    else if (req.action === 'delete') await deleteSnapshot(node, req.name!);
    return node.snapshots.map(snapshotInfo);
  } finally {
    await node.close();
  }
}

/** qemu-img's snapshot table (bdrv_snapshot_dump), dates in local time; empty when there are none. */
export function snapshotTable(list: readonly SnapshotInfoJson[]): string {
  if (!list.length) return '';
  const lines = ['Snapshot list:', `${'ID'.padEnd(10)}${'TAG'.padEnd(17)}${'VM SIZE'.padStart(8)}${'DATE'.padStart(20)}${'VM CLOCK'.padStart(13)}${'ICOUNT'.padStart(11)}`];
  for (const s of list) {
    const d = new Date(s['date-sec'] * 1000);
    const p2 = (n: number) => String(n).padStart(2, '0');
    const date = `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
    const secs = s['vm-clock-sec'];
    const ms = Math.floor(s['vm-clock-nsec'] / 1e6) % 1000;
    const clock = `${p2(Math.floor(secs / 3600))}:${p2(Math.floor(secs / 60) % 60)}:${p2(secs % 60)}.${String(ms).padStart(3, '0')}`;
    const icount = s.icount === undefined ? '' : String(s.icount);
    lines.push(`${s.id.padEnd(9)} ${s.name.padEnd(16)} ${sizeToStr(s['vm-state-size']).padStart(8)}${date.padStart(20)}${clock.padStart(13)}${icount.padStart(11)}`);
  }
  return lines.join('\n');
}

/** QEMU's size_to_str: "%0.3g" of the value in the unit it reaches 1000 of (so 1000 B is 0.977 KiB). */
export function sizeToStr(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  const x = n / (1000 / 1024);
  const i = x >= 1 ? Math.min(6, Math.floor(Math.floor(Math.log2(x)) / 10)) : 0;
  return `${formatG3(n / 2 ** (10 * i))} ${units[i]}`;
}

function formatG3(v: number): string {
  if (v === 0) return '0';
  const exp = Math.floor(Math.log10(Math.abs(v)));
  if (exp < -4 || exp >= 3) {
    const [m, e] = v.toExponential(2).split('e');
    const mant = m.replace(/\.?0+$/, '');
    const ex = Number(e);
    return `${mant}e${ex < 0 ? '-' : '+'}${String(Math.abs(ex)).padStart(2, '0')}`;
  }
  return String(Number(v.toPrecision(3)));
}
