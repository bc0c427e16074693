/**
 * The reference's iSCSI initiator against a real target: a private tgtd on
 * 127.0.0.1 (runner/peers/tgtd.ts), one LUN file per case, with qemu-img and
 * qemu-io (libiscsi) reading what the reference wrote and the other way round.
 * Covers login with and without CHAP (URL and environment credentials),
 * header digests, InitialR2T=No with unsolicited Data-Out, Data-Out split at a
 * small MaxRecvDataSegmentLength, initiator-name ACLs, cdrom LUNs, UNMAP on a
 * thin LUN, unknown targets and LUNs, qcow2 over iSCSI.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BlockError } from '../reference/errors.js';
import { openImage } from '../reference/graph/open.js';
import { IscsiClientNode } from '../reference/protocols/iscsi/client.js';
import { Tgtd, type TargetSpec } from '../runner/peers/tgtd.js';

const dir = mkdtempSync(join(tmpdir(), 'qbc-iscsi-'));
let tgtd: Tgtd;
let n = 0;

function sh(cmd: string, args: string[], env: Record<string, string> = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function lun(format: 'raw' | 'qcow2', size: string, spec: Partial<TargetSpec> & { deviceType?: 'disk' | 'cd'; params?: string; io?: string[] } = {}): Promise<{ file: string; iqn: string; url: string }> {
  const i = ++n;
  const file = join(dir, `lun${i}.${format}`);
  sh('qemu-img', ['create', '-q', '-f', format, file, size]);
  // (before the LUN exists: tgtd takes the file's size once, when the LUN is made)
  if (spec.io) sh('qemu-io', ['-f', format, ...spec.io.flatMap((c) => ['-c', c]), file]);
  const iqn = `iqn.2026-12.qbc.test:interop${i}`;
  await tgtd.addTarget({ iqn, luns: [{ lun: 1, file, deviceType: spec.deviceType, params: spec.params }], chap: spec.chap, settings: spec.settings });
  return { file, iqn, url: `iscsi://${tgtd.portal}/${iqn}/1` };
}

const opt = (o: Record<string, unknown>) => `json:${JSON.stringify({ driver: 'raw', file: { driver: 'iscsi', transport: 'tcp', portal: tgtd.portal, lun: 1, ...o } })}`;

before(async () => {
  tgtd = await Tgtd.start(dir);
});

after(async () => {
  await tgtd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('reference writes, qemu-io reads, and back; InitialR2T=No, small data segments, CRC32C header digests', async () => {
  const { file, iqn, url } = await lun('raw', '4M', { settings: { InitialR2T: 'No', FirstBurstLength: '16384', MaxRecvDataSegmentLength: '4096', HeaderDigest: 'CRC32C,None' } });
  const node = await openImage(opt({ target: iqn, 'header-digest': 'crc32c' }), { readOnly: false });
  const iscsi = (node as unknown as { file: IscsiClientNode }).file;
  assert.equal(iscsi.negotiated.headerDigest, true);
  assert.equal(iscsi.negotiated.initialR2T, false);
  assert.equal(iscsi.negotiated.sendMax, 4096);
  assert.equal(node.size(), 4 * 1024 * 1024);
  // unaligned on both edges, bigger than one burst: immediate data, unsolicited Data-Out, then R2Ts
  await node.write(1000, Buffer.alloc(300_000, 0x5a));
  await node.flush();
  await node.close();
  sh('qemu-io', ['-f', 'raw', '-c', 'read -P 0 0 1000', '-c', 'read -P 0x5a 1000 300000', '-c', 'read -P 0 301000 4096', url]);
  sh('qemu-io', ['-f', 'raw', '-c', 'write -P 0xc3 2M 1M', url]);
  const again = await openImage(url, { format: 'raw' });
  const got = await again.read(2 * 1024 * 1024 - 512, 1024 * 1024 + 1024);
  await again.close();
  assert.equal(got[511], 0);
  assert.equal(got[512], 0xc3);
  assert.equal(got[512 + 1024 * 1024 - 1], 0xc3);
  assert.equal(got[512 + 1024 * 1024], 0);
  // the LUN is the file: what went over the wire is on disk
  assert.equal(readFileSync(file)[1000], 0x5a);
});

test('CHAP: the URL user%password logs in, a wrong password is an authentication error, the environment works too', async () => {
  const chap = { user: 'qbcuser', password: 'qbc-secret-1234' };
  const { iqn } = await lun('raw', '1M', { chap });
  const base = `${tgtd.portal}/${iqn}/1`;
  const ok = await openImage(`iscsi://${chap.user}%${chap.password}@${base}`, { format: 'raw', readOnly: false });
  assert.equal((ok as unknown as { file: IscsiClientNode }).file.negotiated.authMethod, 'CHAP');
  await ok.write(0, Buffer.alloc(4096, 0x21));
  await ok.close();
  for (const url of [`iscsi://${chap.user}%wrong@${base}`, `iscsi://${base}`]) {
    await assert.rejects(openImage(url, { format: 'raw' }), (e: unknown) => {
      assert.ok(e instanceof BlockError, String(e));
      assert.match(e.message, /Authentication failure/);
      assert.equal(e.option, 'user');
      return true;
    });
  }
  // libiscsi's environment variables, as the manual documents them
  const saved = { u: process.env.LIBISCSI_CHAP_USERNAME, p: process.env.LIBISCSI_CHAP_PASSWORD };
  process.env.LIBISCSI_CHAP_USERNAME = chap.user;
  process.env.LIBISCSI_CHAP_PASSWORD = chap.password;
  try {
    const env = await openImage(`iscsi://${base}`, { format: 'raw' });
    assert.equal((await env.read(0, 4096))[4095], 0x21);
    await env.close();
  } finally {
    if (saved.u === undefined) delete process.env.LIBISCSI_CHAP_USERNAME; else process.env.LIBISCSI_CHAP_USERNAME = saved.u;
    if (saved.p === undefined) delete process.env.LIBISCSI_CHAP_PASSWORD; else process.env.LIBISCSI_CHAP_PASSWORD = saved.p;
  }
  // qemu-img agrees on both
  sh('qemu-img', ['info', `iscsi://${chap.user}%${chap.password}@${base}`]);
  assert.throws(() => sh('qemu-img', ['info', `iscsi://${chap.user}%wrong@${base}`]), /Authentication failure/);
});

test('initiator name: the default is qemu-img\'s iqn.2008-11.org.linux-kvm; initiator-name picks another', async () => {
  const file = join(dir, 'acl.raw');
  sh('qemu-img', ['create', '-q', '-f', 'raw', file, '1M']);
  const iqn = 'iqn.2026-12.qbc.test:acl';
  const tid = await tgtd.addTarget({ iqn, luns: [{ lun: 1, file }] });
  // only one initiator may log in: replace the ALL binding by a named one
  execFileSync('tgtadm', ['-C', String(tgtd.controlPort), '--lld', 'iscsi', '--op', 'unbind', '--mode', 'target', '--tid', String(tid), '-I', 'ALL']);
  execFileSync('tgtadm', ['-C', String(tgtd.controlPort), '--lld', 'iscsi', '--op', 'bind', '--mode', 'target', '--tid', String(tid), '--initiator-name', 'iqn.2008-11.org.linux-kvm']);
  const def = await openImage(`iscsi://${tgtd.portal}/${iqn}/1`, { format: 'raw' });
  await def.close();
  await assert.rejects(openImage(opt({ target: iqn, 'initiator-name': 'iqn.2026-12.qbc.test:stranger' }), {}), /Authorization failure|Target not found/);
  execFileSync('tgtadm', ['-C', String(tgtd.controlPort), '--lld', 'iscsi', '--op', 'bind', '--mode', 'target', '--tid', String(tid), '--initiator-name', 'iqn.2026-12.qbc.test:friend']);
  const named = await openImage(opt({ target: iqn, 'initiator-name': 'iqn.2026-12.qbc.test:friend' }), {});
  await named.close();
});

test('a cdrom LUN reads like its file and refuses writes as read-only', async () => {
  const file = join(dir, 'cd.iso');
  const data = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  writeFileSync(file, data);
  const iqn = 'iqn.2026-12.qbc.test:cdrom';
  await tgtd.addTarget({ iqn, luns: [{ lun: 1, file, deviceType: 'cd' }] });
  const node = await openImage(`iscsi://${tgtd.portal}/${iqn}/1`, { format: 'raw', readOnly: false });
  const iscsi = (node as unknown as { file: IscsiClientNode }).file;
  assert.equal(iscsi.deviceType, 5);
  assert.equal(iscsi.logicalBlockSize, 2048);
  assert.equal(node.size(), data.length);
  assert.deepEqual(await node.read(3000, 10_000), data.subarray(3000, 13_000));
  await assert.rejects(node.write(0, Buffer.alloc(2048, 1)), (e: unknown) => e instanceof BlockError && e.code === 'read-only' && /cdrom/.test(e.message));
  await node.close();
});

test('UNMAP on a thin LUN: discard reaches the target, block status and qemu-img map agree', async () => {
  const { iqn, url } = await lun('raw', '4M', { params: 'thin_provisioning=1' });
  sh('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 0 4M', url]);
  const node = await openImage(url, { format: 'raw', readOnly: false });
  await node.discard(1024 * 1024, 1024 * 1024);
  await node.flush();
  assert.equal((await node.read(1024 * 1024, 4096))[0], 0);
  assert.equal((await node.read(0, 4096))[0], 0x77);
  const st = await node.blockStatus(1024 * 1024, 3 * 1024 * 1024);
  const map = JSON.parse(sh('qemu-img', ['map', '--output=json', '-f', 'raw', url])) as Array<{ start: number; length: number; data: boolean }>;
  const qemuAt = map.find((e) => e.start <= 1024 * 1024 && e.start + e.length > 1024 * 1024)!;
  assert.equal(st.data, qemuAt.data, `reference ${JSON.stringify(st)} vs qemu ${JSON.stringify(qemuAt)}`);
  await node.close();
  void iqn;
});

test('an unknown target and an unknown LUN are not-found errors naming the option', async () => {
  const { iqn } = await lun('raw', '1M');
  await assert.rejects(openImage(`iscsi://${tgtd.portal}/iqn.2026-12.qbc.test:nosuch/1`, { format: 'raw' }), (e: unknown) =>
    e instanceof BlockError && e.code === 'not-found' && e.option === 'target' && /Target not found/.test(e.message));
  await assert.rejects(openImage(`iscsi://${tgtd.portal}/${iqn}/9`, { format: 'raw' }), (e: unknown) =>
    e instanceof BlockError && e.code === 'not-found' && e.option === 'lun' && /LOGICAL_UNIT_NOT_SUPPORTED/.test(e.message));
});

test('qcow2 over iSCSI: the reference writes through the format, qemu-img check and qemu-io read the file', async () => {
  // the LUN has the file's size when it was made: the reference writes inside a cluster the file already holds
  const { file, url } = await lun('qcow2', '4M', { io: ['write -P 0x11 0 64k'] });
  const node = await openImage(url, { format: 'qcow2', readOnly: false });
  assert.equal(node.size(), 4 * 1024 * 1024);
  await node.write(4096, Buffer.alloc(8192, 0x99));
  await node.close();
  sh('qemu-img', ['check', '-f', 'qcow2', file]);
  sh('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x11 0 4k', '-c', 'read -P 0x99 4k 8k', '-c', 'read -P 0x11 12k 52k', url]);
});
