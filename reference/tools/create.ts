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
import { resolveCreateOptions } from '../options/create-options.js';
import { findProtocol } from '../uri/index.js';
import type { CreateRequest } from '../../adapters/adapter.js';
import { asSecretStore, type SecretsLike } from '../crypto/secret.js';

/**
 * The reference creates images in host files only: a protocol filename
 * (sheepdog:///img, nbd://..., json:{...}) is refused instead of being taken
 * for a local file name.
 */
function refuseNonFileTarget(filename: string): void {
  if (filename.startsWith('json:')) throw new BlockError('unsupported', `${filename}: creating an image named by json: options is not supported by the reference yet`, { option: 'filename' });
  const proto = findProtocol(filename, true);
  if (proto.name === 'file') return;
  if (proto.removedIn) throw new BlockError('unsupported', `${filename}: Unknown protocol '${proto.name}': the ${proto.name} driver was removed in QEMU ${proto.removedIn}`, { option: 'filename' });
  throw new BlockError('unsupported', `${filename}: creating images over protocol ${proto.name} is not supported by the reference yet`, { option: 'filename' });
}

/** The same request the Adapter contract defines: -f, file, size, -o text, -b, -F. */
export type CreateImageRequest = Omit<CreateRequest, 'secrets'> & { secrets?: SecretsLike };

export async function createImage(req: CreateImageRequest): Promise<Record<string, unknown>> {
  const driver = driverFor(req.format);
  const secrets = asSecretStore(req.secrets);
  refuseNonFileTarget(req.filename);
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

  const dir = path.dirname(path.resolve(req.filename));
  const tmp = path.join(dir, `.${path.basename(req.filename)}.qbc-${process.pid}-${Date.now()}.tmp`);
  const file = FileNode.open(tmp, { create: true });
  try {
    await driver.create(file, opts, { secrets });
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
