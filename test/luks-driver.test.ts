// The luks format driver and the batched XTS sector cipher (issue 6), in-process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SectorCipher } from '../reference/crypto/luks1.js';
import { createReferenceAdapter } from '../adapters/reference.js';

/** XTS (or `mode`) the slow, obviously right way: one node cipher per sector. */
function perSector(encrypt: boolean, key: Buffer, data: Buffer, sector: number, plain: boolean, mode = 'xts'): Buffer {
  const out = Buffer.from(data);
  const algo = `aes-${(mode === 'xts' ? key.length / 2 : key.length) * 8}-${mode}`;
  for (let off = 0, s = sector; off < out.length; off += 512, s++) {
    const iv = Buffer.alloc(16);
    if (plain) iv.writeUInt32LE(s % 2 ** 32, 0);
    else iv.writeBigUInt64LE(BigInt(s), 0);
    const c = (encrypt ? createCipheriv : createDecipheriv)(algo, key, iv).setAutoPadding(false);
    c.update(out.subarray(off, off + 512)).copy(out, off);
  }
  return out;
}

test('batched XTS equals node\'s per-sector aes-xts for plain64 and plain, both key sizes, any buffer alignment', () => {
  for (const [keyLen, mode, plain, sector] of [[64, 'xts-plain64', false, 0], [32, 'xts-plain64', false, 2 ** 33 + 5], [64, 'xts-plain', true, 2 ** 32 - 3]] as const) {
    const key = randomBytes(keyLen);
    const c = new SectorCipher('aes', mode, key);
    const backing = randomBytes(8 * 512 + 1);
    const data = backing.subarray(1); // deliberately not 4-byte aligned
    const expect = perSector(true, key, data, sector, plain);
    const mine = Buffer.from(data);
    c.run(true, mine.subarray(0), sector);
    assert.ok(mine.equals(expect), `${mode} ${keyLen * 4} bits at sector ${sector}: encryption`);
    const copy = Buffer.from(backing).subarray(1);
    expect.copy(copy);
    c.run(false, copy, sector);
    assert.ok(copy.equals(data), `${mode}: decryption`);
  }
});

test('requests of many sectors (several 64 KiB pieces, a ragged last one) equal node\'s per-sector aes-xts and aes-cbc', () => {
  for (const [mode, keyLen] of [['xts', 64], ['cbc', 32], ['cbc', 16]] as const) {
    const key = randomBytes(keyLen);
    const c = new SectorCipher('aes', `${mode}-plain64`, key);
    const data = randomBytes(300 * 512);
    const sector = 2 ** 32 + 77;
    const expect = perSector(true, key, data, sector, false, mode);
    const mine = Buffer.from(data);
    c.run(true, mine, sector);
    assert.ok(mine.equals(expect), `aes-${mode} encryption of 300 sectors`);
    c.run(false, mine, sector);
    assert.ok(mine.equals(data), `aes-${mode} decryption of 300 sectors`);
  }
});

test('luks: create, write, reopen, read; a wrong or missing key is a typed refusal that never shows the passphrase', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qbc-luks-'));
  try {
    const a = createReferenceAdapter();
    const filename = join(dir, 'x.luks');
    const secrets = [{ id: 'k', data: 'right one' }];
    await a.create({ format: 'luks', filename, size: 1 << 20, options: 'key-secret=k,iter-time=1', secrets });
    const img = { filename, format: 'luks', secrets, keySecret: 'k' };
    await a.io(img, [{ op: 'write', offset: 700, length: 3000, pattern: 0x3d }]);
    await a.io(img, [{ op: 'read', offset: 700, length: 3000, pattern: 0x3d }]);
    await assert.rejects(a.io({ ...img, secrets: [{ id: 'k', data: 'wrong one' }] }, [{ op: 'read', offset: 0, length: 512, pattern: -1 }]),
      (e: Error) => /Invalid password/.test(e.message) && !e.message.includes('wrong one'));
    await assert.rejects(a.io({ filename, format: 'luks' }, [{ op: 'read', offset: 0, length: 512, pattern: -1 }]), /key-secret/);
    await assert.rejects(a.create({ format: 'luks', filename: join(dir, 'y.luks'), size: 1 << 20, options: 'key-secret=k,cipher-alg=3des', secrets }), /3des|cipher-alg/);
    const info = await a.info({ filename });
    assert.equal(info.encrypted, true);
    assert.ok(!JSON.stringify(info).includes('right one'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
