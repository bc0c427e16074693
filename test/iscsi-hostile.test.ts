/**
 * Hostile iSCSI targets. A scripted fake target on 127.0.0.1 logs the
 * reference's initiator in (or refuses to), then answers its SCSI commands
 * as each case demands: absurd data segment lengths, opcodes that have no
 * business there, PDUs cut short, silence, Data-In outside its command, R2Ts
 * beyond the write, answers for tasks never issued, bad header digests, a
 * garbage CHAP challenge, a capacity of 2^64 blocks. Every case must end in a
 * BlockError within a bounded time (no hang, nothing buffered beyond one data
 * segment), and a target that pings with NOP-In must get its NOP-Out.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, test } from 'node:test';
import { BlockError } from '../reference/errors.js';
import { IscsiClientNode } from '../reference/protocols/iscsi/client.js';
import { decodeKeys, digestBytes, encodeKeys, newBhs, OP, pad4, type TextKeys } from '../reference/protocols/iscsi/pdu.js';
import { OUR_MAX_RECV } from '../reference/protocols/iscsi/session.js';

const servers: net.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

interface Conn {
  sock: net.Socket;
  read(n: number): Promise<Buffer | null>;
  statSN: number;
  cmdSN: number;
  digest: boolean;
}

interface Req {
  bhs: Buffer;
  opcode: number;
  itt: number;
  data: Buffer;
  cdb: Buffer;
}

/** What a case changes; anything left out behaves like a plain 1 MiB disk. */
interface Script {
  /** raw bytes instead of the first login response */
  login?: (c: Conn, r: Req) => Buffer | null;
  /** keys to send in the operational stage's answer */
  opKeys?: TextKeys;
  /** a CHAP exchange: the target's answer to CHAP_A */
  chapChallenge?: TextKeys;
  /** answer a SCSI command; return false for the default answer */
  command?: (c: Conn, r: Req) => boolean;
  /** a NOP-Out arrived */
  nopOut?: (c: Conn, r: Req) => void;
  /** blocks of 512 bytes READ CAPACITY(16) reports (default 2048 = 1 MiB) */
  lastLba?: bigint;
}

function reader(s: net.Socket) {
  let buf = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  let closed = false;
  s.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); wake?.(); });
  s.on('close', () => { closed = true; wake?.(); });
  s.on('error', () => { closed = true; wake?.(); });
  return async (k: number): Promise<Buffer | null> => {
    while (buf.length < k) {
      if (closed) return null;
      await new Promise<void>((r) => { wake = r; });
      wake = null;
    }
    const out = buf.subarray(0, k);
    buf = buf.subarray(k);
    return out;
  };
}

async function readReq(c: Conn): Promise<Req | null> {
  const bhs = await c.read(48);
  if (!bhs) return null;
  if (c.digest && !(await c.read(4))) return null;
  const dsl = (bhs[5]! << 16) | (bhs[6]! << 8) | bhs[7]!;
  const data = await c.read(dsl + pad4(dsl));
  if (!data) return null;
  return { bhs, opcode: bhs[0]! & 0x3f, itt: bhs.readUInt32BE(16), data: data.subarray(0, dsl), cdb: bhs.subarray(32, 48) };
}

/** A target PDU with the sequence numbers filled in. */
function pdu(c: Conn, opcode: number, flags: number, itt: number, data: Buffer = Buffer.alloc(0), opts: { status?: boolean; claimed?: number } = {}): Buffer {
  const b = newBhs(opcode, flags, 0);
  const n = opts.claimed ?? data.length;
  b[5] = (n >>> 16) & 0xff;
  b[6] = (n >>> 8) & 0xff;
  b[7] = n & 0xff;
  b.writeUInt32BE(itt, 16);
  b.writeUInt32BE(0xffffffff, 20);
  b.writeUInt32BE(opts.status === false ? c.statSN : c.statSN++, 24);
  b.writeUInt32BE(c.cmdSN, 28);
  b.writeUInt32BE(c.cmdSN + 32, 32);
  const parts = [b];
  if (c.digest) parts.push(digestBytes(b));
  if (data.length) parts.push(data, Buffer.alloc(pad4(data.length)));
  return Buffer.concat(parts);
}

function dataIn(c: Conn, itt: number, data: Buffer, offset = 0, withStatus = true): Buffer {
  const p = pdu(c, OP.DATA_IN, withStatus ? 0x81 : 0, itt, data, { status: withStatus });
  p.writeUInt32BE(offset, 40);
  return p;
}

function scsiRsp(c: Conn, itt: number, status = 0): Buffer {
  const p = pdu(c, OP.SCSI_RSP, 0x80, itt);
  p[3] = status;
  return p;
}

function defaultCommand(c: Conn, r: Req, s: Script): void {
  const op = r.cdb[0]!;
  const alloc = r.bhs.readUInt32BE(20);
  if (op === 0x12 && !(r.cdb[1]! & 1)) {
    const inq = Buffer.alloc(36);
    inq.write('QBCFAKE ', 8, 'latin1');
    c.sock.write(dataIn(c, r.itt, inq.subarray(0, Math.min(alloc, 36))));
  } else if (op === 0x12) {
    const vpd = Buffer.from([0, r.cdb[2]!, 0, 0]);
    c.sock.write(dataIn(c, r.itt, vpd));
  } else if (op === 0x9e) {
    const cap = Buffer.alloc(32);
    cap.writeBigUInt64BE(s.lastLba ?? 2047n, 0);
    cap.writeUInt32BE(512, 8);
    c.sock.write(dataIn(c, r.itt, cap));
  } else if (op === 0x88) {
    c.sock.write(dataIn(c, r.itt, Buffer.alloc(alloc, 0xee)));
  } else c.sock.write(scsiRsp(c, r.itt));
}

async function fakeTarget(s: Script): Promise<number> {
  const server = net.createServer((sock) => {
    const c: Conn = { sock, read: reader(sock), statSN: 100, cmdSN: 1, digest: false };
    void (async () => {
      let first = true;
      for (;;) {
        const r = await readReq(c);
        if (!r) return;
        c.cmdSN = r.bhs.readUInt32BE(24) + (r.bhs[0]! & 0x40 ? 0 : 1);
        if (r.opcode === OP.LOGIN_REQ) {
          if (first && s.login) {
            first = false;
            const raw = s.login(c, r);
            if (raw) sock.write(raw);
            continue;
          }
          first = false;
          const csg = (r.bhs[1]! >> 2) & 3;
          const transit = (r.bhs[1]! & 0x80) !== 0;
          const nsg = r.bhs[1]! & 3;
          const keys = decodeKeys(r.data, (w) => new Error(w));
          let answer: TextKeys = [];
          let t = transit;
          if (csg === 0 && keys.get('AuthMethod')) answer = [['AuthMethod', s.chapChallenge ? 'CHAP' : 'None']];
          if (csg === 0 && keys.get('CHAP_A')) answer = s.chapChallenge!;
          if (csg === 1) answer = s.opKeys ?? [['HeaderDigest', 'None'], ['DataDigest', 'None'], ['MaxRecvDataSegmentLength', '8192']];
          if (s.chapChallenge && csg === 0 && !keys.get('CHAP_R')) t = false;
          const b = pdu(c, OP.LOGIN_RSP, (t ? 0x80 | nsg : 0) | (csg << 2), r.itt, encodeKeys(answer));
          r.bhs.copy(b, 8, 8, 14);
          b.writeUInt16BE(7, 14);
          sock.write(b);
          if (t && nsg === 3) c.digest = answer.some(([k, v]) => k === 'HeaderDigest' && v === 'CRC32C');
          continue;
        }
        if (r.opcode === OP.SCSI_CMD) {
          if (!s.command?.(c, r)) defaultCommand(c, r, s);
          continue;
        }
        if (r.opcode === OP.LOGOUT_REQ) {
          sock.end(pdu(c, OP.LOGOUT_RSP, 0x80, r.itt));
          return;
        }
        if (r.opcode === OP.NOP_OUT) s.nopOut?.(c, r);
        // Data-Out needs no answer from this target: R2T cases fail before it matters
      }
    })();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

async function connect(port: number, extra: Partial<Parameters<typeof IscsiClientNode.connect>[0]> = {}) {
  return IscsiClientNode.connect({ portal: `127.0.0.1:${port}`, target: 'iqn.2026-12.qbc.test:fake', lun: 0, initiatorName: 'iqn.2008-11.org.linux-kvm', timeout: 2, ...extra });
}

/** Fails within `ms` with a BlockError whose message matches. */
async function refused(p: Promise<unknown>, match: RegExp, ms = 5000): Promise<void> {
  const t0 = Date.now();
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof BlockError, `not a BlockError: ${(e as Error)?.stack ?? String(e)}`);
    assert.match(e.message, match);
    return true;
  });
  assert.ok(Date.now() - t0 < ms, `took ${Date.now() - t0} ms`);
}

test('a plain fake disk works (the harness itself is sound)', async () => {
  const node = await connect(await fakeTarget({}));
  assert.equal(node.size(), 1024 * 1024);
  assert.equal((await node.read(512, 1024))[0], 0xee);
  await node.close();
});

test('a login response claiming a 16 MiB data segment is refused before it is buffered', async () => {
  const port = await fakeTarget({ login: (c, r) => pdu(c, OP.LOGIN_RSP, 0x81, r.itt, Buffer.alloc(0), { claimed: 0xffffff }) });
  await refused(connect(port), /data segment of 16777215 bytes/);
});

test('a wrong opcode during login, a truncated PDU, and silence are errors, not hangs', async () => {
  await refused(connect(await fakeTarget({ login: (c, r) => pdu(c, 0x3a, 0x80, r.itt) })), /0x3a PDU during login/);
  await refused(connect(await fakeTarget({ login: (c) => { c.sock.end(Buffer.alloc(20, 0x23)); return null; } })), /closed/);
  await refused(connect(await fakeTarget({ login: () => null }), { timeout: 1 }), /no answer within 1000 ms/);
});

test('a garbage CHAP challenge and an unoffered digest are refused', async () => {
  await refused(connect(await fakeTarget({ chapChallenge: [['CHAP_A', '5'], ['CHAP_I', '7'], ['CHAP_C', 'zzzz']] }), { user: 'u', password: 'p' }), /CHAP_C/);
  await refused(connect(await fakeTarget({ chapChallenge: [['CHAP_A', '5'], ['CHAP_I', '999'], ['CHAP_C', '0x0102']] }), { user: 'u', password: 'p' }), /CHAP_I/);
  await refused(connect(await fakeTarget({ opKeys: [['HeaderDigest', 'CRC32C']] }), { headerDigest: 'none' }), /HeaderDigest=CRC32C, which was not offered/);
});

test('absurd Data-In: beyond MaxRecvDataSegmentLength, outside the command, for a task never issued', async () => {
  const huge = (c: Conn, r: Req) => { if (r.cdb[0] !== 0x88) return false; c.sock.write(pdu(c, OP.DATA_IN, 0x81, r.itt, Buffer.alloc(0), { claimed: OUR_MAX_RECV + 1 })); return true; };
  let node = await connect(await fakeTarget({ command: huge }));
  await refused(node.read(0, 4096), /data segment of 262145 bytes/);
  await node.close();

  const overrun = (c: Conn, r: Req) => { if (r.cdb[0] !== 0x88) return false; c.sock.write(dataIn(c, r.itt, Buffer.alloc(512), r.bhs.readUInt32BE(20))); return true; };
  node = await connect(await fakeTarget({ command: overrun }));
  await refused(node.read(0, 4096), /overruns the 4096 bytes/);
  await node.close();

  const stranger = (c: Conn, r: Req) => { if (r.cdb[0] !== 0x88) return false; c.sock.write(dataIn(c, r.itt + 1000, Buffer.alloc(512))); return true; };
  node = await connect(await fakeTarget({ command: stranger }));
  await refused(node.read(0, 4096), /no command carries/);
  await node.close();
});

test('an unknown opcode, an R2T beyond the write, a corrupt header digest in the full feature phase', async () => {
  const odd = (c: Conn, r: Req) => { if (r.cdb[0] !== 0x88) return false; c.sock.write(pdu(c, 0x1c, 0x80, r.itt)); return true; };
  let node = await connect(await fakeTarget({ command: odd }));
  await refused(node.read(0, 512), /unexpected opcode 0x1c/);
  await node.close();

  const r2t = (c: Conn, r: Req) => {
    if (r.cdb[0] !== 0x8a) return false;
    const p = pdu(c, OP.R2T, 0x80, r.itt, Buffer.alloc(0), { status: false });
    p.writeUInt32BE(0, 40);
    p.writeUInt32BE(1 << 20, 44);
    c.sock.write(p);
    return true;
  };
  node = await connect(await fakeTarget({ command: r2t, opKeys: [['InitialR2T', 'Yes'], ['ImmediateData', 'No']] }));
  await refused(node.write(0, Buffer.alloc(4096)), /R2T for 1048576 bytes at offset 0 of a 4096-byte write/);
  await node.close();

  const badDigest = (c: Conn, r: Req) => {
    if (r.cdb[0] !== 0x88) return false;
    const p = dataIn(c, r.itt, Buffer.alloc(512));
    p[49] = p[49]! ^ 0xff; // the digest follows the 48-byte BHS
    c.sock.write(p);
    return true;
  };
  node = await connect(await fakeTarget({ command: badDigest, opKeys: [['HeaderDigest', 'CRC32C'], ['DataDigest', 'None']] }), { headerDigest: 'crc32c' });
  assert.equal(node.negotiated.headerDigest, true);
  await refused(node.read(0, 512), /header digest mismatch/);
  await node.close();
});

test('a capacity of 2^64 blocks and a silent command are errors', async () => {
  await refused(connect(await fakeTarget({ lastLba: 0xffffffffffffffffn })), /beyond what the reference can address/);
  const node = await connect(await fakeTarget({ command: (_c, r) => r.cdb[0] === 0x88 }), { timeout: 1 });
  await refused(node.read(0, 512), /no answer to SCSI command 0x88 within 1000 ms/);
  await node.close();
});

test('a NOP-In ping from the target is answered with its tag, and the session goes on', async () => {
  let answered: number | null = null;
  let pending: Req | null = null;
  const ping = (c: Conn, r: Req) => {
    if (r.cdb[0] !== 0x88) return false;
    pending = r;
    const p = pdu(c, OP.NOP_IN, 0x80, 0xffffffff, Buffer.alloc(0), { status: false });
    p.writeUInt32BE(0x1234, 20);
    c.sock.write(p);
    return true;
  };
  // the read is answered only once the ping is
  const nopOut = (c: Conn, r: Req) => {
    answered = r.bhs.readUInt32BE(20);
    if (pending) c.sock.write(dataIn(c, pending.itt, Buffer.alloc(pending.bhs.readUInt32BE(20), 0x42)));
  };
  const node = await connect(await fakeTarget({ command: ping, nopOut }));
  const data = await node.read(0, 512);
  assert.equal(answered, 0x1234);
  assert.equal(data[0], 0x42);
  await node.close();
});

test('options the reference cannot honour are refused by name, before any connection', async () => {
  const { openImage } = await import('../reference/graph/open.js');
  const base = { driver: 'iscsi', transport: 'tcp', portal: '127.0.0.1:1', target: 'iqn.2026-12.qbc.test:x', lun: 1 };
  await assert.rejects(openImage(`json:${JSON.stringify({ ...base, transport: 'iser' })}`, {}), (e: unknown) => e instanceof BlockError && e.code === 'unsupported' && e.option === 'transport');
});

test('CHAP options are checked as 7.2 checks them, before any connection (port 1 has no target)', async () => {
  const { openImage } = await import('../reference/graph/open.js');
  const { secretStore } = await import('../reference/crypto/secret.js');
  const base = { driver: 'iscsi', transport: 'tcp', portal: '127.0.0.1:1', target: 'iqn.2026-12.qbc.test:x', lun: 1, user: 'u' };
  const secrets = secretStore([{ id: 'sec0', data: 'pw' }, { id: 'bin', data: '//4=', format: 'base64' }]);
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ password: 'p', 'password-secret': 'sec0' }, 'password-secret', /mutually exclusive/],
    [{}, 'password', /CHAP username specified but no password was given/],
    [{ 'password-secret': 'nosuch' }, 'password-secret', /No secret with id 'nosuch'/],
    [{ 'password-secret': 'bin' }, 'password-secret', /Data from secret bin is not valid UTF-8/],
  ];
  for (const [extra, option, message] of cases) {
    await assert.rejects(openImage(`json:${JSON.stringify({ ...base, ...extra })}`, { secrets }), (e: unknown) => e instanceof BlockError && e.option === option && message.test(e.message) && !e.message.includes('pw'));
  }
});
