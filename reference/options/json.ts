/**
 * QEMU's JSON dialect, as `json:` filenames are read (qobject_from_json in 7.2):
 * RFC 8259 plus single-quoted strings and the \' escape; a duplicate key is an
 * error; nesting deeper than 1024 is refused. Errors carry qemu's own words
 * ("JSON parse error, stray '1.}'", "Expecting at most one JSON value"), so a
 * user sees the same complaint from the reference as from qemu-img.
 *
 * Structure follows qemu's: a lexer (a token is refused at the first character
 * that cannot continue it, and the error shows the token up to that character),
 * a streamer that cuts the token stream into top-level values, and a
 * recursive-descent parser. Memory is bounded by the input: no token or value
 * is larger than the text it came from, and recursion is at most 1025 deep.
 */
import { BlockError } from '../errors.js';
import { flatten, isDict, put, type QDict, type QValue } from './qdict.js';

const MAX_NESTING = 1024;

type TokType = '{' | '}' | '[' | ']' | ':' | ',' | 'string' | 'int' | 'float' | 'keyword';
interface Token {
  type: TokType;
  text: string;
}

class JsonSyntaxError extends Error {}

const WS = new Set([' ', '\t', '\r', '\n']);
const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isLower = (c: string | undefined) => c !== undefined && c >= 'a' && c <= 'z';

/** Splits the text into tokens; a character no token can take ends the scan with "stray". */
function* lex(text: string): Generator<Token | { error: string }> {
  let i = 0;
  const n = text.length;
  const stray = (from: number, to: number) => ({ error: `JSON parse error, stray '${text.slice(from, Math.min(to, n))}'` });
  while (i < n) {
    const c = text[i]!;
    if (WS.has(c)) {
      i++;
      continue;
    }
    if ('{}[]:,'.includes(c)) {
      yield { type: c as TokType, text: c };
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      const start = i;
      i++;
      for (;;) {
        if (i >= n) return; // unterminated: the streamer reports premature EOI
        const d = text[i]!;
        if (d === c) break;
        if (d.charCodeAt(0) < 0x20) return yield stray(start, i + 1);
        if (d === '\\') {
          i++;
          if (i >= n) return;
          if (text[i]!.charCodeAt(0) < 0x20) return yield stray(start, i + 1);
        }
        i++;
      }
      i++;
      yield { type: 'string', text: text.slice(start, i) };
      continue;
    }
    if (c === '-' || isDigit(c)) {
      const start = i;
      let float = false;
      if (c === '-') i++;
      if (text[i] === '0') {
        i++;
        if (isDigit(text[i])) return yield stray(start, i + 1);
      } else if (isDigit(text[i])) {
        while (isDigit(text[i])) i++;
      } else return yield stray(start, i + 1);
      if (text[i] === '.') {
        float = true;
        i++;
        if (!isDigit(text[i])) return yield stray(start, i + 1);
        while (isDigit(text[i])) i++;
      }
      if (text[i] === 'e' || text[i] === 'E') {
        float = true;
        i++;
        if (text[i] === '+' || text[i] === '-') i++;
        if (!isDigit(text[i])) return yield stray(start, i + 1);
        while (isDigit(text[i])) i++;
      }
      yield { type: float ? 'float' : 'int', text: text.slice(start, i) };
      continue;
    }
    if (isLower(c)) {
      const start = i;
      while (isLower(text[i])) i++;
      yield { type: 'keyword', text: text.slice(start, i) };
      continue;
    }
    return yield stray(i, i + 1);
  }
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);

function literalNumber(tok: Token): QValue {
  if (tok.type === 'int') {
    const v = BigInt(tok.text);
    if (v >= I64_MIN && v <= U64_MAX) {
      if (v === 0n) return 0; // "-0" is the integer 0
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
  }
  return Number(tok.text); // a float, or an integer out of 64-bit range: a double (inf when huge)
}

const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function hex4(s: string, at: number): number {
  const h = s.slice(at, at + 4);
  return /^[0-9a-fA-F]{4}$/.test(h) ? parseInt(h, 16) : -1;
}

/** The string token's value; errors as qemu's parse_string words them. */
function literalString(tok: Token): string {
  const t = tok.text;
  const quote = t[0]!;
  let out = '';
  let i = 1;
  void quote;
  while (i < t.length - 1) {
    const c = t[i]!;
    if (c !== '\\') {
      out += c;
      i++;
      continue;
    }
    const beg = i;
    const e = t[i + 1]!;
    i += 2;
    if (e in SIMPLE_ESCAPES) {
      out += SIMPLE_ESCAPES[e];
      continue;
    }
    if (e !== 'u') throw new JsonSyntaxError('JSON parse error, invalid escape sequence in string');
    let cp = hex4(t, i);
    i += 4;
    if (cp >= 0xd800 && cp <= 0xdbff && t[i] === '\\' && t[i + 1] === 'u') {
      const trail = hex4(t, i + 2);
      if (trail >= 0xdc00 && trail <= 0xdfff) {
        cp = 0x10000 + ((cp & 0x3ff) << 10) + (trail & 0x3ff);
        i += 6;
      } else cp = -1;
    }
    if (cp < 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
      // qemu prints the escape as far as it read it, cut where the token ends
      throw new JsonSyntaxError(`JSON parse error, ${t.slice(beg, Math.min(i, t.length))} is not a valid Unicode character`);
    }
    out += String.fromCodePoint(cp);
  }
  return out;
}

/** Recursive descent over one top-level value's tokens. */
class Parser {
  private pos = 0;
  constructor(private readonly toks: Token[]) {}

  private peek(): Token | undefined {
    return this.toks[this.pos];
  }
  private pop(): Token {
    const t = this.toks[this.pos++];
    if (!t) throw new JsonSyntaxError('JSON parse error, premature EOI');
    return t;
  }

  value(): QValue {
    const t = this.peek();
    if (!t) throw new JsonSyntaxError('JSON parse error, premature EOI');
    switch (t.type) {
      case '{':
        return this.object();
      case '[':
        return this.array();
      case 'string':
        this.pos++;
        return literalString(t);
      case 'int':
      case 'float':
        this.pos++;
        return literalNumber(t);
      case 'keyword':
        this.pos++;
        if (t.text === 'true') return true;
        if (t.text === 'false') return false;
        if (t.text === 'null') return null;
        throw new JsonSyntaxError(`JSON parse error, invalid keyword '${t.text}'`);
      default:
        throw new JsonSyntaxError('JSON parse error, expecting value');
    }
  }

  private pair(d: QDict): void {
    const key = this.value();
    if (typeof key !== 'string') throw new JsonSyntaxError('JSON parse error, key is not a string in object');
    if (this.pop().type !== ':') throw new JsonSyntaxError('JSON parse error, missing : in object pair');
    const v = this.value();
    if (Object.prototype.hasOwnProperty.call(d, key)) throw new JsonSyntaxError('JSON parse error, duplicate key');
    put(d, key, v);
  }

  private object(): QDict {
    this.pop();
    const d: QDict = {};
    if (this.peek()?.type === '}') {
      this.pos++;
      return d;
    }
    if (!this.peek()) throw new JsonSyntaxError('JSON parse error, premature EOI');
    this.pair(d);
    for (let t = this.pop(); t.type !== '}'; t = this.pop()) {
      if (t.type !== ',') throw new JsonSyntaxError('JSON parse error, expected separator in dict');
      this.pair(d);
    }
    return d;
  }

  private array(): QValue[] {
    this.pop();
    const list: QValue[] = [];
    if (this.peek()?.type === ']') {
      this.pos++;
      return list;
    }
    list.push(this.value());
    for (let t = this.pop(); t.type !== ']'; t = this.pop()) {
      if (t.type !== ',') throw new JsonSyntaxError('JSON parse error, expected separator in list');
      list.push(this.value());
    }
    return list;
  }
}

/**
 * qobject_from_json: exactly one JSON value, or an Error whose message is
 * qemu's. Throws BlockError('invalid-option').
 */
export function parseQemuJson(text: string): QValue {
  let result: { v: QValue } | null = null;
  let err: string | null = null;
  const consume = (r: { v: QValue } | { e: string }) => {
    if (result) {
      result = null;
      err ??= 'Expecting at most one JSON value';
    }
    if (err) return;
    if ('e' in r) err = r.e;
    else result = r;
  };
  const parse = (toks: Token[]) => {
    try {
      const p = new Parser(toks);
      const v = p.value();
      consume({ v });
    } catch (e) {
      if (!(e instanceof JsonSyntaxError)) throw e;
      consume({ e: e.message });
    }
  };
  let toks: Token[] = [];
  let braces = 0;
  let brackets = 0;
  for (const t of lex(text)) {
    if (err) break;
    if ('error' in t) {
      consume({ e: t.error });
      toks = [];
      break;
    }
    if (t.type === '{') braces++;
    else if (t.type === '}') braces--;
    else if (t.type === '[') brackets++;
    else if (t.type === ']') brackets--;
    toks.push(t);
    if ((braces > 0 || brackets > 0) && braces + brackets > MAX_NESTING) {
      consume({ e: 'JSON nesting depth limit exceeded' });
      toks = [];
      break;
    }
    if (braces < 0 || brackets < 0 || (braces === 0 && brackets === 0)) {
      parse(toks);
      toks = [];
      braces = 0;
      brackets = 0;
    }
  }
  if (toks.length && !err) parse(toks);
  if (err !== null) throw new BlockError('invalid-option', err, { option: 'json' });
  if (result === null) throw new BlockError('invalid-option', 'Expecting a JSON value', { option: 'json' });
  return (result as { v: QValue }).v;
}

/**
 * parse_json_filename: the text after `json:` must be one JSON object; it is
 * returned flattened (dotted keys), as bdrv_open works on it.
 */
export function parseJsonFilename(filename: string): QDict {
  if (!filename.startsWith('json:')) throw new BlockError('invalid-option', `'${filename}' is not a json: filename`, { option: 'filename' });
  let v: QValue;
  try {
    v = parseQemuJson(filename.slice(5));
  } catch (e) {
    if (e instanceof BlockError) throw new BlockError('invalid-option', `Could not parse the JSON options: ${e.message}`, { option: 'json', cause: e });
    throw e;
  }
  if (!isDict(v)) throw new BlockError('invalid-option', 'Invalid JSON object given', { option: 'json' });
  return flatten(v);
}
