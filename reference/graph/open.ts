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
import { imagePermissions, PERM_RESIZE, type LockingMode } from '../protocols/locking.js';
import { NbdClientNode } from '../protocols/nbd/client.js';
import { NullNode } from '../protocols/null.js';
import { VvfatNode } from '../protocols/vvfat.js';
import { IscsiClientNode } from '../protocols/iscsi/client.js';
import { ISCSI_DEFAULT_INITIATOR } from '../uri/iscsi.js';
import { openSshSpec } from '../protocols/ssh/open.js';
import { openGlusterSpec } from '../protocols/gluster/client.js';
import { RawWindow } from '../formats/raw-window.js';
import { displayName, parseFilename, protocolOf, type NodeSpec } from '../uri/index.js';
import { pathHasProtocol } from '../uri/protocol-name.js';
import { drivers } from '../uri/drivers.js';
import { blockdevSchema, hasBlockdevSchema } from '../uri/validate.js';
import { NULL_DEFAULT_SIZE } from '../uri/null.js';
import type { QDict } from '../options/qdict.js';
import { lookupSecret, type SecretStore } from '../crypto/secret.js';

export interface OpenImageOptions {
  format?: string;
  readOnly?: boolean;
  /** open without the backing chain (qemu-img's -u / info without chain needs) */
  noBacking?: boolean;
  forCheck?: boolean;
  writethrough?: boolean;
  /** qemu-img --image-opts: the filename is a dotted option list */
  imageOpts?: boolean;
  /** cache=unsafe: drivers may skip the flushes they would order (qemu-img convert's target) */
  cacheUnsafe?: boolean;
  /** the secret objects of the command (--object secret,...) */
  secrets?: SecretStore;
  /** key-secret of the image (luks key-secret, qcow/qcow2 encrypt.key-secret), unless its options name one */
  keySecret?: string;
  /** -U / --force-share: share every permission with other users of the image (read-only opens only) */
  forceShare?: boolean;
  /**
   * the open does no guest I/O (qemu-img info): it holds no consistent-read permission,
   * and an encrypted image opens without its key
   */
  noIO?: boolean;
  /** the user will resize the image (qemu-img resize): it holds the resize permission */
  resize?: boolean;
  /** a block export (qemu-nbd): its size is fixed while it is served, so nobody may resize the image, raw or not */
  exported?: boolean;
}

/** The key-secret an image's options name: luks `key-secret`, qcow/qcow2 `encrypt.key-secret`. */
function keySecretOf(typed: Record<string, unknown>): string | undefined {
  const enc = typed.encrypt as Record<string, unknown> | undefined;
  const v = typed['key-secret'] ?? enc?.['key-secret'] ?? typed['encrypt.key-secret'];
  return typeof v === 'string' ? v : undefined;
}

/** qemu's refusal of force-share on a writable open (block.c). */
const FORCE_SHARE_WRITABLE = 'force-share=on can only be used with read-only images';

/** The name qemu-img shows for an opened image (its image: line), by node. */
const shownNames = new WeakMap<BlockNode, string>();

export function shownName(node: BlockNode): string | undefined {
  return shownNames.get(node);
}

export function driverFor(name: string) {
  const d = formatDrivers.get(name);
  if (!d && drivers.get(name)?.protocol === false) {
    throw new BlockError('unsupported', `format ${name} not supported by the reference yet`, { option: 'format', value: name });
  }
  if (!d) throw new BlockError('unknown-format', `Unknown driver '${name}'`, { option: 'format', value: name });
  return d;
}

/** Probe the format from the file's first bytes. */
export async function probe(file: ProtocolNode): Promise<string> {
  const head = await file.read(0, Math.min(2048, file.size()));
  return probeFormat(head, file.filename).name;
}

/** A filename (or option list) to its node tree; errors as qemu-img words them, "Could not open 'X': ...". */
export function resolveImage(filename: string, opts: { format?: string; imageOpts?: boolean } = {}): NodeSpec {
  try {
    return parseFilename(filename, opts);
  } catch (e) {
    if (e instanceof BlockError && !e.message.startsWith('--image-opts')) {
      throw new BlockError(e.code, `Could not open '${filename}': ${e.message}`, { option: e.option, field: e.field, value: e.value, cause: e });
    }
    throw e;
  }
}

/** Options of a node the reference accepts but cannot honour: refused, never silently ignored. */
function refuseUnsupported(spec: NodeSpec): void {
  if (!spec.driver || !hasBlockdevSchema(spec.driver)) return;
  const props = (blockdevSchema(spec.driver).properties ?? {}) as Record<string, { 'x-reference'?: string }>;
  for (const k of Object.keys(spec.typed)) {
    if (props[k]?.['x-reference'] === 'unsupported') {
      throw new BlockError('unsupported', `${spec.driver} option '${k}' is not supported by the reference yet`, { option: k });
    }
  }
}

/**
 * The CHAP credentials of an iscsi node as 7.2 takes them (block/iscsi.c): no user, no CHAP
 * (a password or password-secret alone is ignored); with a user, exactly one of password and
 * password-secret, the secret's bytes as UTF-8 text.
 */
function chapOf(o: Record<string, unknown>, secrets: SecretStore | undefined): { user?: string; password?: string } {
  const user = typeof o.user === 'string' ? o.user : undefined;
  if (user === undefined) return {};
  const password = typeof o.password === 'string' ? o.password : undefined;
  const secretId = o['password-secret'];
  if (password !== undefined && secretId !== undefined) {
    throw new BlockError('option-conflict', "'password' and 'password-secret' properties are mutually exclusive", { option: 'password-secret' });
  }
  if (secretId === undefined) {
    if (password === undefined) throw new BlockError('invalid-option', 'CHAP username specified but no password was given', { option: 'password' });
    return { user, password };
  }
  const bytes = lookupSecret(secrets ?? new Map(), String(secretId), 'password-secret');
  const text = new TextDecoder('utf-8', { fatal: true });
  try {
    return { user, password: text.decode(bytes) };
  } catch {
    throw new BlockError('invalid-option', `Data from secret ${String(secretId)} is not valid UTF-8`, { option: 'password-secret', value: String(secretId) });
  }
}

/** The protocol node for a node spec: a host file or device, an NBD export, a null device (secrets: the command's, for iscsi's password-secret). */
export async function openProtocolSpec(spec: NodeSpec, readOnly: boolean, secrets?: SecretStore): Promise<ProtocolNode> {
  const o = spec.typed as QDict & Record<string, unknown>;
  const ro = readOnly || o['read-only'] === true;
  refuseUnsupported(spec);
  switch (spec.driver) {
    case 'file':
    case 'host_device':
    case 'host_cdrom':
      return FileNode.open(String(o.filename), { readOnly: ro, driver: spec.driver, locking: o.locking as LockingMode | undefined });
    case 'nbd': {
      const server = o.server as Record<string, unknown>;
      const exp = typeof o.export === 'string' ? o.export : '';
      const shown = displayName(spec);
      if (server.type === 'unix') return NbdClientNode.connect({ server: { type: 'unix', path: String(server.path) }, export: exp, readOnly: ro, displayName: shown });
      if (server.type !== 'inet') throw new BlockError('unsupported', `NBD over a ${String(server.type)} socket is not supported by the reference yet`, { option: 'server.type' });
      const port = String(server.port);
      if (!/^[0-9]+$/.test(port) || Number(port) > 65535) {
        throw new BlockError('invalid-option', `address resolution failed for ${String(server.host)}:${port}: the reference takes numeric ports from 0 to 65535 only`, { option: 'server.port', value: port });
      }
      return NbdClientNode.connect({ server: { type: 'inet', host: String(server.host), port: Number(port) }, export: exp, readOnly: ro, displayName: shown });
    }
    case 'iscsi':
      if (o.transport === 'iser') throw new BlockError('unsupported', 'iSCSI: Failed to connect to LUN : the iSER (RDMA) transport is not supported by the reference', { option: 'transport', value: 'iser' });
      return IscsiClientNode.connect({
        portal: String(o.portal), target: String(o.target), lun: Number(o.lun ?? 0),
        ...chapOf(o, secrets),
        initiatorName: typeof o['initiator-name'] === 'string' ? o['initiator-name'] : ISCSI_DEFAULT_INITIATOR,
        headerDigest: typeof o['header-digest'] === 'string' ? o['header-digest'] : undefined,
        timeout: typeof o.timeout === 'number' && o.timeout > 0 ? o.timeout : undefined,
        readOnly: ro, displayName: displayName(spec),
      });
    case 'ssh':
      return openSshSpec(o, ro, displayName(spec));
    case 'gluster':
      return openGlusterSpec(o, ro, displayName(spec), spec.warnings);
    case 'null-co':
    case 'null-aio':
      return new NullNode(spec.driver, typeof o.size === 'number' ? o.size : NULL_DEFAULT_SIZE, ro);
    case 'vvfat':
      return VvfatNode.open({ dir: String(o.dir ?? ''), fatType: typeof o['fat-type'] === 'number' ? o['fat-type'] : 0, floppy: o.floppy === true, label: typeof o.label === 'string' ? o.label : undefined, rw: o.rw === true, readOnly: ro });
    case 'nvme':
      // What QEMU does first: take the VFIO container. Without one that is the error, as qemu prints it.
      if (!fs.existsSync('/dev/vfio/vfio')) throw new BlockError('io', 'Failed to open /dev/vfio/vfio: No such file or directory', { option: 'device' });
      throw new BlockError('unsupported', 'protocol nvme not supported by the reference yet', { option: 'driver', value: 'nvme' });
    default: {
      const removed = spec.driver ? drivers.get(spec.driver)?.removedIn : undefined;
      if (removed) {
        throw new BlockError('unsupported', `Unknown protocol '${spec.driver}': the ${spec.driver} driver was removed in QEMU ${removed}`, { option: 'driver', value: spec.driver });
      }
      throw new BlockError('unsupported', `protocol ${spec.driver} not supported by the reference yet`, { option: 'driver', value: spec.driver });
    }
  }
}

/** qemu-img's "Could not open 'NAME': " before what the protocol said, unless it says so already. */
async function inContext<T>(filename: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw contextError(filename, e);
  }
}

function contextError(filename: string, e: unknown): unknown {
  if (e instanceof BlockError && !e.message.startsWith('Could not open')) {
    return new BlockError(e.code, `Could not open '${filename}': ${e.message}`, { option: e.option, field: e.field, value: e.value, offset: e.offset, cause: e });
  }
  return e;
}

/** The protocol node a filename names (a plain path, a protocol URI, json:, or options with imageOpts). */
export async function openProtocol(filename: string, readOnly: boolean, opts: { imageOpts?: boolean; secrets?: SecretStore } = {}): Promise<ProtocolNode> {
  const spec = resolveImage(filename, opts);
  return openProtocolSpec(protocolOf(spec), readOnly, opts.secrets);
}

/**
 * Image locking: the permissions of this open, recorded in the file's lock
 * bytes (protocols without locks have no setPermissions). force-share comes
 * from -U or from the force-share option of the node or of a parent.
 */
function lockImageFile(filename: string, file: ProtocolNode, format: string | null, readOnly: boolean, opts: OpenImageOptions, forceShare: boolean): void {
  const lockable = file as ProtocolNode & { setPermissions?: (p: ReturnType<typeof imagePermissions>) => void };
  try {
    const p = imagePermissions({ format, readOnly, forceShare, noIO: opts.noIO, resize: opts.resize });
    // qemu-nbd's export shares everything but resize (7.2 takes byte 203 even on a raw image)
    if (opts.exported && !forceShare) p.shared &= ~PERM_RESIZE;
    lockable.setPermissions?.(p);
  } catch (e) {
    throw contextError(filename, e);
  }
}

function wantsForceShare(spec: NodeSpec, opts: OpenImageOptions, readOnly: boolean): boolean {
  const given = opts.forceShare === true || spec.typed['force-share'] === true || spec.children.file?.typed['force-share'] === true;
  const ro = readOnly || spec.typed['read-only'] === true;
  if (given && !ro) throw new BlockError('option-conflict', FORCE_SHARE_WRITABLE, { option: 'force-share' });
  return given;
}

export async function openImage(filename: string, opts: OpenImageOptions = {}, seen: string[] = []): Promise<BlockNode> {
  const spec = resolveImage(filename, { format: opts.format, imageOpts: opts.imageOpts });
  const readOnly = opts.readOnly ?? true;
  let forceShare: boolean;
  try {
    forceShare = wantsForceShare(spec, opts, readOnly);
  } catch (e) {
    throw contextError(filename, e);
  }
  if (spec.protocol) {
    // the options name a protocol driver: no format layer, the protocol node is the image (qemu-img shows format "file")
    const node = await inContext(filename, openProtocolSpec(spec, readOnly, opts.secrets));
    try {
      lockImageFile(filename, node, null, readOnly || spec.typed['read-only'] === true, opts, forceShare);
    } catch (e) {
      await node.close();
      throw e;
    }
    shownNames.set(node, displayName(spec));
    return node;
  }
  const fileSpec = spec.children.file!;
  if (!fileSpec.protocol) {
    throw new BlockError('unsupported', `a ${fileSpec.driver ?? 'probed'} node as the file of a format node is not supported by the reference yet`, { option: 'file.driver' });
  }
  if (spec.children.backing) throw new BlockError('unsupported', 'a backing node given as options is not supported by the reference yet', { option: 'backing' });
  if (spec.children['data-file']) throw new BlockError('unsupported', 'a data-file node given as options is not supported by the reference yet', { option: 'data-file' });
  refuseUnsupported(spec);
  // read-only is inherited: a read-only format node opens its file read-only (QEMU's child options)
  let file = await inContext(filename, openProtocolSpec(fileSpec, readOnly || spec.typed['read-only'] === true, opts.secrets));
  let node: BlockNode;
  let format: string;
  try {
    if (spec.driver === 'raw' && (spec.typed.offset !== undefined || spec.typed.size !== undefined)) {
      file = new RawWindow(file, Number(spec.typed.offset ?? 0), spec.typed.size === undefined ? undefined : Number(spec.typed.size));
    }
    format = spec.driver ?? (await probe(file));
    const driver = driverFor(format);
    lockImageFile(filename, file, format, readOnly || spec.typed['read-only'] === true, opts, forceShare);
    node = await driver.open(file, { readOnly: readOnly || spec.typed['read-only'] === true, forCheck: opts.forCheck, writethrough: opts.writethrough, cacheUnsafe: opts.cacheUnsafe, secrets: opts.secrets, keySecret: keySecretOf(spec.typed as Record<string, unknown>) ?? opts.keySecret, noIO: opts.noIO, locking: fileSpec.typed.locking as LockingMode | undefined, forceShare });
  } catch (e) {
    await file.close();
    throw e;
  }
  shownNames.set(node, displayName(spec, format));
  const img = asImage(node);
  if (img.backingFile && !opts.noBacking && !spec.noBacking) {
    try {
      // relative backing names are relative to the image's file, wherever the name came from
      const base = fileSpec.driver === 'file' ? String(fileSpec.typed.filename) : filename;
      img.backing = await openBacking(img, base, seen, forceShare);
    } catch (e) {
      await node.close();
      throw e;
    }
  }
  return node;
}

/** Relative backing names are relative to the directory of the image that names them. */
export function resolveBacking(imageFilename: string, backing: string): string {
  // a protocol name (nbd://..., json:{...}) is used as it is, as QEMU's path_combine does
  if (path.isAbsolute(backing) || pathHasProtocol(backing)) return backing;
  return path.join(path.dirname(imageFilename), backing);
}

async function openBacking(img: ImageNode, filename: string, seen: string[], forceShare: boolean): Promise<BlockNode> {
  const target = resolveBacking(filename, img.backingFile!);
  const chain = [...seen, realpathOr(filename)];
  if (chain.includes(realpathOr(target))) {
    throw new BlockError('backing', `Backing chain of '${filename}' loops: '${img.backingFile}' is already part of the chain`, { field: 'backing_file' });
  }
  if (chain.length > 1000) throw new BlockError('backing', 'Backing chain is more than 1000 images deep', { field: 'backing_file' });
  try {
    // force-share is inherited by the backing chain, as QEMU's child options inherit it
    return await openImage(target, { format: img.backingFormat, readOnly: true, forceShare }, chain);
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
