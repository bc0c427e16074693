/**
 * Hostile peers. A scripted malicious NBD server (wrong magics, oldstyle,
 * oversized replies, chunks outside their request, an export of 2^63 bytes,
 * silence) against the reference client; a scripted malicious client (requests
 * past the end, huge lengths, unknown commands, broken framing, disconnects
 * mid-request) against the reference server, which must keep serving its
 * other clients. Every case ends in a BlockError or an NBD error reply within
 * a bounded time; nothing hangs and nothing buffers what a peer merely claims.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BlockError } from '../reference/errors.js';
import { openImage } from '../reference/graph/open.js';
import { NbdClientNode } from '../reference/protocols/nbd/client.js';
import { NbdServer } from '../reference/protocols/nbd/server.js';
import { CMD, IHAVEOPT, INFO, NBDMAGIC, OLDSTYLE_MAGIC, OPT, OPTION_REPLY_MAGIC, REP, REPLY_FLAG_DONE, REPLY_TYPE, REQUEST_MAGIC, SIMPLE_REPLY_MAGIC, STRUCTURED_REPLY_MAGIC } from '../reference/protocols/nbd/constants.js';

const dir = mkdtempSync(join(tmpdir(), 'qbc-nbd-hostile-'));
let n = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

/** A socket's incoming bytes, read in exact pieces. */
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

function optReply(opt: number, type: number, data: Buffer = Buffer.alloc(0), claimed = data.length): Buffer {
  const b = Buffer.alloc(20);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(opt, 8);
  b.writeUInt32BE(type, 12);
  b.writeUInt32BE(claimed, 16);
  return Buffer.concat([b, data]);
}

function exportInfo(size: bigint): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(INFO.EXPORT, 0);
  b.writeBigUInt64BE(size, 2);
  b.writeUInt16BE(1, 10);
  return b;
}

type Script = (s: net.Socket, read: (k: number) => Promise<Buffer | null>) => Promise<void>;

/** A well-behaved handshake (structured replies on, no meta contexts), then whatever `after` does. */
function goodHandshake(size: bigint, then: Script): Script {
  return async (s, read) => {
    const hello = Buffer.alloc(18);
    hello.writeBigUInt64BE(NBDMAGIC, 0);
    hello.writeBigUInt64BE(IHAVEOPT, 8);
    hello.writeUInt16BE(3, 16);
    s.write(hello);
    await read(4);
    for (;;) {
      const h = await read(16);
      if (!h) return;
      const opt = h.readUInt32BE(8);
      await read(h.readUInt32BE(12));
      if (opt === OPT.GO) {
        s.write(optReply(opt, REP.INFO, exportInfo(size)));
        s.write(optReply(opt, REP.ACK));
        return then(s, read);
      }
      s.write(optReply(opt, opt === OPT.STRUCTURED_REPLY ? REP.ACK : REP.ERR_UNSUP));
    }
  };
}

async function withServer(script: Script, fn: (path: string) => Promise<void>): Promise<void> {
  const path = join(dir, `evil-${n++}.sock`);
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    void script(s, reader(s)).catch(() => s.destroy());
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  try {
    await fn(path);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

const connect = (path: string, timeoutMs = 2000) => NbdClientNode.connect({ server: { type: 'unix', path }, timeoutMs, readOnly: true });
const blockError = (code?: string, re?: RegExp) => (e: unknown) => e instanceof BlockError && (!code || e.code === code) && (!re || re.test(e.message));

test('a server with the wrong magic is not an NBD server', () =>
  withServer(async (s) => { s.write(Buffer.from('HTTP/1.1 200 OK\r\n\r\n')); }, async (p) => {
    await assert.rejects(connect(p), blockError('malformed', /magic/));
  }));

test('an oldstyle server is refused', () =>
  withServer(async (s) => {
    const b = Buffer.alloc(18);
    b.writeBigUInt64BE(NBDMAGIC, 0);
    b.writeBigUInt64BE(OLDSTYLE_MAGIC, 8);
    s.write(b);
  }, async (p) => {
    await assert.rejects(connect(p), blockError('unsupported', /oldstyle/));
  }));

test('a server that is not fixed newstyle is refused', () =>
  withServer(async (s) => {
    const b = Buffer.alloc(18);
    b.writeBigUInt64BE(NBDMAGIC, 0);
    b.writeBigUInt64BE(IHAVEOPT, 8);
    s.write(b);
  }, async (p) => {
    await assert.rejects(connect(p), blockError('unsupported', /fixed newstyle/));
  }));

test('an option reply claiming 2 GiB of data is refused before anything is buffered', () =>
  withServer(async (s, read) => {
    const b = Buffer.alloc(18);
    b.writeBigUInt64BE(NBDMAGIC, 0);
    b.writeBigUInt64BE(IHAVEOPT, 8);
    b.writeUInt16BE(3, 16);
    s.write(b);
    await read(4);
    const h = await read(16);
    s.write(optReply(h!.readUInt32BE(8), REP.ACK, Buffer.alloc(0), 0x80000000));
  }, async (p) => {
    await assert.rejects(connect(p), blockError('malformed', /option reply of 2147483648 bytes/));
  }));

test('an export of 2^63 bytes is refused, not rounded', () =>
  withServer(goodHandshake(1n << 63n, async () => {}), async (p) => {
    await assert.rejects(connect(p), blockError('malformed', /export size/));
  }));

test('a silent server times out', () =>
  withServer(async () => {}, async (p) => {
    const t = Date.now();
    await assert.rejects(connect(p, 300), blockError('io', /no answer within 300 ms/));
    assert.ok(Date.now() - t < 3000);
  }));

function chunk(cookie: bigint, type: number, body: Buffer, flags = REPLY_FLAG_DONE, claimed = body.length): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  h.writeUInt16BE(flags, 4);
  h.writeUInt16BE(type, 6);
  h.writeBigUInt64BE(cookie, 8);
  h.writeUInt32BE(claimed, 16);
  return Buffer.concat([h, body]);
}

/** After the handshake, answer the first request with `answer(cookie, offset, length)`. */
function answerFirst(answer: (cookie: bigint, offset: bigint, length: number) => Buffer): Script {
  return goodHandshake(1n << 20n, async (s, read) => {
    const req = await read(28);
    if (!req) return;
    s.write(answer(req.readBigUInt64BE(8), req.readBigUInt64BE(16), req.readUInt32BE(24)));
  });
}

const readFails = (script: Script, re: RegExp) =>
  withServer(script, async (p) => {
    const c = await connect(p);
    await assert.rejects(c.read(4096, 4096), blockError(undefined, re));
    await assert.rejects(c.read(0, 512), blockError(), 'the connection is dropped after a violation');
    await c.close();
  });

test('a data chunk outside the request it answers is a protocol violation', () =>
  readFails(answerFirst((cookie) => {
    const body = Buffer.alloc(8 + 4096);
    body.writeBigUInt64BE(900000n, 0);
    return chunk(cookie, REPLY_TYPE.OFFSET_DATA, body);
  }), /outside the request/));

test('a hole chunk overrunning the request is a protocol violation', () =>
  readFails(answerFirst((cookie, offset) => {
    const body = Buffer.alloc(12);
    body.writeBigUInt64BE(offset, 0);
    body.writeUInt32BE(1 << 30, 8);
    return chunk(cookie, REPLY_TYPE.OFFSET_HOLE, body);
  }), /outside the request/));

test('a chunk claiming 1 GiB is refused before it is buffered', () =>
  readFails(answerFirst((cookie) => chunk(cookie, REPLY_TYPE.OFFSET_DATA, Buffer.alloc(0), REPLY_FLAG_DONE, 1 << 30)), /at most/));

test('a reply for a cookie that was never sent is a protocol violation', () =>
  readFails(answerFirst((cookie) => {
    const b = Buffer.alloc(16);
    b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
    b.writeBigUInt64BE(cookie + 1000n, 8);
    return b;
  }), /cookie/));

test('a server that stops answering mid-transmission times out', () =>
  withServer(goodHandshake(1n << 20n, async () => {}), async (p) => {
    const c = await connect(p, 300);
    await assert.rejects(c.read(0, 512), blockError('io', /no reply within/));
  }));

test('an error chunk is reported with its errno and message', () =>
  withServer(answerFirst((cookie) => {
    const msg = Buffer.from('disk on fire');
    const body = Buffer.alloc(6 + msg.length);
    body.writeUInt32BE(5, 0);
    body.writeUInt16BE(msg.length, 4);
    msg.copy(body, 6);
    return chunk(cookie, REPLY_TYPE.ERROR, body);
  }), async (p) => {
    const c = await connect(p);
    await assert.rejects(c.read(0, 512), blockError('io', /EIO: disk on fire/));
    await c.close();
  }));

// ------------------------------------------------------------ hostile clients

/** A raw client: handshake with simple replies, then hand-made requests. */
async function rawClient(path: string): Promise<{ s: net.Socket; read: (k: number) => Promise<Buffer | null>; size: bigint }> {
  const s = net.connect({ path });
  const read = reader(s);
  await read(18);
  s.write(Buffer.from([0, 0, 0, 3]));
  const name = Buffer.alloc(0);
  const data = Buffer.alloc(4 + name.length + 2);
  const h = Buffer.alloc(16);
  h.writeBigUInt64BE(IHAVEOPT, 0);
  h.writeUInt32BE(OPT.GO, 8);
  h.writeUInt32BE(data.length, 12);
  s.write(Buffer.concat([h, data]));
  let size = 0n;
  for (;;) {
    const r = (await read(20))!;
    const body = (await read(r.readUInt32BE(16)))!;
    if (r.readUInt32BE(12) === REP.INFO && body.readUInt16BE(0) === INFO.EXPORT) size = body.readBigUInt64BE(2);
    if (r.readUInt32BE(12) === REP.ACK) break;
  }
  return { s, read, size };
}

function req(type: number, cookie: bigint, offset: bigint, length: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(REQUEST_MAGIC, 0);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(cookie, 8);
  b.writeBigUInt64BE(offset, 16);
  b.writeUInt32BE(length, 24);
  return b;
}

async function simpleReply(read: (k: number) => Promise<Buffer | null>): Promise<{ error: number; cookie: bigint }> {
  const r = await read(16);
  assert.ok(r, 'the server answered');
  assert.equal(r.readUInt32BE(0), SIMPLE_REPLY_MAGIC);
  return { error: r.readUInt32BE(4), cookie: r.readBigUInt64BE(8) };
}

test('the server answers bad requests with errors and keeps serving every client', async () => {
  const file = join(dir, 'served.raw');
  writeFileSync(file, Buffer.alloc(1 << 20, 0x5c));
  const node = await openImage(file, { format: 'raw', readOnly: false });
  const server = new NbdServer({ exports: [{ name: '', node }], shared: 0, persistent: true, handshakeTimeoutMs: 500 });
  const path = join(dir, 'served.sock');
  await server.listen({ path });
  try {
    const good = await rawClient(path);
    assert.equal(good.size, 1n << 20n);

    // past the end, a huge read, an unknown command: EINVAL, and the connection lives on
    good.s.write(req(CMD.READ, 1n, 1n << 20n, 512));
    assert.deepEqual(await simpleReply(good.read), { error: 22, cookie: 1n });
    good.s.write(req(CMD.READ, 2n, 0n, 0xffffffff));
    assert.deepEqual(await simpleReply(good.read), { error: 22, cookie: 2n });
    good.s.write(req(99, 3n, 0n, 0));
    assert.deepEqual(await simpleReply(good.read), { error: 22, cookie: 3n });
    good.s.write(req(CMD.READ, 4n, (1n << 63n) + 5n, 512));
    assert.deepEqual(await simpleReply(good.read), { error: 22, cookie: 4n });
    // a write past the end still has its payload consumed, so framing survives
    good.s.write(Buffer.concat([req(CMD.WRITE, 5n, (1n << 20n) - 256n, 512), Buffer.alloc(512, 1)]));
    assert.equal((await simpleReply(good.read)).error, 28);

    // a client that announces a 1 GiB write is dropped; one that dies mid-request too
    const greedy = await rawClient(path);
    greedy.s.write(req(CMD.WRITE, 1n, 0n, 1 << 30));
    assert.equal(await greedy.read(1), null, 'dropped');
    const quitter = await rawClient(path);
    quitter.s.end(req(CMD.READ, 1n, 0n, 512).subarray(0, 13));
    const garbler = await rawClient(path);
    garbler.s.write(Buffer.alloc(28, 0xee));
    assert.equal(await garbler.read(1), null, 'bad request magic drops the client');
    // a client that never finishes its handshake is dropped after the handshake timeout
    const staller = net.connect({ path });
    const stallRead = reader(staller);
    await stallRead(18);
    assert.equal(await stallRead(1), null, 'dropped after handshakeTimeoutMs');

    // the first client is still served
    good.s.write(req(CMD.READ, 6n, 4096n, 16));
    const r = await simpleReply(good.read);
    assert.deepEqual(r, { error: 0, cookie: 6n });
    assert.ok((await good.read(16))!.every((b) => b === 0x5c));
    good.s.end(req(CMD.DISC, 7n, 0n, 0));
  } finally {
    await server.close();
    await node.close();
  }
});

test('malformed handshake options get errors, not crashes', async () => {
  const file = join(dir, 'hs.raw');
  writeFileSync(file, Buffer.alloc(4096));
  const node = await openImage(file, { format: 'raw', readOnly: true });
  const server = new NbdServer({ exports: [{ name: 'x', node }], persistent: true, shared: 0 });
  const path = join(dir, 'hs.sock');
  await server.listen({ path });
  try {
    const s = net.connect({ path });
    const read = reader(s);
    await read(18);
    s.write(Buffer.from([0, 0, 0, 3]));
    const opt = (o: number, data: Buffer) => {
      const h = Buffer.alloc(16);
      h.writeBigUInt64BE(IHAVEOPT, 0);
      h.writeUInt32BE(o, 8);
      h.writeUInt32BE(data.length, 12);
      s.write(Buffer.concat([h, data]));
    };
    const reply = async () => {
      const r = (await read(20))!;
      await read(r.readUInt32BE(16));
      return r.readUInt32BE(12);
    };
    const lying = Buffer.alloc(8);
    lying.writeUInt32BE(1000, 0); // name length beyond the option
    opt(OPT.GO, lying);
    assert.equal(await reply(), REP.ERR_INVALID);
    const unknown = Buffer.alloc(7);
    unknown.writeUInt32BE(1, 0);
    unknown.write('y', 4);
    opt(OPT.GO, unknown);
    assert.equal(await reply(), REP.ERR_UNKNOWN);
    opt(OPT.SET_META_CONTEXT, Buffer.alloc(8));
    assert.equal(await reply(), REP.ERR_INVALID, 'meta contexts before structured replies');
    opt(12345, Buffer.alloc(3));
    assert.equal(await reply(), REP.ERR_UNSUP);
    // an option announcing 1 GiB of data ends the connection
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(IHAVEOPT, 0);
    h.writeUInt32BE(OPT.GO, 8);
    h.writeUInt32BE(1 << 30, 12);
    s.write(h);
    assert.equal(await read(1), null);
  } finally {
    await server.close();
    await node.close();
  }
});
