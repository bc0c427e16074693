/**
 * Filenames to block nodes, the way QEMU 7.2's bdrv_open reads them, and the
 * way back to the name qemu-img shows on its `image:` line.
 *
 * A filename is a plain path (the `file` protocol, or a host device), a
 * protocol filename (`nbd://...`, `fat:...`: the text before the first ':',
 * when no '/' comes first, names the protocol), `json:{...}`, or with
 * --image-opts a dotted option list. The result is a tree of NodeSpecs: a
 * format node on top (its driver null when it is to be probed) with a `file`
 * child, or a protocol node alone when the options name a protocol driver.
 *
 * Errors are BlockErrors with qemu's words and the option at fault; nothing
 * here touches the host except a stat() of plain paths (host devices are
 * recognised by their file type, as QEMU does).
 */
import { statSync } from 'node:fs';
import { BlockError } from '../errors.js';
import { parseDottedOptions } from '../options/dotted.js';
import { parseJsonFilename } from '../options/json.js';
import { crumple, extractPrefix, put, toQemuJson, type QDict, type QValue } from '../options/qdict.js';
import { drivers, protocolPrefixes, strongOptions, type DriverEntry } from './drivers.js';
import { pathHasProtocol, protocolName } from './protocol-name.js';
import { str } from './syntax.js';
import { checkBlockdevNode } from './validate.js';

export interface NodeSpec {
  /** the driver; null for a format node whose format is to be probed when it is opened */
  driver: string | null;
  protocol: boolean;
  /** the node's own options with flat dotted keys, values as written (driver and filename included) */
  own: QDict;
  /** the same as typed -blockdev options (nested, legacy spellings translated), children left out */
  typed: QDict;
  /** child nodes: file, backing, data-file */
  children: Record<string, NodeSpec>;
  /** a `backing: null` or `""` given: open without the backing file */
  noBacking?: boolean;
  /** qemu's warnings while parsing (short-form booleans, rdma falling back to tcp) */
  warnings: string[];
}

export interface ParseFilenameOptions {
  /** qemu-img -f */
  format?: string;
  /** qemu-img --image-opts: the filename is a dotted option list */
  imageOpts?: boolean;
}

const MAX_DEPTH = 16;

/** Throws BlockError with qemu's message when the filename cannot name a node. */
export function parseFilename(filename: string, opts: ParseFilenameOptions = {}): NodeSpec {
  let flat: QDict = {};
  let name: string | undefined = filename;
  const warnings: string[] = [];
  if (opts.imageOpts) {
    if (opts.format !== undefined) throw new BlockError('option-conflict', '--image-opts and --format are mutually exclusive', { option: 'image-opts' });
    const d = parseDottedOptions(filename);
    flat = d.options;
    warnings.push(...d.warnings);
    name = undefined;
  } else if (filename.startsWith('json:')) {
    flat = parseJsonFilename(filename);
    name = undefined;
  }
  // -f is set before the json: options are joined in, and the join never overwrites: -f wins
  if (opts.format !== undefined) put(flat, 'driver', opts.format);
  const spec = openSpec(flat, name, false, 0);
  spec.warnings.unshift(...warnings);
  return spec;
}

/** bdrv_find_protocol: a host device, a protocol prefix, or the file driver. */
export function findProtocol(filename: string, allowPrefix: boolean): DriverEntry {
  const hdev = hostDeviceDriver(filename);
  if (hdev) return drivers.get(hdev)!;
  if (!pathHasProtocol(filename) || !allowPrefix) return drivers.get('file')!;
  const p = protocolName(filename);
  const d = protocolPrefixes.get(p);
  if (!d) throw new BlockError('invalid-option', `Unknown protocol '${p}'`, { option: 'filename', value: p });
  return d;
}

/**
 * A block or character device is host_device; a block device named like a
 * CD-ROM drive (/dev/cdrom*, /dev/sr*) host_cdrom. QEMU asks the drive with an
 * ioctl, which Node cannot; the name is what is left to go by.
 */
function hostDeviceDriver(filename: string): string | null {
  if (!filename.startsWith('/dev/')) return null;
  try {
    const st = statSync(filename);
    if (st.isBlockDevice() && /^\/dev\/(cdrom|sr\d)/.test(filename)) return 'host_cdrom';
    if (st.isBlockDevice() || st.isCharacterDevice()) return 'host_device';
  } catch {
    // not there: the file driver reports it when opening
  }
  return null;
}

function invalid(message: string, option?: string, value?: unknown): BlockError {
  return new BlockError('invalid-option', message, { option, value });
}

/** bdrv_open_inherit + bdrv_fill_options for one node and its children. */
function openSpec(input: QDict, filename: string | undefined, protocolFlag: boolean, depth: number): NodeSpec {
  if (depth > MAX_DEPTH) throw invalid(`Block nodes nested more than ${MAX_DEPTH} deep`, 'file');
  const flat: QDict = { ...input };
  const warnings: string[] = [];
  const drvname = str(flat.driver);
  let drv = drvname !== undefined ? drivers.get(drvname) : undefined;
  if (drvname !== undefined && !drv) throw new BlockError('unknown-format', `Unknown driver '${drvname}'`, { option: 'driver', value: drvname });
  const protocol = drv ? drv.protocol : protocolFlag;
  let parse = false;
  if (protocol && filename !== undefined) {
    if ('filename' in flat) throw invalid("Can't specify 'file' and 'filename' options at the same time", 'filename');
    put(flat, 'filename', filename);
    parse = true;
  }
  const fn = str(flat.filename);
  if (!drv && protocol) {
    if (fn === undefined) throw invalid('Must specify either driver or file', 'driver');
    drv = findProtocol(fn, parse);
    put(flat, 'driver', drv.name);
  }
  if (drv?.syntax?.parse && parse && fn !== undefined) {
    const given: QDict = {};
    for (const [k, v] of Object.entries(flat)) if (k !== 'driver' && k !== 'filename') put(given, k, v);
    const added = drv.syntax.parse(fn, given);
    for (const [k, v] of Object.entries(added)) put(flat, k, v);
    const w = (added as { warning?: string }).warning;
    if (w) warnings.push(w);
    if (!drv.syntax.keepsFilename) delete flat.filename;
  }
  // bdrv_open_common: a driver that needs a file name takes no empty one either
  if (drv?.syntax?.keepsFilename && drv.name !== 'gluster' && flat.filename === '') {
    throw invalid(`The '${drv.name}' block driver requires a file name`, 'filename');
  }
  const spec: NodeSpec = { driver: drv?.name ?? null, protocol, own: {}, typed: {}, children: {}, warnings };
  let own = flat;
  if (!protocol) {
    const { child, rest } = extractPrefix(own, 'file.');
    own = rest;
    if ('file' in own) {
      const ref = own.file;
      if (Object.keys(child).length || filename !== undefined) throw invalid('Cannot reference an existing block device with additional options or a new filename', 'file');
      if (typeof ref === 'string') throw invalid(`Cannot find device='${ref}' nor node-name='${ref}'`, 'file', ref);
      throw invalid(`Invalid parameter type for 'file', expected: string or object`, 'file', ref);
    }
    if (filename === undefined && Object.keys(child).length === 0) {
      if (!drv) throw invalid('Must specify either driver or file', 'driver');
      throw invalid('A block device must be specified for "file"', 'file');
    }
    spec.children.file = openSpec(child, filename, true, depth + 1);
    spec.warnings.push(...spec.children.file.warnings);
    if (drv?.backing || !drv) {
      const b = extractPrefix(own, 'backing.');
      own = b.rest;
      if ('backing' in own) {
        const ref = own.backing;
        if (ref === null || ref === '') {
          spec.noBacking = true;
          delete own.backing;
        } else if (typeof ref === 'string') throw invalid(`Cannot find device='${ref}' nor node-name='${ref}'`, 'backing', ref);
      }
      if (Object.keys(b.child).length) {
        spec.children.backing = openSpec(b.child, undefined, false, depth + 1);
      }
    }
    if (drv?.name === 'qcow2' || drv?.name === 'vmdk') {
      const key = drv.name === 'qcow2' ? 'data-file' : '';
      if (key) {
        const d = extractPrefix(own, `${key}.`);
        own = d.rest;
        if (Object.keys(d.child).length) spec.children[key] = openSpec(d.child, undefined, true, depth + 1);
      }
    }
  }
  spec.own = own;
  spec.typed = spec.driver ? checkBlockdevNode(spec.driver, spec.protocol, own) : crumple(own);
  return spec;
}

// ---------------------------------------------------------------------------
// The -blockdev form

/** The node tree as -blockdev takes it: nested, typed, legacy spellings translated. */
export function blockdevOptions(spec: NodeSpec): QDict {
  const out: QDict = { ...spec.typed };
  for (const [name, child] of Object.entries(spec.children)) put(out, name, blockdevOptions(child));
  if (spec.noBacking) put(out, 'backing', null);
  return out;
}

// ---------------------------------------------------------------------------
// The name qemu-img shows (bdrv_refresh_filename)

interface Refreshed {
  exact: string;
  full: QDict;
}

function refresh(spec: NodeSpec, probed?: string): Refreshed {
  const driver = spec.driver ?? probed ?? null;
  const entry = driver ? drivers.get(driver) : undefined;
  const full: QDict = {};
  // what bdrv_open put there: the driver (also a probed one) and a kept filename
  if (driver) put(full, 'driver', driver);
  if ('filename' in spec.own) put(full, 'filename', spec.own.filename as QValue);
  let json = false;
  for (const opt of entry ? strongOptions(entry) : []) {
    for (const [k, v] of Object.entries(spec.own)) {
      if (opt.endsWith('.') ? k.startsWith(opt) : k === opt) {
        put(full, k, v);
        json = true;
      }
    }
  }
  const kids: Record<string, Refreshed> = {};
  for (const [name, child] of Object.entries(spec.children)) {
    kids[name] = refresh(child);
    put(full, name, kids[name].full);
    // a backing file given as options overrides the image's own: only json: can say that
    if (name === 'backing') json = true;
  }
  if (spec.noBacking) {
    put(full, 'backing', null);
    json = true;
  }
  let exact = '';
  if (entry?.syntax?.refresh) {
    const own: QDict = {};
    for (const [k, v] of Object.entries(full)) if (!(k in spec.children)) put(own, k, v);
    exact = entry.syntax.refresh(own);
  } else if (kids.file) {
    // a format node is named by its file when opening that file would build the same tree
    if (kids.file.exact && spec.children.file!.protocol && !json) exact = kids.file.exact;
  } else if (spec.protocol) {
    // a protocol opened with a filename it keeps is known by it
    exact = str(spec.own.filename) ?? '';
  }
  return { exact, full };
}

/** What qemu-img prints after "image:" for the node; `probed` is the format found when the top was probed. */
export function displayName(spec: NodeSpec, probed?: string): string {
  const r = refresh(spec, probed);
  if (r.exact) return r.exact;
  const text = `json:${toQemuJson(r.full)}`;
  // QEMU's filename buffer is PATH_MAX: a longer name is cut and ends in "..."
  return text.length >= 4096 ? `${text.slice(0, 4092)}...` : text;
}

/** The protocol node at the bottom of the file chain (what actually holds the bytes). */
export function protocolOf(spec: NodeSpec): NodeSpec {
  let s = spec;
  while (!s.protocol && s.children.file) s = s.children.file;
  return s;
}

export { crumple };
