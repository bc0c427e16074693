/**
 * An NBD export on a free loopback port. A port is found by binding port 0 and
 * closing it, so another process (a parallel cucumber worker) can take it before
 * the server binds it: an export refused with "address in use" is retried on a new
 * port, a few times, and any other failure is final.
 */
import { freeLoopbackPort } from '../../runner/peers/ports.js';
import type { Adapter, ImageRef, NbdExportHandle, NbdServeRequest } from '../../adapters/adapter.js';

const ATTEMPTS = 5;

export async function serveOnLoopbackPort(server: Adapter, image: ImageRef, req: Omit<NbdServeRequest, 'port' | 'socket'>): Promise<{ handle: NbdExportHandle; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freeLoopbackPort();
    try {
      return { handle: await server.serveNbd!(image, { ...req, port }), port };
    } catch (e) {
      const msg = (e as Error).message ?? '';
      if (attempt >= ATTEMPTS || !/address already in use|EADDRINUSE|Failed to find an available port/i.test(msg)) throw e;
    }
  }
}
