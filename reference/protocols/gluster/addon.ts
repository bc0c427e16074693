/**
 * The libgfapi addon (native/gluster.c, build/Release/gluster.node), loaded
 * when the first gluster image opens, never at qbc-img start. It is built only
 * where libglusterfs-dev's <glusterfs/api/glfs.h> was present at `npm install`;
 * without it a gluster open fails with a typed error that says so.
 *
 * Every call returns a Promise and runs its libgfapi call on the libuv thread
 * pool; a failure is an Error with `code` (errno name), `errno` and `syscall`.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlockError } from '../../errors.js';

export type GlfsHandle = { readonly __glfs: unique symbol };
export type GlfsFd = { readonly __glfsFd: unique symbol };

export interface GlusterAddon {
  connect(volume: string, servers: { transport: 'tcp' | 'unix'; host: string; port: number }[], logfile: string | null, debug: number): Promise<GlfsHandle>;
  fini(fs: GlfsHandle): Promise<void>;
  open(fs: GlfsHandle, path: string, readOnly: boolean, create: boolean): Promise<GlfsFd>;
  /** reads until the buffer is full or the file ends; the count read */
  pread(fd: GlfsFd, buf: Buffer, offset: number): Promise<number>;
  pwrite(fd: GlfsFd, buf: Buffer, offset: number): Promise<number>;
  fsync(fd: GlfsFd): Promise<void>;
  fstat(fd: GlfsFd): Promise<number>;
  close(fd: GlfsFd): Promise<void>;
  ftruncate(fd: GlfsFd, length: number): Promise<void>;
  discard(fd: GlfsFd, offset: number, length: number): Promise<void>;
  zerofill(fd: GlfsFd, offset: number, length: number): Promise<void>;
  unlink(fs: GlfsHandle, path: string): Promise<void>;
  rename(fs: GlfsHandle, from: string, to: string): Promise<void>;
}

export interface GlfsError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

/** The repository root: the nearest directory above this module with a package.json (works bundled or not). */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('no package.json above the gluster module');
    dir = up;
  }
}

let loaded: GlusterAddon | undefined;

export function glusterAddon(): GlusterAddon {
  if (loaded) return loaded;
  const file = path.join(repoRoot(), 'build', 'Release', 'gluster.node');
  if (!fs.existsSync(file)) {
    throw new BlockError('unsupported', 'the reference\'s GlusterFS client needs libgfapi through build/Release/gluster.node, which was not built (install libglusterfs-dev, then `npm install` or scripts/install-deps.sh)', { option: 'driver', value: 'gluster' });
  }
  try {
    loaded = createRequire(import.meta.url)(file) as GlusterAddon;
  } catch (e) {
    throw new BlockError('unsupported', `build/Release/gluster.node does not load (${(e as Error).message}); libgfapi0 may be missing`, { option: 'driver', value: 'gluster' });
  }
  return loaded;
}

/** Is the addon there (built and loadable)? null if so, else why not. */
export function glusterAddonUnavailable(): string | null {
  try {
    glusterAddon();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Was the addon built (without loading it)? For capability lists, which must not load libgfapi. */
export function glusterAddonBuilt(): boolean {
  try {
    return fs.existsSync(path.join(repoRoot(), 'build', 'Release', 'gluster.node'));
  } catch {
    return false;
  }
}
