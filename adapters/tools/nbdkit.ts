/**
 * nbdkit and libnbd's nbdcopy (Debian packages nbdkit, libnbd-bin) as a third-party
 * implementation: nbdkit serves images over NBD (protocol 'nbd-server', serveNbd: raw files through
 * its file plugin, as qemu-nbd -f raw does), and reads them through nbdcopy over a private
 * connection: raw through the file plugin, and LUKS1 through nbdkit's own luks filter (its own
 * decryption code, independent of QEMU's). The passphrase goes to nbdkit in a private file
 * (passphrase=+FILE), never on a command line.
 *
 * No shell is involved: nbdcopy starts nbdkit itself (`nbdcopy -- [ nbdkit -r ... ] OUT`).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { ImplError, type Adapter, type ImageRef, type IoCommand, type NbdExportHandle, type NbdServeRequest, type Operation } from '../adapter.js';
import { alive } from '../nbd-serve.js';
import { absent, passphraseFile, plainFile, refuse, runTool, sha256File, toolVersion, verifyReads, which, withTemp } from './common.js';

const NAME = 'nbdkit';
const FORMATS = ['raw', 'luks'];

export async function createNbdkitAdapter(): Promise<Adapter & { version: string }> {
  const nbdkit = which('nbdkit');
  const nbdcopy = which('nbdcopy');
  if (!nbdkit || !nbdcopy) {
    const caps = absent(FORMATS, `${nbdkit ? 'nbdcopy' : 'nbdkit'} is not installed (Debian packages nbdkit, libnbd-bin)`);
    return { name: NAME, version: 'absent', capabilities: caps, create: async () => refuse(NAME, 'create'), info: async () => refuse(NAME, 'info'), check: async () => refuse(NAME, 'check'), map: async () => refuse(NAME, 'map'), measure: async () => refuse(NAME, 'measure'), convert: async () => refuse(NAME, 'convert'), compare: async () => refuse(NAME, 'compare'), io: async () => refuse(NAME, 'io'), guestSha256: async () => refuse(NAME, 'read') };
  }
  const server: string = nbdkit;
  const copier: string = nbdcopy;
  const version = `${await toolVersion('nbdkit')}, ${await toolVersion('libnbd-bin')}`;

  /** nbdkit's arguments (after the server's own options) for serving `image` decrypted, with a private passphrase file in dir. */
  async function pluginArgs(image: ImageRef, dir: string): Promise<string[]> {
    const file = plainFile(NAME, image, FORMATS);
    if (image.format === undefined) throw new ImplError('nbdkit does not probe: a format (raw or luks) is needed', 1, NAME);
    const args = ['file', `file=${file}`];
    if (image.format === 'luks') {
      const pass = await passphraseFile(NAME, image, dir);
      args.unshift('--filter=luks');
      args.push(`passphrase=+${pass}`);
    }
    return args;
  }

  const viaRaw = <T>(image: ImageRef, fn: (raw: string) => Promise<T>): Promise<T> =>
    withTemp(NAME, async (dir) => {
      const raw = join(dir, 'guest.raw');
      // -r: read-only; nbdcopy starts nbdkit itself and hands it a socket (systemd socket activation)
      await runTool(NAME, copier, ['--', '[', server, '-r', '--exit-with-parent', ...(await pluginArgs(image, dir)), ']', raw], { timeout: 120_000 });
      return fn(raw);
    });

  async function serveNbd(image: ImageRef, req: NbdServeRequest): Promise<NbdExportHandle> {
    const file = plainFile(NAME, image, ['raw']);
    if (image.format !== undefined && image.format !== 'raw') throw new ImplError(`nbdkit serves files as they are (-f raw); it has no ${image.format} plugin`, 1, NAME);
    if (!req.socket && req.port === undefined) throw new ImplError('serveNbd: give a unix socket or a loopback port', 2, NAME);
    const pidFile = `${req.socket ?? `${file}.nbdkit-${req.port}`}.pid`;
    const args = ['-P', pidFile];
    if (req.socket) args.push('-U', req.socket);
    else args.push('-i', '127.0.0.1', '-p', String(req.port));
    if (req.readOnly) args.push('-r');
    // qemu-nbd -x serves that name only: nbdkit's exportname filter in strict mode does the same
    if (req.exportName !== undefined) args.push('--filter=exportname');
    // qemu-nbd -e N serves N clients at once (0: no limit): nbdkit's limit filter refuses the N+1st
    const limit = req.shared !== undefined && req.shared > 0 ? req.shared : undefined;
    if (limit !== undefined) args.push('--filter=limit');
    // the plugin's name comes first, then its and the filters' parameters
    args.push('file', `file=${file}`);
    if (req.exportName !== undefined) args.push('exportname-strict=true', `exportname=${req.exportName}`, `default-export=${req.exportName}`);
    if (limit !== undefined) args.push(`limit=${limit}`);
    const r = await execa(server, args, { reject: false, timeout: 30_000, stdin: 'ignore', env: { LC_ALL: 'C' } });
    // nbdkit's parent exits once the server has forked; the child writes the PID file a moment
    // later, so a loaded machine may see the exit before the file (up to 10 s)
    for (let i = 0; i < 400 && r.exitCode === 0 && !existsSync(pidFile); i++) await new Promise((res) => setTimeout(res, 25));
    if (r.exitCode !== 0 || !existsSync(pidFile)) throw new ImplError(`nbdkit ${args.join(' ')}: ${String(r.stderr || r.stdout || `exit ${r.exitCode}`).trim()}`, r.exitCode ?? 1, NAME);
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) throw new ImplError(`nbdkit: pid file ${pidFile} holds no PID`, 1, NAME);
    return {
      pid,
      async stop() {
        if (alive(pid)) process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 200 && alive(pid); i++) await new Promise((res) => setTimeout(res, 25));
        if (alive(pid)) process.kill(pid, 'SIGKILL');
        rmSync(pidFile, { force: true });
      },
    };
  }

  const ops: Operation[] = ['read'];
  return {
    name: NAME,
    version,
    capabilities: { formats: { raw: [...ops], luks: [...ops] }, protocols: ['file', 'nbd-server'], probes: false, notes: { qcow2: 'nbdkit 1.32 has no qcow2 plugin or filter' } },
    serveNbd,
    io: async (image: ImageRef, commands: IoCommand[]) => {
      for (const c of commands) if (c.op !== 'read') refuse(NAME, `${c.op}: the adapter reads through nbdkit, it does not write`);
      return viaRaw(image, (raw) => verifyReads(NAME, raw, commands));
    },
    guestSha256: (image) => viaRaw(image, (raw) => sha256File(raw)),
    create: async () => refuse(NAME, 'create'),
    info: async () => refuse(NAME, 'info'),
    check: async () => refuse(NAME, 'check'),
    map: async () => refuse(NAME, 'map'),
    measure: async () => refuse(NAME, 'measure'),
    convert: async () => refuse(NAME, 'convert'),
    compare: async () => refuse(NAME, 'compare'),
  };
}
