/**
 * Dotted option lists, as `qemu-img --image-opts` and `-blockdev`-style
 * command lines give them: `driver=qcow2,file.driver=file,file.filename=a.img`.
 * QemuOpts text (",," escapes a comma; a bare `name` is `name=on`, `noname`
 * is `name=off`, both deprecated in 7.2) whose keys stay flat and whose values
 * stay strings, which is how the block layer receives them. A first element
 * without '=' is the implied `file` option (a node reference), as in QEMU.
 */
import { parseQemuOpts } from './qemuopts.js';
import { put, type QDict } from './qdict.js';

export interface DottedOptions {
  options: QDict;
  /** qemu's deprecation warnings for short-form booleans */
  warnings: string[];
}

export function parseDottedOptions(text: string): DottedOptions {
  const parsed = parseQemuOpts(text, { firstName: 'file' });
  const options: QDict = {};
  const warnings: string[] = [];
  // parseQemuOpts turns a bare word into word=on / (no)word=off; qemu warns about exactly those
  const bare = new Set<string>();
  for (const piece of splitTopLevel(text).slice(1)) if (!piece.includes('=') && piece !== 'help' && piece !== '?') bare.add(piece);
  for (const b of bare) {
    const name = b.startsWith('no') ? b.slice(2) : b;
    warnings.push(`short-form boolean option '${b}' deprecated\nPlease use ${name}=${b.startsWith('no') ? 'off' : 'on'} instead`);
  }
  for (const [k, v] of parsed.pairs) put(options, k, v);
  if (parsed.help) put(options, 'help', 'on');
  return { options, warnings };
}

/** the comma-separated elements, ",," kept inside an element */
function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ',') {
      if (text[i + 1] === ',') {
        cur += ',';
        i++;
        continue;
      }
      out.push(cur);
      cur = '';
    } else cur += text[i];
  }
  out.push(cur);
  return out;
}
