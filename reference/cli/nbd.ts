/**
 * `qbc nbd`: the reference as a qemu-nbd dialect server. It exports one image
 * the reference opens (format given or probed) until the last client leaves,
 * or for ever with --persistent:
 *
 *   qbc nbd [-p PORT] [-b ADDR] | [-k SOCKET]  [-x NAME] [-D TEXT] [-f FMT]
 *           [-r] [-e N | --shared=N] [-t] [--fork] [--pid-file=FILE] IMAGE
 *
 * One deliberate difference from qemu-nbd: without -b it listens on 127.0.0.1,
 * not on every interface, so a test never exposes an image beyond the host.
 * --fork returns once the socket listens, as qemu-nbd's does, with the
 * server's PID in --pid-file for whoever stops it.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openImage } from '../graph/open.js';
import { NbdServer } from '../protocols/nbd/server.js';
import { has, last, parseArgs, UsageError } from './args.js';

const PROG = 'qbc nbd';

const SPEC = {
  withValue: ['p', 'port', 'b', 'bind', 'k', 'socket', 'x', 'export-name', 'D', 'description', 'f', 'format', 'e', 'shared', 'pid-file'],
  flags: ['r', 'read-only', 't', 'persistent', 'fork', 'h', 'help', 'v', 'verbose'],
};

const HELP = `Usage: ${PROG} [OPTIONS] FILE
Export FILE over NBD as qemu-nbd does.
  -p, --port=PORT          TCP port (default 10809)
  -b, --bind=IFACE         address to listen on (default 127.0.0.1)
  -k, --socket=PATH        listen on a unix socket instead
  -x, --export-name=NAME   export name (default "")
  -D, --description=TEXT   export description
  -f, --format=FORMAT      image format (default: probed)
  -r, --read-only          export read-only
  -e, --shared=NUM         clients served at once (default 1; 0: no limit)
  -t, --persistent         keep serving after the last client leaves
      --fork               return once listening, server in the background
      --pid-file=PATH      write the server's PID there
`;

function opt(p: ReturnType<typeof parseArgs>, short: string, long: string): string | undefined {
  return last(p, long) ?? last(p, short);
}

export async function main(argv: string[]): Promise<number> {
  let p;
  try {
    p = parseArgs(argv, SPEC);
  } catch (e) {
    process.stderr.write(`${PROG}: ${(e as Error).message}\n`);
    return 1;
  }
  if (has(p, 'h') || has(p, 'help')) {
    process.stdout.write(HELP);
    return 0;
  }
  const [filename, extra] = p.positional;
  try {
    if (!filename) throw new UsageError('Expected exactly one FILE argument');
    if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
    const portText = opt(p, 'p', 'port');
    const port = portText === undefined ? 10809 : Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`Invalid port '${portText}'`);
    const sharedText = opt(p, 'e', 'shared');
    const shared = sharedText === undefined ? 1 : Number(sharedText);
    if (!Number.isInteger(shared) || shared < 0) throw new UsageError(`Invalid shared device number '${sharedText}'`);
    const socketPath = opt(p, 'k', 'socket');
    if (socketPath && (portText !== undefined || opt(p, 'b', 'bind') !== undefined)) throw new UsageError('--socket and --port/--bind are mutually exclusive');
    if (has(p, 'fork')) return await forkServer(argv);

    const readOnly = has(p, 'r') || has(p, 'read-only');
    const node = await openImage(filename, { format: opt(p, 'f', 'format'), readOnly, exported: true });
    const server = new NbdServer({
      exports: [{ name: opt(p, 'x', 'export-name') ?? '', description: opt(p, 'D', 'description'), node }],
      readOnly,
      shared,
      persistent: has(p, 't') || has(p, 'persistent'),
      log: has(p, 'v') || has(p, 'verbose') ? (l) => process.stderr.write(`${l}\n`) : undefined,
    });
    await server.listen(socketPath ? { path: socketPath } : { host: opt(p, 'b', 'bind') ?? '127.0.0.1', port });
    const pidFile = last(p, 'pid-file');
    if (pidFile) fs.writeFileSync(pidFile, `${process.pid}\n`);
    process.send?.('listening');
    const stop = () => void server.close();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    await server.finished;
    await node.close();
    if (pidFile) fs.rmSync(pidFile, { force: true });
    if (socketPath) fs.rmSync(socketPath, { force: true });
    return 0;
  } catch (e) {
    process.stderr.write(`${PROG}: ${(e as Error).message}\n`);
    return 1;
  }
}

/** The same command without --fork in a detached child; returns when it listens (or says why not). */
async function forkServer(argv: string[]): Promise<number> {
  const script = fileURLToPath(new URL('../../../bin/qbc', import.meta.url));
  const child = spawn(process.execPath, [script, 'nbd', ...argv.filter((a) => a !== '--fork')], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const outcome = await new Promise<number>((resolve) => {
    child.once('message', () => resolve(0));
    child.once('exit', (code) => resolve(code || 1));
  });
  if (outcome !== 0) process.stderr.write(err);
  child.stderr!.destroy();
  child.disconnect?.();
  child.unref();
  return outcome;
}
