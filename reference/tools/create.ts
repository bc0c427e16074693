/**
 * qemu-img create: validate every option first, build the image in a
 * temporary file beside the target, and rename it into place only when it is
 * complete, so a failure never leaves a half-written image or clobbers an
 * existing file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BlockError } from '../errors.js';
import { driverFor, openImage, resolveBacking } from '../graph/open.js';
import { FileNode } from '../protocols/file.js';
import { PERM_ALL, PERM_RESIZE, PERM_WRITE } from '../protocols/locking.js';
import { resolveCreateOptions } from '../options/create-options.js';
import { findProtocol, parseFilename, protocolOf } from '../uri/index.js';
import { createOverSsh } from '../protocols/ssh/open.js';
import { createOverGluster } from '../protocols/gluster/client.js';
import type { CreateRequest } from '../../adapters/adapter.js';
import { asSecretStore, type SecretsLike } from '../crypto/secret.js';

/**
 * The reference creates images in host files only: a protocol filename
 * (sheepdog:///img, nbd://..., json:{...}) is refused instead of being taken
 * for a local file name.
 */
function refuseNonFileTarget(filename: string): string {
  if (filename.startsWith('json:')) throw new BlockError('unsupported', `${filename}: creating an image named by json: options is not supported by the reference yet`, { option: 'filename' });
  const proto = findProtocol(filename, true);
  // ssh: the image is built over SFTP (reference/protocols/ssh/open.ts); gluster through libgfapi (protocols/gluster/)
  if (proto.name === 'file' || proto.name === 'ssh' || proto.name === 'gluster') return proto.name;
  if (proto.removedIn) throw new BlockError('unsupported', `${filename}: Unknown protocol '${proto.name}': the ${proto.name} driver was removed in QEMU ${proto.removedIn}`, { option: 'filename' });
  throw new BlockError('unsupported', `${filename}: creating images over protocol ${proto.name} is not supported by the reference yet`, { option: 'filename' });
}

/**
 * Image locking: creating over a file somebody uses is refused as qemu-img
 * refuses it. Creation takes write and resize and refuses to share resize, and
 * a format with metadata refuses to share write too (measured against qemu-img
 * 7.2 over qemu-io writers: a qcow2 writer keeps every create out, a raw writer
 * only creates of formats with metadata). The check is made on the existing
 * file before the new image replaces it.
 */
function refuseIfInUse(filename: string, format: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(filename);
  } catch {
    return; // nothing there to clash with
  }
  if (!st.isFile()) return;
  let file: FileNode;
  try {
    file = FileNode.open(filename, { readOnly: true });
  } catch {
    return; // unreadable: the rename below decides
  }
  try {
    const unshared = format === 'raw' ? PERM_RESIZE : PERM_WRITE | PERM_RESIZE;
    file.setPermissions({ perm: PERM_WRITE | PERM_RESIZE, shared: PERM_ALL & ~unshared });
  } catch (e) {
    const err = e as BlockError;
    throw new BlockError(err.code, `${filename}: ${err.message}`, { option: err.option, cause: e });
  } finally {
    void file.close();
  }
}

/** The same request the Adapter contract defines: -f, file, size, -o text, -b, -F. */
export type CreateImageRequest = Omit<CreateRequest, 'secrets'> & { secrets?: SecretsLike };

export async function createImage(req: CreateImageRequest): Promise<Record<string, unknown>> {
  const driver = driverFor(req.format);
  if (driver.canCreate === false) {
    throw new BlockError('unsupported', `${req.filename}: Format driver '${req.format}' does not support image creation`, { option: 'format', value: req.format });
  }
  const secrets = asSecretStore(req.secrets);
  const protocol = refuseNonFileTarget(req.filename);
  const extra: { size?: number; backing_file?: string; backing_fmt?: string } = {};
  if (req.size !== undefined) extra.size = req.size;
  if (req.backingFile !== undefined) extra.backing_file = req.backingFile;
  if (req.backingFormat !== undefined) extra.backing_fmt = req.backingFormat;
  const opts = resolveCreateOptions(req.format, req.options, extra) as Record<string, unknown>;

  const backing = opts.backing_file as string | undefined;
  if (backing) {
    if (!opts.backing_fmt) {
      throw new BlockError('backing', `${req.filename}: Backing file specified without backing format`, { option: 'backing_fmt' });
    }
    // Like qemu-img, open the backing file: it must exist, and it gives the default size.
    const base = await openImage(resolveBacking(req.filename, backing), { format: opts.backing_fmt as string, readOnly: true }).catch((e: unknown) => {
      throw new BlockError('backing', `${req.filename}: ${(e as Error).message}\nCould not open backing image.`, { option: 'backing_file', cause: e });
    });
    if (opts.size === undefined) opts.size = base.size();
    await base.close();
  }
  if (opts.size === undefined) {
    throw new BlockError('invalid-size', `${req.filename}: Image creation needs a size parameter`, { option: 'size' });
  }
  // QEMU counts disks in 512-byte sectors.
  opts.size = Math.ceil((opts.size as number) / 512) * 512;

  if (protocol === 'ssh') {
    await createOverSsh(protocolOf(parseFilename(req.filename)).typed as Record<string, unknown>, (file) => driver.create(file, opts, { secrets }));
    return opts;
  }
  if (protocol === 'gluster') {
    await createOverGluster(protocolOf(parseFilename(req.filename)).typed as Record<string, unknown>, (file) => driver.create(file, opts, { secrets }));
    return opts;
  }

  refuseIfInUse(req.filename, req.format);
  const dir = path.dirname(path.resolve(req.filename));
  const tmp = path.join(dir, `.${path.basename(req.filename)}.qbc-${process.pid}-${Date.now()}.tmp`);
  const file = FileNode.open(tmp, { create: true });
  try {
    await driver.create(file, opts, { filename: req.filename, secrets });
    await file.flush();
    await file.close();
    fs.renameSync(tmp, req.filename);
  } catch (e) {
    await file.close().catch(() => undefined);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  return opts;
}
