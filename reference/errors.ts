/**
 * Typed errors of the reference block layer.
 *
 * Every failure the reference reports is a BlockError with a stable `code` and,
 * where there is one, the offending option (`option`), header field (`field`) or
 * byte offset (`offset`). Messages name the option, the value and what is allowed,
 * because that is what a user fixing a command line needs.
 */
export type BlockErrorCode =
  | 'invalid-option' // an -o / blockdev option has a bad value or is unknown
  | 'option-conflict' // two options that cannot be combined
  | 'invalid-size' // a size that is not a number, negative, or out of range
  | 'not-found' // a file that does not exist
  | 'exists' // refusing to overwrite
  | 'unknown-format' // probing found nothing / -f names no driver
  | 'malformed' // an image header or table that cannot be valid
  | 'corrupt' // an image marked corrupt, or metadata found inconsistent on I/O
  | 'unsupported' // a valid image that uses a feature the reference lacks
  | 'read-only' // a write to a node opened read-only
  | 'out-of-range' // guest I/O beyond the virtual size
  | 'backing' // a backing chain problem (loop, missing file, missing format)
  | 'locked' // another process holds the image with permissions that clash (image locking)
  | 'io'; // the host said no

export interface BlockErrorDetails {
  option?: string;
  field?: string;
  offset?: number;
  value?: unknown;
  cause?: unknown;
}

export class BlockError extends Error {
  readonly code: BlockErrorCode;
  readonly option?: string;
  readonly field?: string;
  readonly offset?: number;
  readonly value?: unknown;

  constructor(code: BlockErrorCode, message: string, details: BlockErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'BlockError';
    this.code = code;
    this.option = details.option;
    this.field = details.field;
    this.offset = details.offset;
    this.value = details.value;
  }
}

/** Shorthand for the commonest error: an image whose metadata cannot be right. */
export function malformed(field: string, message: string, offset?: number): BlockError {
  return new BlockError('malformed', `${field}: ${message}`, { field, offset });
}
