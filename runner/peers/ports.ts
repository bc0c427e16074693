/**
 * A loopback TCP port free at the moment of asking: bound on 127.0.0.1 port 0,
 * then released for a server to take. Another process can take it first, so a
 * caller whose server reports "address in use" asks again (see
 * step_definitions/support/nbd-port.ts).
 */
import * as net from 'node:net';

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
