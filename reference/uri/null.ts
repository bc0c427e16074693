/**
 * null-co:// and null-aio:// (block/null.c): a device of `size` bytes (1 GiB by
 * default) that reads as zeroes when read-zeroes is on and drops writes. The
 * only filename is the bare "null-co://"; its shown name stays that while no
 * option other than latency-ns is set.
 */
import { syntaxError, type FilenameSyntax } from './syntax.js';

export const NULL_DEFAULT_SIZE = 1 << 30;

function nullSyntax(driver: 'null-co' | 'null-aio'): FilenameSyntax {
  const only = `${driver}://`;
  return {
    driver,
    prefixes: [driver],
    strong: ['size', 'read-zeroes'],
    parse(filename) {
      if (filename !== only) throw syntaxError(`The only allowed filename for this driver is '${only}'`, 'filename', filename);
      return {};
    },
    refresh(own) {
      for (const k of Object.keys(own)) if (k !== 'filename' && k !== 'driver' && k !== 'latency-ns') return '';
      return only;
    },
  };
}

export const nullCoSyntax = nullSyntax('null-co');
export const nullAioSyntax = nullSyntax('null-aio');
