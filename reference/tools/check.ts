/** qemu-img check [-r leaks|all] --output=json */
import { asSecretStore, type SecretsLike } from '../crypto/secret.js';
import type { CheckResult } from '../../adapters/adapter.js';
import { BlockError } from '../errors.js';
import { openImage, shownName } from '../graph/open.js';
import { asImage } from '../node.js';

export async function checkImage(filename: string, opts: { format?: string; repair?: 'leaks' | 'all'; log?: (l: string) => void; imageOpts?: boolean; forceShare?: boolean; secrets?: SecretsLike; keySecret?: string } = {}): Promise<CheckResult> {
  const node = await openImage(filename, { format: opts.format, readOnly: !opts.repair, noBacking: true, forCheck: true, imageOpts: opts.imageOpts, forceShare: opts.forceShare, secrets: asSecretStore(opts.secrets), keySecret: opts.keySecret });
  try {
    const img = asImage(node);
    if (!img.check) {
      throw new BlockError('unsupported', 'This image format does not support checks', { value: node.driver });
    }
    const r = await img.check({ repair: opts.repair, log: opts.log });
    return { ...r, filename: shownName(node) ?? filename, format: node.driver };
  } finally {
    await node.close();
  }
}
