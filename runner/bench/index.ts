/** Every group of benchmark cases, by area. One line per area; keep the order stable. */
import type { CaseGroup } from './case.js';
import { coreCases } from './core.js';
import { nbdCases } from './nbd.js';
import { filenameCases } from './filenames.js';
import { vpcVhdxCases } from './vpc-vhdx.js';
import { luksCases } from './luks.js';

export const caseGroups: ReadonlyArray<[string, CaseGroup]> = [
  ['core', coreCases],
  ['nbd', nbdCases],
  ['filenames', filenameCases],
  ['vpc-vhdx', vpcVhdxCases],
  ['luks', luksCases],
  // (one line per area, above this comment)
];
