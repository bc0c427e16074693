/**
 * Holding an image open the way a user of qemu-io does: qemu-io (or `qbc io`)
 * started without -c reads commands from its standard input, so it keeps the
 * image open, with its locks, until that input ends. The open is proven by the
 * answer to one small read; a refused open is the process's exit and its
 * message. The process is ended by its own PID, never by name.
 */
import { spawn } from 'node:child_process';
import { ImplError, type HeldImage } from './adapter.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * `cwd` matters: qemu 7.2 resolves a relative qcow2 data_file name against the working
 * directory, not the image's, so the qemu adapter runs its tools beside the image.
 */
export async function holdWithQemuIo(bin: string, args: string[], impl: string, timeoutMs: number, cwd?: string): Promise<HeldImage> {
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' }, ...(cwd ? { cwd } : {}) });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  child.once('error', () => undefined); // a missing binary shows as the exit below
  child.stdin.on('error', () => undefined); // (a process that refused the image has closed its input)
  child.stdin.write('read 0 512\n');

  const opened = await new Promise<'open' | 'exit' | 'timeout'>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    const onData = () => {
      if (/read 512\/512 bytes/.test(out)) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve('open');
      }
    };
    child.stdout.on('data', onData);
    void exited.then(() => { clearTimeout(timer); resolve('exit'); });
  });

  const stop = async () => {
    child.stdin.end();
    const pid = child.pid;
    const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
    if (!done && pid && alive(pid)) {
      process.kill(pid, 'SIGKILL');
      await exited;
    }
  };

  if (opened !== 'open') {
    await stop();
    const why = opened === 'timeout' ? `did not open the image within ${timeoutMs} ms` : (err.trim() || out.trim() || 'exited');
    throw new ImplError(`${bin} ${args.join(' ')}: ${why}`, 1, impl);
  }
  let held = true;
  return {
    pid: child.pid,
    async release() {
      if (!held) return;
      held = false;
      await stop();
    },
  };
}
