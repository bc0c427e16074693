/**
 * Starting an NBD server the way qemu-nbd is started, for every adapter whose
 * server speaks qemu-nbd's command line (qemu-nbd itself, `qbc nbd`): with
 * --fork, so the command returns once the socket listens, and --pid-file, so
 * the server is stopped by exactly its PID. Loopback or unix sockets only.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { execa } from 'execa';
import { ImplError, type ImageRef, type NbdExportHandle, type NbdServeRequest } from './adapter.js';

/** true while the process runs (a zombie counts as gone: its files and locks are released) */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A daemon that exited stays a zombie until someone reaps it (not every PID 1 does): its files,
  // and the image locks on them, are released already.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

export async function serveNbdWith(bin: string, prefix: string[], image: ImageRef, req: NbdServeRequest, impl: string): Promise<NbdExportHandle> {
  if (!req.socket && req.port === undefined) throw new ImplError('serveNbd: give a unix socket or a loopback port', 2, impl);
  const pidFile = `${req.socket ?? `${image.filename}.nbd-${req.port}`}.pid`;
  const args = [...prefix, '--fork', `--pid-file=${pidFile}`];
  if (req.socket) args.push('-k', req.socket);
  else args.push('-b', '127.0.0.1', '-p', String(req.port));
  if (req.exportName !== undefined) args.push('-x', req.exportName);
  if (req.readOnly) args.push('-r');
  if (req.shared !== undefined) args.push('-e', String(req.shared));
  if (req.persistent ?? true) args.push('-t');
  if (image.format) args.push('-f', image.format);
  args.push(image.filename);
  const r = await execa(bin, args, { reject: false, timeout: 30_000, stdin: 'ignore', env: { LC_ALL: 'C' } });
  if (r.exitCode !== 0 || !existsSync(pidFile)) {
    throw new ImplError(`${bin} ${args.join(' ')}: ${String(r.stderr || r.stdout || `exit ${r.exitCode ?? r.signal}`).trim()}`, r.exitCode ?? 1, impl);
  }
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new ImplError(`${bin}: pid file ${pidFile} holds no PID`, 1, impl);
  return {
    pid,
    async stop() {
      if (alive(pid)) process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 200 && alive(pid); i++) await new Promise((res) => setTimeout(res, 25));
      if (alive(pid)) {
        process.kill(pid, 'SIGKILL');
        for (let i = 0; i < 200 && alive(pid); i++) await new Promise((res) => setTimeout(res, 10));
      }
      rmSync(pidFile, { force: true });
    },
  };
}
