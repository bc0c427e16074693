/** The vhdx driver table: probe by the "vhdxfile" signature, create, open. */
import type { FormatDriver } from '../driver.js';
import type { VhdxCreateOptions } from '../../types/create-vhdx.js';
import { createVhdx } from './create.js';
import { VhdxImage } from './image.js';

export { VhdxImage } from './image.js';

export const vhdxDriver: FormatDriver = {
  name: 'vhdx',
  probe: (head) => (head.length >= 8 && head.toString('latin1', 0, 8) === 'vhdxfile' ? 100 : 0),
  create: (file, options) => createVhdx(file, options as VhdxCreateOptions),
  open: (file, ctx) => VhdxImage.open(file, ctx),
  createOptionKeys: ['size', 'log_size', 'block_size', 'subformat', 'block_state_zero', 'preallocation', 'nocow', 'extent_size_hint'],
};
