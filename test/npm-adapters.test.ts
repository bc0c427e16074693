/**
 * The npm third-party adapters on images real qemu-img makes: what each reads right, the
 * package bugs they surface as typed errors (never a crash).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { ImplError } from '../adapters/adapter.js';
import { loadAdapter } from '../adapters/index.js';

const qemu = (tool: string, args: string[]) => execa(tool, args, { timeout: 60_000, stdin: 'ignore' });

async function qemuSha(file: string, format: string, dir: string): Promise<string> {
  const raw = join(dir, `${format}.raw`);
  await qemu('qemu-img', ['convert', '-f', format, '-O', 'raw', file, raw]);
  return createHash('sha256').update(readFileSync(raw)).digest('hex');
}

test('vhd reads fixed and dynamic images as qemu does, and its cross-block read bug is a typed error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qbc-npm-vhd-'));
  try {
    const a = await loadAdapter('vhd');
    assert.deepEqual(a.capabilities.formats.vpc, ['read', 'write', 'info']);
    for (const sub of ['fixed', 'dynamic']) {
      const f = join(dir, `${sub}.vpc`);
      await qemu('qemu-img', ['create', '-q', '-f', 'vpc', '-o', `subformat=${sub}`, f, '10514432']);
      await qemu('qemu-io', ['-f', 'vpc', '-c', 'write -P 0x5a 1M 2M', f]);
      assert.equal(await a.guestSha256({ filename: f, format: 'vpc' }), await qemuSha(f, 'vpc', dir), sub);
      await a.io({ filename: f, format: 'vpc' }, [{ op: 'read', offset: 1 << 20, length: 1 << 20, pattern: 0x5a }]);
    }
    // info is Image#size: the footer's size for a fixed image, whole 2 MiB blocks for a dynamic one (expectations/vhd.json)
    assert.equal((await a.info({ filename: join(dir, 'fixed.vpc'), format: 'vpc' }))['virtual-size'], 10514432);
    const dyn = await a.info({ filename: join(dir, 'dynamic.vpc'), format: 'vpc' });
    assert.deepEqual([dyn['virtual-size'], dyn['cluster-size']], [12582912, 2097152]);
    // one read spanning two 2 MiB blocks of a dynamic image: npm vhd 0.5.0 fails it
    await assert.rejects(a.io({ filename: join(dir, 'dynamic.vpc'), format: 'vpc' }, [{ op: 'read', offset: 1 << 20, length: 2 << 20, pattern: 0x5a }]),
      (e: unknown) => e instanceof ImplError && /Expected 2097152 bytes/.test(e.message));
    // a write to a fixed image works and qemu reads it
    await a.io({ filename: join(dir, 'fixed.vpc'), format: 'vpc' }, [{ op: 'write', offset: 4096, length: 4096, pattern: 0x22 }]);
    await qemu('qemu-io', ['-f', 'vpc', '-r', '-c', 'read -P 0x22 4k 4k', join(dir, 'fixed.vpc')]);
    await assert.rejects(a.io({ filename: join(dir, 'fixed.vpc'), format: 'vpc' }, [{ op: 'discard', offset: 0, length: 512 }]), ImplError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('xo-qcow2 loads (its undeclared @vates/read-chunk is declared by qbc), reads a plain image, and misreads a zero cluster', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qbc-npm-xo-'));
  try {
    const a = await loadAdapter('xo-qcow2');
    assert.deepEqual(a.capabilities.formats.qcow2, ['read'], JSON.stringify(a.capabilities.notes));
    const f = join(dir, 'x.qcow2');
    await qemu('qemu-img', ['create', '-q', '-f', 'qcow2', f, '1M']);
    await qemu('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x51 0 128k', '-c', 'write -P 0x52 300k 5000', f]);
    assert.equal(await a.guestSha256({ filename: f, format: 'qcow2' }), await qemuSha(f, 'qcow2', dir));
    await qemu('qemu-io', ['-f', 'qcow2', '-c', 'write -z 64k 64k', f]);
    await assert.rejects(a.io({ filename: f, format: 'qcow2' }, [{ op: 'read', offset: 65536, length: 65536, pattern: 0 }]),
      (e: unknown) => e instanceof ImplError && /0x51 read, 0x0 expected/.test(e.message));
    // an overlay is refused with the reason, not misread
    const o = join(dir, 'o.qcow2');
    await qemu('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', f, '-F', 'qcow2', o]);
    await assert.rejects(a.guestSha256({ filename: o, format: 'qcow2' }), (e: unknown) => e instanceof ImplError && /backing file/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vhd-lib 0.7.2 reads and writes a dynamic image qemu made, unaligned requests included, and refuses a fixed one by its own error', async () => {
  const a = await loadAdapter('vhd-lib');
  assert.deepEqual(a.capabilities.formats, { vpc: ['read', 'write', 'info'] });
  const dir = mkdtempSync(join(tmpdir(), 'qbc-vhdlib-'));
  try {
    const f = join(dir, 'd.vpc');
    await qemu('qemu-img', ['create', '-q', '-f', 'vpc', f, '10514432']);
    await qemu('qemu-io', ['-f', 'vpc', '-c', 'write -P 0x11 0 64k', f]);
    const info = await a.info({ filename: f, format: 'vpc' });
    assert.deepEqual([info['virtual-size'], info['cluster-size']], [10514432, 2097152]);
    // 1000 bytes at 1000: the adapter widens it to sectors 1..3 with the bytes already there
    await a.io({ filename: f, format: 'vpc' }, [{ op: 'write', offset: 1000, length: 1000, pattern: 0x22 }, { op: 'write', offset: 5 << 20, length: 8192, pattern: 0x33 }]);
    await qemu('qemu-io', ['-f', 'vpc', '-c', 'read -P 0x11 0 1000', '-c', 'read -P 0x22 1000 1000', '-c', 'read -P 0x11 2000 63536', '-c', 'read -P 0x33 5M 8k', f]);
    await a.io({ filename: f, format: 'vpc' }, [{ op: 'read', offset: 1000, length: 1000, pattern: 0x22 }]);
    await assert.rejects(a.io({ filename: f, format: 'vpc' }, [{ op: 'read', offset: 0, length: 1000, pattern: 0x22 }]), (e: unknown) => e instanceof ImplError && /Pattern verification failed at offset 0/.test(e.message));
    const fixed = join(dir, 'f.vpc');
    await qemu('qemu-img', ['create', '-q', '-f', 'vpc', '-o', 'subformat=fixed', fixed, '10514432']);
    await assert.rejects(a.guestSha256({ filename: fixed, format: 'vpc' }), (e: unknown) => e instanceof ImplError && /invalid footer checksum/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('udif declares dmg read only and refuses a write as a read-only reader', async () => {
  const a = await loadAdapter('udif');
  assert.deepEqual(a.capabilities.formats, { dmg: ['read', 'info'] });
  await assert.rejects(a.io({ filename: '/nonexistent.dmg', format: 'dmg' }, [{ op: 'write', offset: 0, length: 512, pattern: 1 }]),
    (e: unknown) => e instanceof ImplError && /read-only/.test(e.message));
});
