/**
 * Encrypted qcow2 and qcow (issue 6): writes with the wrong or no key, a compressed
 * conversion into an encrypted image, and hostile full disk encryption header extensions
 * built in code from the image the scenario made (no crafted binaries are committed).
 * Every refused write must leave the file byte for byte as it was.
 */
import { open } from 'node:fs/promises';
import { Given, When } from '@cucumber/cucumber';
import type { QbcWorld } from './world.js';
import { sha256File } from '../adapters/qemu.js';
import { attempt } from './support/errors.js';
import type { SecretObject } from '../adapters/adapter.js';

const EXT_CRYPTO_HEADER = 0x0537be77;

/** File offset of the crypto header extension's 8-byte type+length word in a qcow2 image. */
async function cryptoExtension(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(65536);
    await fh.read(head, 0, head.length, 0);
    const version = head.readUInt32BE(4);
    let at = version >= 3 ? head.readUInt32BE(100) : 72;
    while (at + 8 <= head.length) {
      const type = head.readUInt32BE(at);
      const len = head.readUInt32BE(at + 4);
      if (type === EXT_CRYPTO_HEADER) return at;
      if (type === 0) break;
      at += 8 + Math.ceil(len / 8) * 8;
    }
  } finally {
    await fh.close();
  }
  throw new Error(`${path} has no crypto header extension`);
}

async function patch(path: string, offset: number, bytes: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, offset);
  } finally {
    await fh.close();
  }
}

Given('the crypto header extension of the image is cut to {int} bytes', async function (this: QbcWorld, n: number) {
  const path = this.image().filename;
  const at = await cryptoExtension(path);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(n);
  await patch(path, at + 4, len);
  this.sha256Before = await sha256File(path);
});

Given('the crypto header extension of the image points past the end of the file', async function (this: QbcWorld) {
  const path = this.image().filename;
  const at = await cryptoExtension(path);
  const off = Buffer.alloc(8);
  off.writeBigUInt64BE(0x10000000n); // 256 MiB: far past a few-MiB image
  await patch(path, at + 8, off);
  this.sha256Before = await sha256File(path);
});

async function tryWrite(world: QbcWorld, length: number, pattern: number, offset: number, secrets: SecretObject[] | undefined, keySecret: string | undefined): Promise<'skipped' | undefined> {
  const img = world.image();
  const skip = world.needs(img.format, 'write');
  if (skip) return skip;
  world.sha256Before = await sha256File(img.filename);
  world.lastError = await attempt(() => world.iut.io({ filename: img.filename, format: img.format, secrets, keySecret }, [{ op: 'write', offset, length, pattern }]));
  return undefined;
}

When('a write of {size} of pattern {pattern} at offset {size} is attempted with the passphrase {string}', function (this: QbcWorld, length: number, pattern: number, offset: number, pass: string) {
  const id = this.image().keySecret ?? 'sec0';
  return tryWrite(this, length, pattern, offset, [{ id, data: pass }], id);
});

When('a write of {size} of pattern {pattern} at offset {size} is attempted without a key secret', function (this: QbcWorld, length: number, pattern: number, offset: number) {
  return tryWrite(this, length, pattern, offset, undefined, undefined);
});

When('a write of {size} of pattern {pattern} at offset {size} is attempted with the image\'s key', function (this: QbcWorld, length: number, pattern: number, offset: number) {
  const img = this.image();
  return tryWrite(this, length, pattern, offset, img.secrets, img.keySecret);
});
