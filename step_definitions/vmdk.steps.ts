// vmdk-specific observations of a created image: its embedded descriptor text.
import { Then } from '@cucumber/cucumber';
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import type { QbcWorld } from './world.js';

/** The descriptor of a vmdk: the whole file when it starts as text, else the embedded one (sparse header fields descriptorOffset/Size, in sectors). */
async function vmdkDescriptor(filename: string): Promise<string> {
  const fh = await open(filename, 'r');
  try {
    const head = Buffer.alloc(512);
    await fh.read(head, 0, 512, 0);
    if (head.readUInt32LE(0) !== 0x564d444b) {
      const text = Buffer.alloc(64 * 1024); // bounded: descriptors qemu writes are far smaller
      const { bytesRead } = await fh.read(text, 0, text.length, 0);
      return text.subarray(0, bytesRead).toString('latin1');
    }
    const offset = Number(head.readBigUInt64LE(28)) * 512;
    const size = Math.min(Number(head.readBigUInt64LE(36)) * 512, 64 * 1024);
    const text = Buffer.alloc(size);
    const { bytesRead } = await fh.read(text, 0, size, offset);
    return text.subarray(0, bytesRead).toString('latin1').replace(/\0+$/, '');
  } finally {
    await fh.close();
  }
}

Then('the vmdk descriptor has the line {string}', async function (this: QbcWorld, line: string) {
  assert.ok(this.lastTarget, 'no image was created');
  const text = await vmdkDescriptor(this.lastTarget.filename);
  const lines = text.split('\n').map((l) => l.trim());
  assert.ok(lines.includes(line), `descriptor of ${this.lastTarget.filename} lacks ${JSON.stringify(line)}:\n${text}`);
});
