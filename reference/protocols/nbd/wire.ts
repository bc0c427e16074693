/**
 * Exact-length reads from a stream socket, with a bound on what is buffered
 * and a timeout on every wait, so a peer that stalls or lies about lengths
 * costs neither a hang nor unbounded memory. Both the client and the server
 * read through one of these per connection.
 */
import type { Socket } from 'node:net';
import { BlockError } from '../../errors.js';

export class WireReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { need: number; resolve: () => void; reject: (e: unknown) => void } | null = null;
  private ended: Error | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly what: string,
    /** Bytes held before the socket is paused (the peer waits, we never grow further). */
    private readonly highWater = 64 * 1024 * 1024,
  ) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.buffered += d.length;
      if (this.buffered > this.highWater) socket.pause();
      this.wake();
    });
    const end = (e?: Error) => {
      this.ended ??= e ?? new Error('connection closed');
      this.wake();
    };
    socket.on('end', () => end());
    socket.on('close', () => end());
    socket.on('error', (e) => end(e));
  }

  get closed(): boolean {
    return this.ended !== null && this.buffered === 0;
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.buffered >= w.need) {
      this.waiter = null;
      w.resolve();
    } else if (this.ended) {
      this.waiter = null;
      w.reject(this.ended);
    }
  }

  /** Exactly n bytes, or a BlockError when the peer closes or stalls past timeoutMs. */
  async read(n: number, timeoutMs: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    if (this.buffered < n) {
      if (this.socket.isPaused()) this.socket.resume();
      await new Promise<void>((resolve, reject) => {
        const timer = timeoutMs > 0
          ? setTimeout(() => {
              this.waiter = null;
              reject(new BlockError('io', `${this.what}: no answer within ${timeoutMs} ms`));
            }, timeoutMs)
          : null;
        this.waiter = {
          need: n,
          resolve: () => { if (timer) clearTimeout(timer); resolve(); },
          reject: (e) => {
            if (timer) clearTimeout(timer);
            const msg = e instanceof Error ? e.message : String(e);
            reject(new BlockError('io', `${this.what}: ${msg} (wanted ${n} more bytes, had ${this.buffered})`, { cause: e }));
          },
        };
        this.wake();
      });
    }
    const out = this.take(n);
    if (this.buffered <= this.highWater && this.socket.isPaused()) this.socket.resume();
    return out;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}

export function u64(buf: Buffer, at: number): number {
  const v = buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return Number.POSITIVE_INFINITY;
  return Number(v);
}

export function putU64(buf: Buffer, at: number, v: number): void {
  buf.writeBigUInt64BE(BigInt(v), at);
}
