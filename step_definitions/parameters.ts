/**
 * Parameter types: the domain's words for sizes ("64 MiB", "512 bytes", "0"),
 * byte patterns ("0x5a"), format names and literal values of qemu-img's JSON.
 */
import { defineParameterType } from '@cucumber/cucumber';
import { parseSize } from './support/units.js';

defineParameterType({
  name: 'size',
  regexp: /\d+ (?:bytes?|KiB|MiB|GiB|TiB|PiB)|\d+/,
  transformer: (s: string) => parseSize(s),
});

defineParameterType({
  name: 'pattern',
  regexp: /0x[0-9a-fA-F]{2}/,
  transformer: (s: string) => Number.parseInt(s, 16),
});

defineParameterType({
  name: 'format',
  // longer names first: qcow2 before qcow
  regexp: /qcow2|qcow|raw|qed|vdi|parallels|vmdk|vpc|vhdx|luks/,
  transformer: (s: string) => s,
});

/** A JSON literal as qemu-img prints it: 4096, true, "0.10". */
defineParameterType({
  name: 'json',
  regexp: /-?\d+|true|false|"[^"]*"/,
  transformer: (s: string): unknown => JSON.parse(s),
});

/** How qemu-img map describes an extent. */
defineParameterType({
  name: 'extent',
  regexp: /data from the backing file at depth \d+|data|zeroes|unallocated|allocated/,
  transformer: (s: string) => s,
});
