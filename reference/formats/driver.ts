/**
 * The table every format driver fills in (think QEMU's BlockDriver): a name, a
 * probe, create and open. Formats only ever talk to their `file` child node.
 */
import type { LockingMode } from '../protocols/locking.js';
import type { BlockNode, ProtocolNode } from '../node.js';
import type { SecretStore } from '../crypto/secret.js';

export interface OpenContext {
  readOnly: boolean;
  /** opening for qemu-img check: corrupt images must still open */
  forCheck?: boolean;
  /** cache=writethrough: each request's metadata reaches the file before the request completes */
  writethrough?: boolean;
  /** cache=unsafe (qemu-img convert's target): flushes a driver asks for may be skipped */
  cacheUnsafe?: boolean;
  /** the command's secret objects, and the id of the one holding this image's key */
  secrets?: SecretStore;
  keySecret?: string;
  /** no guest I/O will follow (qemu-img info): an encrypted image may open without its key */
  noIO?: boolean;
  /** how the image's file is locked; files the format opens itself (qcow2's data file) are locked alike */
  locking?: LockingMode;
  forceShare?: boolean;
}

/** What create gets besides the options: the command's secret objects. */
export interface CreateContext {
  /** the name the user gave the image (formats of several files name theirs after it) */
  filename?: string;
  secrets?: SecretStore;
}

export interface FormatDriver {
  readonly name: string;
  /** 0 = not this format; higher wins. `head` is the first 2 KiB of the file. */
  probe(head: Buffer, filename: string): number;
  /**
   * Options already resolved and validated against schemas/create/<name>.json.
   * `ctx.filename` is the name the user gave (the file being written may be a
   * temporary one beside it): formats of several files (vmdk) name theirs after it.
   */
  create(file: ProtocolNode, options: Record<string, unknown>, ctx?: CreateContext): Promise<void>;
  open(file: ProtocolNode, ctx: OpenContext): Promise<BlockNode>;
  /** option names this driver acts on (the schema lists them all) */
  readonly createOptionKeys: readonly string[];
  /** false for the read-only formats (bochs, cloop, dmg): qemu-img create refuses them */
  readonly canCreate?: boolean;
}
