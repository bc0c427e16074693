/**
 * The libyal adapter (a third-party implementation, issue 10) against images made
 * by real qemu-img: its guest sha256 equals qemu's, verified reads catch a wrong
 * byte, what it cannot do is refused with its name, and a qcow2 feature libqcow
 * 20201213 lacks gives libyal's own error, not a result.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ImplError } from '../adapters/adapter.js';
import { loadAdapter } from '../adapters/index.js';
import { createQemuAdapter } from '../adapters/qemu.js';

const dir = mkdtempSync(join(tmpdir(), 'qbc-libyal-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function qemuImg(...args: string[]): void {
  execFileSync('qemu-img', args, { timeout: 30_000 });
}
function qemuIo(file: string, cmd: string): void {
  execFileSync('qemu-io', ['-c', cmd, file], { timeout: 30_000 });
}

test('libyal reads qcow2, vmdk, vpc and vhdx made by qemu-img with the guest bytes qemu reads', async () => {
  const libyal = await loadAdapter('libyal');
  const qemu = createQemuAdapter();
  const src = join(dir, 'src.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', src, '3M');
  qemuIo(src, 'write -P 0x5a 60k 72k');
  qemuIo(src, 'write -P 0xc3 2M 4k');
  for (const fmt of ['qcow2', 'vmdk', 'vpc', 'vhdx']) {
    assert.deepEqual(libyal.capabilities.formats[fmt], ['read'], `libyal declares ${fmt}: ${libyal.capabilities.notes?.[fmt] ?? ''}`);
    const img = { filename: fmt === 'qcow2' ? src : join(dir, `c.${fmt}`), format: fmt };
    if (fmt !== 'qcow2') qemuImg('convert', '-O', fmt, src, img.filename);
    assert.equal(await libyal.guestSha256(img), await qemu.guestSha256(img), `${fmt}: guest sha256`);
    await libyal.io(img, [{ op: 'read', offset: 61440, length: 73728, pattern: 0x5a }, { op: 'read', offset: 2 << 20, length: 4096, pattern: 0xc3 }]);
    await assert.rejects(libyal.io(img, [{ op: 'read', offset: 61440, length: 4097 * 18, pattern: 0x5a }]), /Pattern verification failed at offset 135168: 0x0 read, 0x5a expected/, `${fmt}: a wrong byte is found`);
  }
});

test('libyal refuses what it cannot do by name, and a qcow2 feature libqcow lacks fails with its error', async () => {
  const libyal = await loadAdapter('libyal');
  const img = { filename: join(dir, 'zstd.qcow2'), format: 'qcow2' };
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compression_type=zstd', img.filename, '1M');
  await assert.rejects(libyal.guestSha256(img), (e: unknown) => e instanceof ImplError && /unsupported incompatible features flags: 0x00000008/.test(e.message));
  await assert.rejects(libyal.create({ format: 'qcow2', filename: join(dir, 'x.qcow2'), size: 1 << 20 }), /libyal reads images only: it has no create/);
  await assert.rejects(libyal.io(img, [{ op: 'write', offset: 0, length: 512, pattern: 1 }]), /it has no write/);
  await assert.rejects(libyal.guestSha256({ filename: img.filename }), /does not probe/);
});
