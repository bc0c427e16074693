/**
 * Xen Orchestra's vhd-lib 4.15.0 (VHD read and write), an optional adapter.
 *
 * As published, `npm install vhd-lib@4.15.0` fails: it depends on @vates/diff ^0.1.0, which
 * the registry no longer serves (404), and it pulls @xen-orchestra/fs with the AWS and Azure
 * SDKs. qbc does not stand a hand-written @vates/diff in for the missing one (an `overrides`
 * to a vendored package): the adapter would then test vhd-lib plus qbc's own code, not vhd-lib
 * as anyone can install it, and a finding could be ours. So the adapter reports every
 * scenario not applicable with that reason until vhd-lib installs as published; when it is
 * present (installed by other means) it still says so, because qbc has no tested translation
 * for its API yet.
 */
import type { Adapter } from './adapter.js';
import { installedVersion, unavailableAdapter } from './npm-common.js';

const NAME = 'vhd-lib';
const WHY_ABSENT = 'vhd-lib 4.15.0 is not installable as published: its dependency @vates/diff ^0.1.0 is not on the npm registry (404), so qbc does not install it';

export async function createVhdLibAdapter(): Promise<Adapter> {
  const version = installedVersion('vhd-lib');
  const why = version === null ? WHY_ABSENT : `vhd-lib ${version} is installed, but qbc has no tested translation of its API (it could not be installed to write one: ${WHY_ABSENT})`;
  return unavailableAdapter(NAME, ['vpc'], why);
}
