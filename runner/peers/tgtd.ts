/**
 * A private tgtd (Linux SCSI target daemon, package tgt) for the iSCSI tests:
 * one per process, on 127.0.0.1 only, with its own iSCSI port and its own
 * control port (tgtadm -C N talks to /run/tgtd/socket.N, so another tgtd on
 * the machine is never touched). Targets and LUNs are made and removed through
 * tgtadm. tgtd ignores SIGTERM: it is stopped by deleting its targets, then
 * the system, through tgtadm, and only then killed by its PID if it lingers.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { freeLoopbackPort } from './ports.js';
import * as path from 'node:path';

export interface LunSpec {
  lun: number;
  file: string;
  /** tgtadm --device-type: disk (default) or cd */
  deviceType?: 'disk' | 'cd';
  /** tgtadm --params, e.g. thin_provisioning=1 */
  params?: string;
}

export interface TargetSpec {
  iqn: string;
  luns: LunSpec[];
  /** bind a CHAP account to the target: logins without these credentials fail */
  chap?: { user: string; password: string };
  /** target parameters set with --op update (HeaderDigest=CRC32C,None ...) */
  settings?: Record<string, string>;
}

function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (e, out, err) => {
      const code = e ? (typeof (e as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? Number((e as { code: number }).code) : 1) : 0;
      resolve({ code, out: String(out ?? ''), err: String(err ?? (e ? e.message : '')) });
    });
  });
}

function alive(pid: number): boolean {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(st);
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Tgtd {
  private nextTid = 1;
  private accounts = new Set<string>();
  private constructor(
    readonly pid: number,
    readonly port: number,
    readonly controlPort: number,
    readonly log: string,
  ) {}

  /** 127.0.0.1:PORT, as an iSCSI URL's portal */
  get portal(): string {
    return `127.0.0.1:${this.port}`;
  }

  private adm(args: string[]) {
    return run('tgtadm', ['-C', String(this.controlPort), '--lld', 'iscsi', ...args]);
  }

  private async admOk(args: string[]): Promise<string> {
    const r = await this.adm(args);
    if (r.code !== 0) throw new Error(`tgtadm ${args.join(' ')}: ${r.err.trim() || r.out.trim() || `exit ${r.code}`}`);
    return r.out;
  }

  /**
   * Start a tgtd on a free loopback port; `dir` holds its log. A port another
   * process takes between our probe and tgtd's bind costs a retry on fresh
   * ports; after three failures the error carries tgtd's log.
   */
  static async start(dir: string): Promise<Tgtd> {
    fs.mkdirSync(dir, { recursive: true });
    let last: Error | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await Tgtd.startOnce(dir, attempt);
      } catch (e) {
        last = e as Error;
      }
    }
    throw last!;
  }

  private static async startOnce(dir: string, attempt: number): Promise<Tgtd> {
    // a control port no other tgtd uses: its socket must not exist yet
    let cp = 1000 + ((process.pid * 3 + attempt * 7919) % 40000);
    while (fs.existsSync(`/run/tgtd/socket.${cp}`) || fs.existsSync(`/run/tgtd/socket.${cp}.lock`)) cp++;
    const port = await freeLoopbackPort();
    const log = path.join(dir, `tgtd-${port}.log`);
    const fd = fs.openSync(log, 'w');
    const child = spawn('tgtd', ['-f', '-C', String(cp), '--iscsi', `portal=127.0.0.1:${port}`], { detached: true, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    child.unref();
    const t = new Tgtd(child.pid ?? -1, port, cp, log);
    const end = Date.now() + 10_000;
    for (;;) {
      const failed = await Promise.race([spawnError, sleep(50).then(() => null)]);
      if (failed) throw new Error(`tgtd did not start: ${failed.message}`);
      if ((await t.adm(['--op', 'show', '--mode', 'target'])).code === 0) return t;
      if (child.exitCode !== null || Date.now() > end) {
        await t.stop().catch(() => undefined);
        const why = child.exitCode !== null ? `exit status ${child.exitCode}` : 'not answering tgtadm within 10 s';
        throw new Error(`tgtd did not start on 127.0.0.1:${port} (control port ${cp}; ${why}): ${fs.readFileSync(log, 'utf8').trim().split('\n').slice(-5).join(' | ')}`);
      }
    }
  }

  /** A new target with its LUNs, bound to every initiator; returns its tid. */
  async addTarget(spec: TargetSpec): Promise<number> {
    const tid = this.nextTid++;
    await this.admOk(['--op', 'new', '--mode', 'target', '--tid', String(tid), '-T', spec.iqn]);
    await this.admOk(['--op', 'bind', '--mode', 'target', '--tid', String(tid), '-I', 'ALL']);
    for (const l of spec.luns) {
      await this.admOk(['--op', 'new', '--mode', 'logicalunit', '--tid', String(tid), '--lun', String(l.lun), '-b', l.file,
        ...(l.deviceType === 'cd' ? ['--device-type=cd'] : [])]);
      if (l.params) await this.admOk(['--op', 'update', '--mode', 'logicalunit', '--tid', String(tid), '--lun', String(l.lun), '--params', l.params]);
    }
    for (const [k, v] of Object.entries(spec.settings ?? {})) {
      await this.admOk(['--op', 'update', '--mode', 'target', '--tid', String(tid), '-n', k, '-v', v]);
    }
    if (spec.chap) {
      if (!this.accounts.has(spec.chap.user)) {
        await this.admOk(['--op', 'new', '--mode', 'account', '--user', spec.chap.user, '--password', spec.chap.password]);
        this.accounts.add(spec.chap.user);
      }
      await this.admOk(['--op', 'bind', '--mode', 'account', '--tid', String(tid), '--user', spec.chap.user]);
    }
    return tid;
  }

  async removeTarget(tid: number): Promise<void> {
    await this.admOk(['--op', 'delete', '--force', '--mode', 'target', '--tid', String(tid)]);
  }

  /** Delete every target, then the system; kill by PID only if tgtd is still there after 5 s. */
  async stop(): Promise<void> {
    if (alive(this.pid)) {
      await this.adm(['--op', 'update', '--mode', 'sys', '--name', 'State', '-v', 'offline']);
      const show = await this.adm(['--op', 'show', '--mode', 'target']);
      for (const m of show.out.matchAll(/^Target (\d+):/gm)) await this.adm(['--op', 'delete', '--force', '--mode', 'target', '--tid', m[1]!]);
      await this.adm(['--op', 'delete', '--mode', 'system']);
      const end = Date.now() + 5000;
      while (alive(this.pid) && Date.now() < end) await sleep(20);
      if (alive(this.pid)) {
        try {
          process.kill(this.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
    for (const f of [`/run/tgtd/socket.${this.controlPort}`, `/run/tgtd/socket.${this.controlPort}.lock`]) fs.rmSync(f, { force: true });
  }
}
