/**
 * vvfat rw: bringing the host directory in line with the FAT volume the guest
 * has written. The tree read back from the disk (FatVolume) is compared with
 * the tree as it stood after open or after the last write-back:
 *
 * - an entry keeps its identity by its first cluster (an empty file, which has
 *   none, by its path), so a renamed or moved entry is renamed on the host,
 *   with everything below it;
 * - a file whose chain, size or sectors changed gets its bytes rewritten;
 * - an entry that is new is created, one that is gone is removed.
 *
 * Safety, because the guest chooses every name and every number: the volume
 * parser has already refused names that are not one path component, broken
 * chains and cross-links, so the plan is made from checked facts before the
 * host is touched, and everything the new files will hold is staged first
 * (in a private temporary directory), so no step reads a host file another
 * step has already changed. Each host operation then checks that the
 * directory it works in still resolves inside DIR (a symbolic link swapped in
 * meanwhile cannot lead it out), and never follows a link at the name it
 * replaces or removes. A name already on the host that the image does not own
 * is never overwritten. A directory the guest removed that still holds host
 * files the image never showed is kept, with a warning.
 *
 * What is not atomic: a host error in the middle (disk full, permissions)
 * leaves the steps before it done; the error names the entry.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlockError } from '../errors.js';
import { emitWarning } from '../warnings.js';
import type { FatEntry, FatVolume } from './vvfat-volume.js';

/** What the write-back needs from the vvfat node. */
export interface WriteBackHost {
  /** DIR as the user named it, and its real path */
  root: string;
  rootReal: string;
  /** whether a sector of these clusters was written since the last write-back */
  dirty(chain: number[]): boolean;
  /** copy the sectors the disk still reads from this host file into the overlay: the file is about to change */
  materialise(hostPath: string): void;
  /** the disk's file data that was read from each key now lives at the value */
  retarget(moves: Map<string, string>): void;
}

interface Flat {
  rel: string;
  parent: string;
  e: FatEntry;
  depth: number;
}

function flatten(tree: FatEntry[], parent = '', depth = 0, out: Flat[] = []): Flat[] {
  for (const e of tree) {
    const rel = parent ? `${parent}/${e.name}` : e.name;
    out.push({ rel, parent, e, depth });
    if (e.dir) flatten(e.children, rel, depth + 1, out);
  }
  return out;
}

function sameChain(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

function hostError(rel: string, what: string, e: unknown): BlockError {
  return new BlockError('io', `vvfat: writing back ${rel}: ${what}: ${(e as Error).message}`, { option: 'dir', value: rel, cause: e });
}

/** Apply what the guest changed between `before` and `after` to the host directory. */
export function writeBack(before: FatEntry[], after: FatEntry[], host: WriteBackHost, volume: FatVolume): void {
  const base = flatten(before);
  const cur = flatten(after);
  const baseByCluster = new Map<number, Flat>();
  const baseEmpty = new Map<string, Flat>();
  for (const b of base) {
    if (b.e.cluster >= 2) baseByCluster.set(b.e.cluster, b);
    else if (!b.e.dir) baseEmpty.set(b.rel, b);
  }
  const curByRel = new Map(cur.map((c) => [c.rel, c]));
  const match = new Map<Flat, Flat>();
  const matched = new Set<Flat>();
  for (const c of cur) {
    const b = c.e.cluster >= 2 ? baseByCluster.get(c.e.cluster) : c.e.dir ? undefined : baseEmpty.get(c.rel);
    if (b && b.e.dir === c.e.dir && !matched.has(b)) {
      match.set(c, b);
      matched.add(b);
    }
  }
  /** the old path of the directory an entry is in now ('' for the root), undefined when that directory is new */
  const oldParent = (c: Flat): string | undefined => {
    if (c.parent === '') return '';
    const p = match.get(curByRel.get(c.parent)!);
    return p?.rel;
  };
  const moved = new Set<Flat>();
  const rewritten = new Set<Flat>();
  const created: Flat[] = [];
  for (const c of cur) {
    const b = match.get(c);
    if (!b) {
      created.push(c);
      continue;
    }
    if (oldParent(c) !== b.parent || b.e.name !== c.e.name) moved.add(c);
    if (!c.e.dir && (!sameChain(b.e.chain, c.e.chain) || b.e.size !== c.e.size || host.dirty(c.e.chain))) rewritten.add(c);
  }
  const deleted = base.filter((b) => !matched.has(b));
  if (created.length === 0 && deleted.length === 0 && moved.size === 0 && rewritten.size === 0) return;

  const abs = (rel: string): string => path.join(host.root, ...rel.split('/'));
  checkNoClash(curByRel, match, moved, created, deleted, abs);

  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-vvfat-'));
  try {
    // 1. stage every byte the new and rewritten files will hold, while the host is unchanged
    const staged = new Map<Flat, string>();
    let n = 0;
    for (const c of [...created, ...rewritten]) {
      if (c.e.dir) continue;
      const file = path.join(stage, String(n++));
      stageFile(volume, c.e, file, c.rel);
      staged.set(c, file);
    }
    // 2. the disk must keep reading what it reads now from files about to change or go
    for (const b of deleted) if (!b.e.dir) host.materialise(abs(b.rel));
    for (const c of rewritten) host.materialise(abs(match.get(c)!.rel));

    // 3. detach, deepest first: remove what is gone, park what moves at a temporary name in DIR
    const parked = new Map<Flat, string>();
    const detach: Array<{ b: Flat; c?: Flat }> = [...deleted.map((b) => ({ b })), ...[...moved].map((c) => ({ b: match.get(c)!, c }))];
    detach.sort((x, y) => y.b.depth - x.b.depth);
    let p = 0;
    for (const { b, c } of detach) {
      const at = abs(b.rel);
      inside(host, at, b.rel);
      if (c) {
        const to = path.join(host.root, `.qbc-vvfat-move-${process.pid}-${p++}`);
        try {
          fs.renameSync(at, to);
        } catch (e) {
          throw hostError(b.rel, 'moving it aside', e);
        }
        parked.set(c, to);
      } else {
        remove(at, b);
      }
    }
    // 4. attach, parents first: make new directories, bring parked entries to their new names, place new files
    for (const c of cur) {
      const to = abs(c.rel);
      const from = parked.get(c);
      const isNew = !match.has(c);
      if (!from && !isNew) continue;
      inside(host, to, c.rel);
      if (fs.existsSync(to) || isLink(to)) throw new BlockError('exists', `vvfat: writing back ${c.rel}: ${to} exists on the host and is not the image's`, { option: 'dir', value: c.rel });
      try {
        if (from) fs.renameSync(from, to);
        else if (c.e.dir) fs.mkdirSync(to);
        else fs.copyFileSync(staged.get(c)!, to, fs.constants.COPYFILE_EXCL);
      } catch (e) {
        throw hostError(c.rel, from ? 'renaming it' : 'creating it', e);
      }
    }
    // 5. new bytes for files that stayed: a temporary sibling renamed over the old file
    for (const c of rewritten) {
      const to = abs(c.rel);
      inside(host, to, c.rel);
      const tmp = `${to}.qbc-vvfat-new`;
      try {
        fs.copyFileSync(staged.get(c)!, tmp);
        fs.renameSync(tmp, to);
      } catch (e) {
        fs.rmSync(tmp, { force: true });
        throw hostError(c.rel, 'rewriting it', e);
      }
    }
    // 6. files that only moved are read from their new place from now on
    const moves = new Map<string, string>();
    for (const [c, b] of match) if (!c.e.dir && !rewritten.has(c) && b.rel !== c.rel) moves.set(abs(b.rel), abs(c.rel));
    if (moves.size > 0) host.retarget(moves);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * Before anything changes: an entry that will appear at a name in a directory
 * that stays where it is must not land on a host file the image does not own
 * (one vvfat left out, or one made on the host since). A name the image owned
 * and the guest removed or moved away is free.
 */
function checkNoClash(cur: Map<string, Flat>, match: Map<Flat, Flat>, moved: Set<Flat>, created: Flat[], deleted: Flat[], abs: (rel: string) => string): void {
  const stays = (rel: string): boolean => {
    for (let r = rel; r !== '' && r !== '.'; r = path.posix.dirname(r)) {
      const c = cur.get(r);
      if (!c || !match.has(c) || moved.has(c)) return false;
    }
    return true;
  };
  const freed = new Set([...deleted.map((b) => b.rel), ...[...moved].map((c) => match.get(c)!.rel)]);
  for (const c of [...created, ...moved]) {
    if (c.parent !== '' && !stays(c.parent)) continue; // a new or moved directory: checked as it is placed
    const at = abs(c.rel);
    if ((fs.existsSync(at) || isLink(at)) && !freed.has(c.rel)) {
      throw new BlockError('exists', `vvfat: writing back ${c.rel}: ${at} exists on the host and is not the image's`, { option: 'dir', value: c.rel });
    }
  }
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Whether the real path `real` is `rootReal` itself or below it. */
export function withinDir(real: string, rootReal: string): boolean {
  return real === rootReal || real.startsWith(rootReal.endsWith('/') ? rootReal : `${rootReal}/`);
}

/** The directory `p` is in must still resolve inside DIR. */
function inside(host: WriteBackHost, p: string, rel: string): void {
  let real: string;
  try {
    real = fs.realpathSync(path.dirname(p));
  } catch (e) {
    throw hostError(rel, 'finding its directory', e);
  }
  if (!withinDir(real, host.rootReal)) {
    throw new BlockError('io', `vvfat: writing back ${rel}: its directory resolves to ${real}, outside ${host.rootReal}; nothing is written there`, { option: 'dir', value: rel });
  }
}

function remove(at: string, b: Flat): void {
  try {
    const st = fs.lstatSync(at);
    if (st.isDirectory()) {
      try {
        fs.rmdirSync(at);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw e;
        emitWarning(`vvfat: ${b.rel} was removed by the guest but holds host files the image did not show; it is kept`);
      }
    } else {
      fs.unlinkSync(at); // a link goes, never what it points to
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // gone already
    throw hostError(b.rel, 'removing it', e);
  }
}

/** The first `size` bytes of the entry's chain into `file`, one cluster at a time. */
function stageFile(volume: FatVolume, e: FatEntry, file: string, rel: string): void {
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    let left = e.size;
    for (const c of e.chain) {
      if (left <= 0) break;
      const data = volume.clusters([c]);
      const n = Math.min(left, data.length);
      fs.writeSync(fd, data, 0, n);
      left -= n;
    }
  } catch (e2) {
    throw hostError(rel, 'staging its bytes', e2);
  } finally {
    fs.closeSync(fd);
  }
}
