/** qemu-img compare: do two images show the same guest bytes? */
import { openImage } from '../graph/open.js';
import { asSecretStore, type SecretsLike } from '../crypto/secret.js';

export interface CompareResult { identical: boolean; message: string; offset?: number }

const CHUNK = 1024 * 1024;

export interface CompareSource { filename: string; format?: string; imageOpts?: boolean; forceShare?: boolean; secrets?: SecretsLike; keySecret?: string }

export async function compareImages(a: CompareSource, b: CompareSource, opts: { strict?: boolean } = {}): Promise<CompareResult> {
  const na = await openImage(a.filename, { format: a.format, imageOpts: a.imageOpts, forceShare: a.forceShare, secrets: asSecretStore(a.secrets), keySecret: a.keySecret, readOnly: true });
  try {
    const nb = await openImage(b.filename, { format: b.format, imageOpts: b.imageOpts, forceShare: b.forceShare, secrets: asSecretStore(b.secrets), keySecret: b.keySecret, readOnly: true });
    try {
      if (opts.strict && na.size() !== nb.size()) return { identical: false, message: 'Strict mode: Image size mismatch!' };
      const common = Math.min(na.size(), nb.size());
      for (let off = 0; off < common; off += CHUNK) {
        const n = Math.min(CHUNK, common - off);
        const [x, y] = [await na.read(off, n), await nb.read(off, n)];
        if (!x.equals(y)) {
          let k = 0;
          while (x[k] === y[k]) k++;
          const at = off + Math.floor(k / 512) * 512;
          return { identical: false, message: `Content mismatch at offset ${at}!`, offset: at };
        }
      }
      // The longer image must be zero beyond the shorter one's end.
      const longer = na.size() > nb.size() ? na : nb;
      for (let off = common; off < longer.size(); off += CHUNK) {
        const x = await longer.read(off, Math.min(CHUNK, longer.size() - off));
        const k = x.findIndex((v) => v !== 0);
        if (k >= 0) {
          const at = off + Math.floor(k / 512) * 512;
          return { identical: false, message: `Content mismatch at offset ${at}!`, offset: at };
        }
      }
      return { identical: true, message: 'Images are identical.' };
    } finally {
      await nb.close();
    }
  } finally {
    await na.close();
  }
}
