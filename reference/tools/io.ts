/** Guest I/O as qemu-io's read/write/discard commands perform it, and a guest-content digest. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { BlockError } from '../errors.js';
import { openImage } from '../graph/open.js';
import { asImage } from '../node.js';
import { asSecretStore, type SecretsLike } from '../crypto/secret.js';
import type { BlockNode } from '../node.js';
import type { IoCommand } from '../../adapters/adapter.js';

export type { IoCommand };

export async function runIo(node: BlockNode, c: IoCommand): Promise<void> {
  switch (c.op) {
    case 'crash': throw new Error('crash is handled by the caller: it ends the writer');
    case 'write': return node.write(c.offset, Buffer.alloc(c.length, c.pattern));
    case 'write-file': return node.write(c.offset, await fileBytes(c.file, c.length));
    case 'zero': return node.writeZeroes(c.offset, c.length, { unmap: c.unmap });
    case 'discard': return node.discard(c.offset, c.length);
    case 'read': {
      const got = await node.read(c.offset, c.length);
      if (c.pattern < 0) return; // a plain read: nothing to verify
      const bad = got.findIndex((b) => b !== c.pattern);
      if (bad >= 0) {
        throw new BlockError('io', `Pattern verification failed at offset ${c.offset + bad}, ${c.length - bad} bytes`, { offset: c.offset + bad });
      }
      return;
    }
  }
}

/** The first `length` bytes of a host file; qemu-io refuses a file shorter than that, and so does this. */
async function fileBytes(file: string, length: number): Promise<Buffer> {
  const fh = await fs.open(file, 'r').catch((e: Error) => {
    throw new BlockError('not-found', `Failed to open file ${file}: ${e.message}`, { value: file });
  });
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, 0);
    if (bytesRead < length) throw new BlockError('invalid-size', `File ${file} is shorter than ${length} bytes`, { value: file });
    return buf;
  } finally {
    await fh.close();
  }
}

export async function ioOnImage(image: { filename: string; format?: string; imageOpts?: boolean; forceShare?: boolean; secrets?: SecretsLike; keySecret?: string }, commands: IoCommand[]): Promise<void> {
  const writes = commands.some((c) => c.op !== 'read');
  const crashes = commands.some((c) => c.op === 'crash');
  const node = await openImage(image.filename, { format: image.format, imageOpts: image.imageOpts, forceShare: image.forceShare, secrets: asSecretStore(image.secrets), keySecret: image.keySecret, readOnly: !writes, writethrough: crashes });
  let crashed = false;
  try {
    for (const c of commands) {
      if (c.op === 'crash') {
        crashed = true;
        await asImage(node).abandon?.();
        return;
      }
      await runIo(node, c);
    }
  } finally {
    if (!crashed) await node.close();
  }
}

export async function guestSha256(image: { filename: string; format?: string; imageOpts?: boolean; secrets?: SecretsLike; keySecret?: string }): Promise<string> {
  const node = await openImage(image.filename, { format: image.format, imageOpts: image.imageOpts, secrets: asSecretStore(image.secrets), keySecret: image.keySecret, readOnly: true });
  try {
    const h = createHash('sha256');
    const chunk = 4 * 1024 * 1024;
    for (let off = 0; off < node.size(); off += chunk) h.update(await node.read(off, Math.min(chunk, node.size() - off)));
    return h.digest('hex');
  } finally {
    await node.close();
  }
}
