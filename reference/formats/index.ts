/** Every format driver the reference has, by name. */
import type { FormatDriver } from './driver.js';
import { qcow2Driver } from './qcow2/index.js';
import { rawDriver } from './raw.js';
import { qedDriver } from './qed/index.js';
import { qcowDriver } from './qcow/index.js';
import { vdiDriver } from './vdi.js';
import { parallelsDriver } from './parallels.js';
import { vpcDriver } from './vpc.js';
import { vhdxDriver } from './vhdx/index.js';
import { luksDriver } from './luks.js';
import { bochsDriver } from './bochs.js';
import { cloopDriver } from './cloop.js';
import { dmgDriver } from './dmg/index.js';
import { vmdkDriver } from './vmdk/index.js';

export const formatDrivers: ReadonlyMap<string, FormatDriver> = new Map<string, FormatDriver>([
  ['raw', rawDriver],
  ['qcow2', qcow2Driver],
  ['vdi', vdiDriver],
  ['parallels', parallelsDriver],
  ['qed', qedDriver],
  ['qcow', qcowDriver],
  ['vpc', vpcDriver],
  ['vhdx', vhdxDriver],
  ['luks', luksDriver],
  ['bochs', bochsDriver],
  ['cloop', cloopDriver],
  ['dmg', dmgDriver],
  ['vmdk', vmdkDriver],
  // (one line per driver, above this comment)
]);

export function probeFormat(head: Buffer, filename: string): FormatDriver {
  let best = rawDriver;
  let score = 0;
  for (const d of formatDrivers.values()) {
    const s = d.probe(head, filename);
    if (s > score) { score = s; best = d; }
  }
  return best;
}
