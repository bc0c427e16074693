/**
 * Opening an image the way qemu-img does: the `file` protocol node, the format
 * (given or probed), then the backing chain, each layer read-only, with the
 * loops and missing links that hostile images contain turned into errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BlockError } from '../errors.js';
import { asImage, type BlockNode, type ImageNode, type ProtocolNode } from '../node.js';
import { formatDrivers, probeFormat } from '../formats/index.js';
import { FileNode } from '../protocols/file.js';
import { isNbdFilename, parseNbdFilename } from '../protocols/nbd/address.js';
import { NbdClientNode } from '../protocols/nbd/client.js';

export interface OpenImageOptions {
  format?: string;
  readOnly?: boolean;
  /** open without the backing chain (qemu-img's -u / info without chain needs) */
  noBacking?: boolean;
  forCheck?: boolean;
  writethrough?: boolean;
  /** cache=unsafe: drivers may skip the flushes they would order (qemu-img convert's target) */
  cacheUnsafe?: boolean;
}

export function driverFor(name: string) {
  const d = formatDrivers.get(name);
  if (!d) throw new BlockError('unknown-format', `Unknown driver '${name}'`, { option: 'format', value: name });
  return d;
}

/** Probe the format from the file's first bytes. */
export async function probe(file: ProtocolNode): Promise<string> {
  const head = await file.read(0, Math.min(2048, file.size()));
  return probeFormat(head, file.filename).name;
}

/** The protocol node a filename names: a host file, or an NBD export. */
export async function openProtocol(filename: string, readOnly: boolean): Promise<ProtocolNode> {
  if (isNbdFilename(filename)) return NbdClientNode.connect({ ...parseNbdFilename(filename), readOnly, displayName: filename });
  return FileNode.open(filename, { readOnly });
}

export async function openImage(filename: string, opts: OpenImageOptions = {}, seen: string[] = []): Promise<BlockNode> {
  const file = await openProtocol(filename, opts.readOnly ?? true);
  let node: BlockNode;
  try {
    const format = opts.format ?? (await probe(file));
    node = await driverFor(format).open(file, { readOnly: opts.readOnly ?? true, forCheck: opts.forCheck, writethrough: opts.writethrough, cacheUnsafe: opts.cacheUnsafe });
  } catch (e) {
    await file.close();
    throw e;
  }
  const img = asImage(node);
  if (img.backingFile && !opts.noBacking) {
    try {
      img.backing = await openBacking(img, filename, seen);
    } catch (e) {
      await node.close();
      throw e;
    }
  }
  return node;
}

/** Relative backing names are relative to the directory of the image that names them. */
export function resolveBacking(imageFilename: string, backing: string): string {
  return path.isAbsolute(backing) ? backing : path.join(path.dirname(imageFilename), backing);
}

async function openBacking(img: ImageNode, filename: string, seen: string[]): Promise<BlockNode> {
  const target = resolveBacking(filename, img.backingFile!);
  const chain = [...seen, realpathOr(filename)];
  if (chain.includes(realpathOr(target))) {
    throw new BlockError('backing', `Backing chain of '${filename}' loops: '${img.backingFile}' is already part of the chain`, { field: 'backing_file' });
  }
  if (chain.length > 1000) throw new BlockError('backing', 'Backing chain is more than 1000 images deep', { field: 'backing_file' });
  try {
    return await openImage(target, { format: img.backingFormat, readOnly: true }, chain);
  } catch (e) {
    if (e instanceof BlockError && e.code === 'backing') throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new BlockError('backing', `Could not open backing file: ${msg}`, { field: 'backing_file', cause: e });
  }
}

function realpathOr(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}
