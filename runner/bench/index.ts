/** Every group of benchmark cases, by area. One line per area; keep the order stable. */
import type { CaseGroup } from './case.js';
import { coreCases } from './core.js';
import { nbdCases } from './nbd.js';
import { filenameCases } from './filenames.js';
import { vpcVhdxCases } from './vpc-vhdx.js';
import { luksCases } from './luks.js';
import { fmt4Cases } from './fmt4.js';
import { iscsiCases } from './iscsi.js';
import { sshCases } from './ssh.js';
import { qcow2SnapshotCases } from './qcow2-snapshots.js';
import { localCases } from './local.js';
import { readonlyCases } from './readonly.js';
import { vmdkCases } from './vmdk.js';
import { vvfatCases } from './vvfat.js';
import { qcow2Cases } from './qcow2.js';

export const caseGroups: ReadonlyArray<[string, CaseGroup]> = [
  ['core', coreCases],
  ['nbd', nbdCases],
  ['filenames', filenameCases],
  ['vpc-vhdx', vpcVhdxCases],
  ['luks', luksCases],
  ['fmt4', fmt4Cases],
  ['iscsi', iscsiCases],
  ['ssh', sshCases],
  ['qcow2-snapshots', qcow2SnapshotCases],
  ['local', localCases],
  ['readonly', readonlyCases],
  ['vmdk', vmdkCases],
  ['vvfat', vvfatCases],
  ['qcow2', qcow2Cases],
  // (one line per area, above this comment)
];
