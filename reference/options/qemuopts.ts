/**
 * QemuOpts text, parsed the way QEMU 7.2 parses `-o` / `-blockdev` style option strings.
 *
 * Grammar (util/qemu-option.c behaviour, checked against qemu-img 7.2):
 * - `name=value` pairs separated by `,`; inside a value `,,` stands for one literal comma.
 * - a name ends at the first `=` or `,` (names cannot contain escaped commas);
 *   everything after the first `=` is the value, so `a=b=c` sets a to `b=c`.
 * - a bare `name` means `name=on`; a bare `noname` means `name=off` (so a bare `nocow`
 *   is `cow=off`, which qemu-img refuses as an unknown parameter);
 * - a bare `help` or `?` asks for help.
 * - the same name twice: the last one wins.
 * qemu-img additionally refuses an empty list, a leading comma and an odd number of
 * trailing commas ("Invalid option list"); see isValidOptionList.
 */
import { BlockError } from '../errors.js';

export interface ParsedOpts {
  /** name -> value text, last occurrence wins */
  values: Map<string, string>;
  /** every pair in the order written (duplicates included) */
  pairs: Array<[string, string]>;
  /** a bare `help` or `?` was present */
  help: boolean;
}

/** qemu-img's check on the raw `-o` argument (qemu-img.c is_valid_option_list). */
export function isValidOptionList(text: string): boolean {
  if (text === '' || text.startsWith(',')) return false;
  let trailing = 0;
  for (let i = text.length - 1; i >= 0 && text[i] === ','; i--) trailing++;
  // An even run of trailing commas is an escaped comma inside the last value.
  return trailing % 2 === 0;
}

/** Reads a value up to the next unescaped comma; returns [value, index after it]. */
function readValue(text: string, start: number): [string, number] {
  let out = '';
  let i = start;
  while (i < text.length) {
    const c = text[i];
    if (c === ',') {
      if (text[i + 1] === ',') {
        out += ',';
        i += 2;
        continue;
      }
      break;
    }
    out += c;
    i++;
  }
  return [out, i];
}

/**
 * Parses QemuOpts text. `firstName` names an implicit first option (like `file` for
 * `-drive foo.img,...`): a leading element without `=` becomes its value.
 */
export function parseQemuOpts(text: string, opts: { firstName?: string } = {}): ParsedOpts {
  const pairs: Array<[string, string]> = [];
  let help = false;
  let i = 0;
  let first = true;
  while (i < text.length) {
    const stop = text.slice(i).search(/[=,]/);
    const nameEnd = stop < 0 ? text.length : i + stop;
    let name: string;
    let value: string;
    if (text[nameEnd] === '=') {
      name = text.slice(i, nameEnd);
      [value, i] = readValue(text, nameEnd + 1);
    } else if (first && opts.firstName !== undefined) {
      name = opts.firstName;
      [value, i] = readValue(text, i);
    } else {
      name = text.slice(i, nameEnd);
      i = nameEnd;
      if (name === 'help' || name === '?') {
        help = true;
        if (i < text.length) i++;
        first = false;
        continue;
      }
      if (name.startsWith('no')) {
        name = name.slice(2);
        value = 'off';
      } else {
        value = 'on';
      }
    }
    pairs.push([name, value]);
    first = false;
    if (i < text.length) i++; // the separating comma
  }
  const values = new Map<string, string>();
  for (const [n, v] of pairs) values.set(n, v);
  return { values, pairs, help };
}

/** Formats name/value pairs back to QemuOpts text, escaping commas in values. */
export function formatQemuOpts(values: Iterable<[string, string]>): string {
  return [...values].map(([n, v]) => `${n}=${v.replaceAll(',', ',,')}`).join(',');
}

// ---------------------------------------------------------------------------
// Scalar parsers. Each returns the value or throws BlockError naming the option.

const BOOL_WORDS: Record<string, boolean> = {
  on: true, yes: true, true: true, y: true,
  off: false, no: false, false: false, n: false,
};

/** The words qemu 7.2 accepts for a bool option (qapi_bool_parse); case-sensitive. */
export const boolWords: readonly string[] = Object.keys(BOOL_WORDS);

export function parseBool(text: string, option = 'value'): boolean {
  const v = BOOL_WORDS[text];
  if (v === undefined) {
    throw new BlockError(
      'invalid-option',
      `${option}: '${text}' is not a boolean; allowed: ${boolWords.join(', ')}`,
      { option, value: text },
    );
  }
  return v;
}

const SUFFIX_SHIFT: Record<string, bigint> = {
  b: 0n, B: 0n, k: 10n, K: 10n, m: 20n, M: 20n, g: 30n, G: 30n,
  t: 40n, T: 40n, p: 50n, P: 50n, e: 60n, E: 60n,
};

const U64_MAX = (1n << 64n) - 1n;

export interface SizeParse {
  value: bigint;
  /** qemu 7.2 accepts `0x1k` but warns the suffix on hex is deprecated */
  deprecatedHexSuffix: boolean;
}

/** Leading whitespace and an optional sign, as strtoull skips them. */
const LEAD = /^[ \t\n\v\f\r]*[+-]?/;

/**
 * qemu_strtosz as in 7.2: a decimal integer, optionally a fraction, optionally one
 * suffix b/B k/K m/M g/G t/T p/P e/E (powers of 1024). A fraction needs a suffix
 * other than b (no fractional bytes); the result is rounded half up. Hex (`0x..`) is
 * taken without fraction; a suffix on hex is accepted with a deprecation warning.
 * Negative numbers, exponents and anything trailing are refused. Returns null on
 * malformed input and 'range' when the result does not fit in 64 bits.
 */
export function strtosz(text: string): SizeParse | null | 'range' {
  const lead = LEAD.exec(text)![0];
  if (lead.includes('-')) return null;
  let rest = text.slice(lead.length);
  let deprecatedHexSuffix = false;
  let intPart: bigint;
  let fraction = 0; // the fractional digits, as a double in [0, 1]
  const hex = /^0[xX]([0-9a-fA-F]+)/.exec(rest);
  if (hex) {
    intPart = BigInt('0x' + hex[1]);
    rest = rest.slice(hex[0].length);
    if (rest.startsWith('.')) return null;
    if (rest.length > 0 && rest[0] in SUFFIX_SHIFT) deprecatedHexSuffix = true;
  } else {
    const dec = /^[0-9]+/.exec(rest);
    if (!dec) return null;
    intPart = BigInt(dec[0]);
    rest = rest.slice(dec[0].length);
    if (rest.startsWith('.')) {
      // strtod on ".digits"; "1.k" (no digits) is accepted as 1k.
      const frac = /^\.([0-9]*)/.exec(rest)!;
      if (/^[eE][+-]?[0-9]/.test(rest.slice(frac[0].length)) && frac[1] !== '') return null;
      fraction = frac[1] === '' ? 0 : Number('0.' + frac[1]);
      rest = rest.slice(frac[0].length);
    }
  }
  if (intPart > U64_MAX) return 'range';
  let shift = 0n;
  if (rest.length > 0 && rest[0] in SUFFIX_SHIFT) {
    shift = SUFFIX_SHIFT[rest[0]];
    rest = rest.slice(1);
  }
  if (rest.length > 0) return null;
  if (shift === 0n) {
    if (fraction !== 0) return null;
    return { value: intPart, deprecatedHexSuffix };
  }
  // 64.64 fixed point like qemu: fraction scaled by 2^64, times the multiplier.
  const scaled = fraction * 2 ** 64;
  const valf = scaled >= 2 ** 64 ? U64_MAX : BigInt(Math.floor(scaled));
  const fracProduct = valf << shift; // < 2^(64+shift)
  let value = (intPart << shift) + (fracProduct >> 64n);
  if (((fracProduct >> 63n) & 1n) === 1n) value += 1n; // round 0.5 upward
  if (value > U64_MAX) return 'range';
  return { value, deprecatedHexSuffix };
}

const SIZE_HELP =
  'a non-negative number below 2^64, optionally with a suffix k, M, G, T, P or E (powers of 1024), e.g. 64k or 1.5M';

/**
 * Parses a size like qemu (see strtosz) into a JS number. Sizes above 2^53 are
 * returned only when exactly representable (powers of two such as 1E); others are
 * refused, since a rounded size would silently differ from what was asked.
 */
export function parseSize(text: string, option = 'size'): number {
  const r = strtosz(text);
  const code = option === 'size' ? 'invalid-size' : 'invalid-option';
  if (r === null || r === 'range') {
    throw new BlockError(code, `${option}: '${text}' is not a valid size; allowed: ${SIZE_HELP}`, {
      option,
      value: text,
    });
  }
  const n = Number(r.value);
  if (BigInt(n) !== r.value) {
    throw new BlockError(
      code,
      `${option}: '${text}' (${r.value} bytes) cannot be represented exactly; allowed: sizes up to 2^53 or exact powers of two`,
      { option, value: text },
    );
  }
  return n;
}

/**
 * A QemuOpts number: qemu_strtou64 with base 0 (decimal, 0x hex, leading 0 octal).
 * Like strtoull, leading blanks and a sign are accepted and `-n` wraps to 2^64 - n
 * (qemu then usually refuses the huge value in a range check).
 */
export function parseNumber(text: string, option = 'value'): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) {
    throw new BlockError('invalid-option', `${option}: '${text}' is not a number; allowed: an integer (decimal, 0x hex or 0 octal)`, {
      option,
      value: text,
    });
  }
  const digits = m[2];
  let v: bigint;
  if (/^0[xX]/.test(digits)) v = BigInt(digits);
  else if (digits.length > 1 && digits.startsWith('0')) v = BigInt('0o' + digits.slice(1));
  else v = BigInt(digits);
  if (v > U64_MAX) {
    throw new BlockError('invalid-option', `${option}: '${text}' is too large; allowed: an integer below 2^64`, {
      option,
      value: text,
    });
  }
  if (m[1] === '-' && v !== 0n) v = (1n << 64n) - v;
  return Number(v);
}
