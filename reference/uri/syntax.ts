/**
 * What every filename syntax module provides: the protocol names it owns, the
 * parse of a filename to the driver's options (QEMU's bdrv_parse_filename), and
 * the name qemu-img shows for a node of that driver (bdrv_refresh_filename).
 *
 * Options are QDicts with flat dotted keys, as QEMU keeps a node's own options
 * (`server.host`), values typed the way the driver puts them (strings mostly).
 */
import { BlockError } from '../errors.js';
import type { QDict, QValue } from '../options/qdict.js';

export interface FilenameSyntax {
  /** the blockdev driver name */
  readonly driver: string;
  /** protocol names (the text before the first ':') that select this driver */
  readonly prefixes: readonly string[];
  /**
   * The driver's own filename parser. `given` holds options the user set
   * besides the filename (some drivers refuse mixing them). Returns the flat
   * options to add. Absent: the filename stays the `filename` option.
   */
  parse?(filename: string, given: QDict): QDict;
  /** the driver keeps `filename` after parsing (bdrv_needs_filename) */
  readonly keepsFilename?: boolean;
  /** strong runtime options: they change what the node is, so qemu-img's json: names show them; "x." is a prefix */
  readonly strong: readonly string[];
  /** bdrv_refresh_filename: the plain name of a node with these (flat, own) options, or '' when there is none */
  refresh?(own: QDict): string;
  /** the options as -blockdev takes them, from what the filename parser left (legacy keys translated) */
  canonical?(own: QDict): QDict;
}

/** A filename the driver's grammar refuses; the message is qemu's where qemu has one, with the reason added. */
export function syntaxError(message: string, option: string, value?: unknown): BlockError {
  return new BlockError('invalid-option', message, { option, value });
}

export function str(v: QValue | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** qemu's strtol-like "is this all decimal digits" (qemu_strtoul with no end pointer). */
export function isDecimal(s: string): boolean {
  return /^[0-9]+$/.test(s);
}
