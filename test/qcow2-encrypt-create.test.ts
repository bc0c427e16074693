// Encrypted qcow2 creation by the reference against real qemu-img 7.2 (issue 6): the file is laid
// out byte for byte as qemu-img's once the fields LUKS draws at random (master key digest, salts,
// UUID, key material) and the host-calibrated iteration counts are masked; qemu-io reads what
// the reference wrote. Without qemu-img on PATH the tests report themselves skipped.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { CPU_USAGE_ATTEMPTS, CPU_USAGE_FLAKE } from '../adapters/qemu-secrets.js';
import { createImage } from '../reference/tools/create.js';
import { ioOnImage } from '../reference/tools/io.js';
import { BlockError } from '../reference/errors.js';

const PASS = 'qbc-qcow2-passphrase';
let dir = '';
let keyFile = '';
let noQemu: string | null = null;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'qbc-q2crypt-'));
  keyFile = join(dir, 'key');
  writeFileSync(keyFile, PASS, { mode: 0o600 });
  const r = await execa('qemu-img', ['--version'], { reject: false, timeout: 10_000 });
  noQemu = r.failed ? 'qemu-img is not on PATH' : null;
});
after(() => rmSync(dir, { recursive: true, force: true }));

function needsQemu(t: TestContext): boolean {
  if (noQemu) t.skip(noQemu);
  return !noQemu;
}

/** qemu-img, retried while it fails only with its PBKDF "Unable to get accurate CPU usage" probe (said on stderr). */
async function qemu(cmd: string, args: string[]): Promise<void> {
  for (let i = 1; ; i++) {
    const r = await execa(cmd, args, { reject: false, timeout: 30_000 });
    if (!r.failed) return;
    if (!CPU_USAGE_FLAKE.test(r.stderr) || i === CPU_USAGE_ATTEMPTS) throw new Error(`${cmd} ${args.join(' ')} (attempt ${i}): ${r.stderr}${r.stdout}`);
    process.stderr.write(`${cmd}: "Unable to get accurate CPU usage"; retrying, attempt ${i + 1} of ${CPU_USAGE_ATTEMPTS}\n`);
  }
}

/** Zero the random and calibrated fields of the LUKS header a qcow2 image's crypto extension names. */
function maskLuks(b: Buffer): Buffer {
  const out = Buffer.from(b);
  let at = out.readUInt32BE(100); // v3 header_length
  for (;;) {
    const type = out.readUInt32BE(at);
    const len = out.readUInt32BE(at + 4);
    if (type === 0) throw new Error('no crypto header extension');
    if (type === 0x0537be77) break;
    at += 8 + Math.ceil(len / 8) * 8;
  }
  const off = Number(out.readBigUInt64BE(at + 8));
  const keyBytes = out.readUInt32BE(off + 108);
  out.fill(0, off + 112, off + 208); // mk digest, its salt and iterations, uuid
  for (let i = 0; i < 8; i++) {
    const s = off + 208 + i * 48;
    if (out.readUInt32BE(s) !== 0x00ac71f3) continue;
    out.fill(0, s + 4, s + 40); // iterations, salt
    const km = off + out.readUInt32BE(s + 40) * 512;
    const stripes = out.readUInt32BE(s + 44);
    out.fill(0, km, km + Math.ceil((keyBytes * stripes) / 512) * 512);
  }
  return out;
}

for (const extra of ['', ',encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv', ',cluster_size=4096,encrypt.hash-alg=sha512']) {
  test(`reference qcow2 encrypt.format=luks create matches qemu-img's layout${extra || ' (defaults)'}, and qemu-io reads its writes`, async (t) => {
    if (!needsQemu(t)) return;
    const opts = `encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10${extra}`;
    const mine = join(dir, `ref${extra.length}.qcow2`);
    const theirs = join(dir, `qemu${extra.length}.qcow2`);
    await createImage({ format: 'qcow2', filename: mine, size: 1 << 20, options: opts, secrets: [{ id: 'sec0', data: PASS }] });
    await qemu('qemu-img', ['create', '-q', '-f', 'qcow2', '--object', `secret,id=sec0,file=${keyFile}`, '-o', opts, theirs, '1M']);
    const a = readFileSync(mine);
    const b = readFileSync(theirs);
    assert.equal(a.length, b.length, 'file sizes differ');
    assert.ok(maskLuks(a).equals(maskLuks(b)), 'the files differ outside the LUKS random fields');
    assert.ok(!a.equals(b), 'the LUKS fields must be random, not copied');
    // the reference writes (a partial cluster and a partial sector), qemu-io reads them
    await ioOnImage({ filename: mine, format: 'qcow2', secrets: [{ id: 'sec0', data: PASS }], keySecret: 'sec0' }, [
      { op: 'write', offset: 70000, length: 3000, pattern: 0x5c },
    ]);
    const spec = `driver=qcow2,file.filename=${mine},encrypt.key-secret=sec0`;
    const r = await execa('qemu-io', ['--object', `secret,id=sec0,file=${keyFile}`, '--image-opts', '-c', 'read -P 0x5c 70000 3000', '-c', 'read -P 0 65536 4464', '-c', 'read -P 0 73000 1000', spec], { reject: false, timeout: 30_000 });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /fail/i, r.stdout);
  });
}

test('a qcow2 luks create with an undefined secret leaves no file and names the secret', async () => {
  const f = join(dir, 'nosecret.qcow2');
  await assert.rejects(createImage({ format: 'qcow2', filename: f, size: 1 << 20, options: 'encrypt.format=luks,encrypt.key-secret=nosuch,encrypt.iter-time=10', secrets: [] }), (e: unknown) => e instanceof BlockError && /nosuch/.test(e.message));
  assert.throws(() => readFileSync(f), /ENOENT/);
});
