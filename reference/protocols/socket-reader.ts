/**
 * Exact-length reads from a stream socket, shared by the NBD client and server
 * and the iSCSI initiator. A peer that stalls or lies about lengths costs
 * neither a hang nor unbounded memory: every wait has a timeout, and past
 * `highWater` buffered bytes the socket is paused, so a peer sending faster
 * than we consume waits in TCP, not in our memory. readInto copies a long
 * payload from the socket's chunks straight into the caller's buffer.
 */
import type { Socket } from 'node:net';
import { BlockError } from '../errors.js';

export class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { need: number; resolve: () => void; reject: (e: Error) => void } | null = null;
  private ended: Error | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly what: string,
    /** Bytes held before the socket is paused (the peer waits, we never grow further). */
    private readonly highWater = 4 * 1024 * 1024,
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

  /** The peer has closed and every byte it sent has been read. */
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

  /** Wait until n bytes are buffered (n at most highWater), or fail on close / after timeoutMs (0: no limit). */
  private async fill(n: number, timeoutMs: number): Promise<void> {
    if (this.buffered >= n) return;
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
          reject(new BlockError('io', `${this.what}: ${e.message} (wanted ${n} more bytes, had ${this.buffered})`, { cause: e }));
        },
      };
      this.wake();
    });
  }

  private resumeBelowHighWater(): void {
    if (this.buffered <= this.highWater && this.socket.isPaused()) this.socket.resume();
  }

  /** Copy the next target.length bytes into target, waiting for pieces no larger than highWater. */
  async readInto(target: Buffer, timeoutMs: number): Promise<void> {
    let at = 0;
    while (at < target.length) {
      await this.fill(Math.min(target.length - at, this.highWater), timeoutMs);
      while (at < target.length && this.chunks.length) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, target.length - at);
        c.copy(target, at, 0, k);
        at += k;
        this.buffered -= k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
      this.resumeBelowHighWater();
    }
  }

  /** Exactly n bytes, or a BlockError when the peer closes or stalls past timeoutMs. */
  async read(n: number, timeoutMs: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0];
    if (first && first.length >= n) {
      // the common case: the bytes sit in one chunk, returned without a copy
      this.buffered -= n;
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.resumeBelowHighWater();
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    await this.readInto(out, timeoutMs);
    return out;
  }
}
