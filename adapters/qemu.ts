/**
 * Adapter for any implementation that speaks qemu-img / qemu-io's command-line
 * dialect: real QEMU, or our own `qbc img` / `qbc io` (the 'cli' flavour).
 *
 * Every call is one child process with an argument array (never a shell) and a
 * timeout, so a hanging implementation fails the scenario instead of the run.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { execa } from 'execa';
import {
  ImplError,
  type Adapter,
  type Capabilities,
  type CheckResult,
  type ConvertRequest,
  type CreateRequest,
  type ImageInfo,
  type ImageRef,
  type IoCommand,
  type IoOutcome,
  type MapEntry,
  type MeasureRequest,
  type MeasureResult,
  type NbdServeRequest,
  type ResolveFilenameRequest,
  type ResolvedFilename,
  type SnapshotRequest,
  type BitmapRequest,
  type DdRequest,
} from './adapter.js';
import { serveNbdWith } from './nbd-serve.js';
import { holdWithQemuIo } from './hold-open.js';
import { resolvedFromInfo } from './qemu-filename.js';
import { glusterAddonBuilt } from '../reference/protocols/gluster/addon.js';
import { CPU_USAGE_ATTEMPTS, CPU_USAGE_FLAKE, keyedName, SecretFiles } from './qemu-secrets.js';
import { qemuIoText } from './qemu-io-text.js';

export interface QemuAdapterOptions {
  qemuImg?: string;
  qemuIo?: string;
  /** the NBD server with qemu-nbd's command line */
  qemuNbd?: string;
  name?: string;
  /** per-process limit in milliseconds */
  timeoutMs?: number;
}

interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Operations this dialect offers. */
const QCOW2_OPS = ['create', 'info', 'check', 'repair', 'read', 'write', 'map', 'measure', 'convert', 'compare', 'resize', 'rebase', 'commit', 'amend', 'snapshot', 'bitmap', 'dd'] as const;
const RAW_OPS = ['create', 'info', 'read', 'write', 'map', 'measure', 'convert', 'compare', 'resize', 'dd'] as const;

/** qemu-img check: 0 clean, 2 corruptions, 3 leaks, 63 format has no check. Other codes are failures. */
const CHECK_RESULT_CODES = new Set([0, 2, 3, 63]);

/** qemu-io prints these (and may still exit 0) when a command did not do what was asked. */
const IO_FAILURE = /Pattern verification failed|\b(?:read|write|discard|writev|readv|aio_\w+) failed|can't open|Invalid argument|No such file|Is another process using the image/i;

export function createQemuAdapter(opts: QemuAdapterOptions = {}): Adapter {
  const qemuImg = opts.qemuImg ?? 'qemu-img';
  const qemuIo = opts.qemuIo ?? 'qemu-io';
  const qemuNbd = opts.qemuNbd ?? 'qemu-nbd';
  const name = opts.name ?? 'qemu';
  const timeout = opts.timeoutMs ?? 60_000;

  const capabilities: Capabilities = {
    formats: {
      raw: [...RAW_OPS],
      qcow2: [...QCOW2_OPS],
      vdi: ['create', 'info', 'check', 'read', 'write', 'map', 'convert', 'compare'], parallels: ['create', 'info', 'check', 'repair', 'read', 'write', 'map', 'convert', 'compare'],
      qed: ['create', 'info', 'check', 'repair', 'read', 'write', 'map', 'convert', 'compare'], qcow: ['create', 'info', 'read', 'write', 'map', 'convert', 'compare'],
      vmdk: ['create', 'info', 'check', 'read', 'write', 'map', 'convert', 'compare'],
      ...(opts.qemuImg ? { 'vmdk+bounds': ['info', 'read'] as Capabilities['formats'][string] } : {}), // qbc-img bounds hostile vmdk descriptors; real qemu-img does not (notes)
      vpc: ['create', 'info', 'read', 'write', 'map', 'convert', 'compare'], vhdx: ['create', 'info', 'check', 'repair', 'read', 'write', 'map', 'convert', 'compare'],
      luks: ['create', 'info', 'check', 'read', 'write', 'map', 'convert', 'compare'],
      'qcow2+luks': ['create', 'info', 'check', 'read', 'write', 'map', 'convert', 'compare'], 'qcow2+aes': ['create', 'info', 'check', 'read', 'write', 'map', 'convert', 'compare'], // encrypted qcow2: real qemu-img, and qbc-img since issue 6's qcow2 part
      bochs: ['info', 'check', 'read', 'map', 'convert', 'compare'],
      cloop: ['info', 'check', 'read', 'map', 'convert', 'compare'],
      dmg: ['info', 'check', 'read', 'map', 'convert', 'compare'],
      // (one line per format, above this comment)
    },
    protocols: ['file', 'nbd', 'nbd-server', 'null-co', 'iscsi', 'ssh', 'locking', 'host_device', 'host_cdrom', 'vvfat', 'vvfat-rw', ...(opts.qemuImg ? (glusterAddonBuilt() ? ['gluster'] : []) : ['gluster', 'nvme'])], // real qemu-img has qemu-block-extra's drivers; qbc-img's iSCSI, SSH, vvfat rw and GlusterFS (when its addon is built) are the reference's
    notes: opts.qemuImg ? undefined : {
      'vmdk+bounds': 'qemu-img 7.2 does not bound what a vmdk descriptor makes it open: it opens every one of 10^6 extent lines and follows a parentFileNameHint naming the image itself, past the adapter\'s timeout',
    },
  };

  /**
   * `near` is the image the command is about: it runs in that image's directory, so a
   * relative name inside -o text (data_file=, backing_file=) means the same thing at
   * create time as qemu gives it when it later opens the image; `{ cwd }` (an ImageRef's
   * cwd) names the directory instead.
   */
  async function run(bin: string, args: string[], near?: string | { cwd: string }, abortExpected = false, extraEnv: Record<string, string> = {}): Promise<RunResult> {
    let r;
    try {
      r = await execa(bin, args, {
        reject: false,
        timeout,
        stdin: 'ignore',
        env: { ...extraEnv, LC_ALL: 'C' },
        // (only for absolute paths: a relative one is already relative to our cwd)
        ...(typeof near === 'object' ? { cwd: near.cwd } : near && isAbsolute(near) ? { cwd: dirname(near) } : {}),
      });
    } catch (err) {
      throw new ImplError(`${bin}: ${(err as Error).message}`, 127, name);
    }
    if (r.timedOut) throw new ImplError(`${bin} ${args.join(' ')}: timed out after ${timeout} ms`, 124, name);
    if (abortExpected && r.signal === 'SIGABRT') return { exitCode: 134, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
    if (r.failed && r.exitCode === undefined) {
      // spawn failure (binary missing) or killed by a signal
      throw new ImplError(`${bin}: ${r.shortMessage ?? 'could not run'}`, 127, name);
    }
    return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  }

  function fail(r: RunResult): never {
    const msg = (r.stderr.trim() || r.stdout.trim() || `exit status ${r.exitCode}`);
    throw new ImplError(msg, r.exitCode, name);
  }

  async function img(args: string[], near?: string): Promise<RunResult> {
    const r = await run(qemuImg, args, near);
    if (r.exitCode !== 0) fail(r);
    return r;
  }

  function parseJson<T>(r: RunResult, what: string): T {
    try {
      return JSON.parse(r.stdout) as T;
    } catch {
      throw new ImplError(`${what}: output is not JSON: ${r.stdout.slice(0, 200)}${r.stderr ? `\n${r.stderr.trim()}` : ''}`, r.exitCode, name);
    }
  }

  /** -U: open sharing every permission (image locking); goes with the image however it is named */
  const shareArgs = (image: ImageRef): string[] => (image.forceShare ? ['-U'] : []);
  const fmtArgs = (flag: string, image: ImageRef): string[] => [...(image.imageOpts ? ['--image-opts'] : image.format ? [flag, image.format] : []), ...shareArgs(image)];
  /** -f FMT NAME, or the image named with its key-secret (json: or --image-opts) */
  const imageArgs = (flag: string, image: ImageRef): string[] => {
    const k = keyedName(image);
    if (k.fmt === 'json') return [...shareArgs(image), k.name];
    return [...fmtArgs(flag, image), k.name];
  };
  /** The format arguments of an image about to be named by keyedName (a json: name carries its own driver). */
  const keyedFmtArgs = (flag: string, image: ImageRef): string[] => (keyedName(image).fmt === 'json' ? shareArgs(image) : fmtArgs(flag, image));
  /** Runs `fn` with the --object arguments of these secrets, removing their files afterwards. */
  async function withSecrets<T>(lists: Array<ImageRef['secrets']>, fn: (objects: string[]) => Promise<T>): Promise<T> {
    const files = new SecretFiles();
    try {
      return await fn(await files.args(...lists));
    } finally {
      await files.dispose();
    }
  }
  /**
   * qemu-img's LUKS creation fails now and then on these machines with "Unable to get accurate
   * CPU usage" (its PBKDF timing probe read a zero CPU time). Such a run is retried, and said so
   * on stderr, never silently; any other failure is final.
   */
  async function imgRetryingLuks(args: string[], near: string | undefined, what: string): Promise<RunResult> {
    const attempts = CPU_USAGE_ATTEMPTS;
    for (let i = 1; ; i++) {
      const r = await run(qemuImg, args, near);
      if (r.exitCode === 0) return r;
      if (!CPU_USAGE_FLAKE.test(r.stderr) || i === attempts) fail(r);
      process.stderr.write(`${name} adapter: ${what}: qemu-img said "Unable to get accurate CPU usage" (its PBKDF timing probe); retrying, attempt ${i + 1} of ${attempts}\n`);
    }
  }

  return {
    name,
    capabilities,

    async create(req: CreateRequest): Promise<void> {
      const files = new SecretFiles();
      const objects = await files.args(req.secrets);
      const args = ['create', '-q', ...objects, '-f', req.format];
      if (req.options) args.push('-o', req.options);
      if (req.backingFile !== undefined) args.push('-b', req.backingFile);
      if (req.backingFormat !== undefined) args.push('-F', req.backingFormat);
      args.push(req.filename);
      if (req.size !== undefined) args.push(String(req.size));
      try {
        await imgRetryingLuks(args, req.filename, `create ${req.filename}`);
      } finally {
        await files.dispose();
      }
    },

    async info(image: ImageRef, o: { backingChain?: boolean } = {}): Promise<ImageInfo> {
      const r = await withSecrets([image.secrets], (objects) => {
        const args = ['info', '--output=json', ...objects, ...fmtArgs('-f', image)];
        if (o.backingChain) args.push('--backing-chain');
        args.push(image.filename);
        return img(args, image.filename);
      });
      if (!o.backingChain) return parseJson<ImageInfo>(r, 'info');
      // --backing-chain prints a list, top first; the contract nests it as backing-image
      const chain = parseJson<ImageInfo[]>(r, 'info');
      if (!Array.isArray(chain) || chain.length === 0) throw new ImplError('info: empty backing chain output', 1, name);
      for (let i = chain.length - 2; i >= 0; i--) chain[i]!['backing-image'] = chain[i + 1];
      return chain[0]!;
    },

    async check(image: ImageRef, o: { repair?: 'leaks' | 'all' } = {}): Promise<CheckResult> {
      const r = await withSecrets([image.secrets], (objects) => {
        const args = ['check', '--output=json', ...objects];
        if (o.repair) args.push('-r', o.repair);
        args.push(...imageArgs('-f', image));
        return run(qemuImg, args, image.filename);
      });
      if (!CHECK_RESULT_CODES.has(r.exitCode)) fail(r);
      if (r.exitCode === 63) return { 'check-errors': 0, exitCode: 63 };
      const result = parseJson<Omit<CheckResult, 'exitCode'>>(r, 'check');
      // a keyed image is named by a json: filename, which check echoes: report the file's name
      if (image.keySecret && typeof result.filename === 'string' && result.filename.startsWith('json:')) result.filename = image.filename;
      return { ...result, exitCode: r.exitCode };
    },

    async map(image: ImageRef): Promise<MapEntry[]> {
      const r = await withSecrets([image.secrets], (objects) => img(['map', '--output=json', ...objects, ...imageArgs('-f', image)], image.filename));
      return parseJson<MapEntry[]>(r, 'map');
    },

    async measure(req: MeasureRequest): Promise<MeasureResult> {
      const args = ['measure', '--output=json', '-O', req.outputFormat];
      if (req.options) args.push('-o', req.options);
      if (req.size !== undefined) args.push('--size', String(req.size));
      if (req.source) args.push(...fmtArgs('-f', req.source), req.source.filename);
      const r = await img(args, req.source?.filename);
      return parseJson<MeasureResult>(r, 'measure');
    },

    async convert(req: ConvertRequest): Promise<void> {
      const files = new SecretFiles();
      // --target-image-opts: the target is an option list that names its own format (qemu-img wants -n with it)
      const args = ['convert', ...(await files.args(req.source.secrets, req.target.secrets)), ...keyedFmtArgs('-f', req.source), ...(req.target.imageOpts ? ['--target-image-opts'] : ['-O', req.target.format])];
      if (req.options) args.push('-o', req.options);
      if (req.compress) args.push('-c');
      if (req.noCreate) args.push('-n');
      if (req.backingFile !== undefined) args.push('-B', req.backingFile);
      if (req.backingFormat !== undefined) args.push('-F', req.backingFormat);
      if (req.bitmaps) args.push('--bitmaps');
      if (req.skipBrokenBitmaps) args.push('--skip-broken-bitmaps');
      args.push(keyedName(req.source).name, req.target.filename);
      try {
        await imgRetryingLuks(args, req.target.filename, `convert to ${req.target.filename}`);
      } finally {
        await files.dispose();
      }
    },

    async compare(a: ImageRef, b: ImageRef): Promise<{ identical: boolean; message: string }> {
      const ka = keyedName(a);
      const kb = keyedName(b);
      const r = await withSecrets([a.secrets, b.secrets], (objects) => run(qemuImg, ['compare', ...objects, ...keyedFmtArgs('-f', a), ...keyedFmtArgs('-F', b), ka.name, kb.name], a.filename));
      if (r.exitCode === 0 || r.exitCode === 1) {
        return { identical: r.exitCode === 0, message: r.stdout.trim() };
      }
      fail(r);
    },

    async io(image: ImageRef, commands: IoCommand[]): Promise<IoOutcome | void> {
      if (commands.length === 0) return;
      // A list of reads only opens read-only, as a reader would (and works on images marked corrupt).
      const args = commands.every((c) => c.op === 'read') ? ['-r'] : [];
      // A writer that will crash runs writethrough, so what it wrote before dying is on disk.
      const crash = commands.some((c) => c.op === 'crash');
      if (crash) args.push('-t', 'writethrough');
      const k = keyedName(image);
      args.push(...keyedFmtArgs('-f', image));
      for (const c of commands) args.push('-c', qemuIoText(c));
      args.push(k.name);
      const r = await withSecrets([image.secrets], (objects) => run(qemuIo, [...objects, ...args], image.cwd ? { cwd: image.cwd } : image.filename, crash));
      const out = `${r.stdout}\n${r.stderr}`;
      // qemu-io's abort ends it with SIGABRT (reported as 134): that is the crash asked for.
      const died = crash && r.exitCode === 134;
      if ((r.exitCode !== 0 && !died) || IO_FAILURE.test(out)) {
        // the failed command's line, and what the driver said on stderr about it (vvfat's "Tried to write to protected bootsector")
        const lines = out.split('\n').filter((l) => IO_FAILURE.test(l)).map((l) => l.trim());
        const said = r.stderr.split('\n').map((l) => l.trim()).filter((l) => l && !lines.includes(l)).slice(0, 20);
        throw new ImplError([...lines, ...said].join('\n') || `exit status ${r.exitCode}`, r.exitCode || 1, name);
      }
      // "qemu-io: warning: TEXT" (qbc io prints "warning: TEXT")
      return { warnings: [...r.stderr.matchAll(/^(?:[^:\n]*: )?warning: (.*)$/gm)].map((m) => m[1]!.trim()) };
    },

    async resize(image: ImageRef, req: { size: string; shrink?: boolean; preallocation?: string }): Promise<void> {
      const args = ['resize', '-q', ...fmtArgs('-f', image)];
      if (req.shrink) args.push('--shrink');
      if (req.preallocation) args.push(`--preallocation=${req.preallocation}`);
      // `--` so that a negative size ("-1M") is not taken for an option
      args.push('--', image.filename, req.size);
      await img(args, image.filename);
    },

    async rebase(image: ImageRef, req: { backingFile: string; backingFormat?: string; unsafe?: boolean }): Promise<void> {
      const args = ['rebase', '-q', ...fmtArgs('-f', image)];
      if (req.unsafe) args.push('-u');
      args.push('-b', req.backingFile);
      if (req.backingFormat) args.push('-F', req.backingFormat);
      args.push(image.filename);
      await img(args, image.filename);
    },

    async amend(image: ImageRef, req: { options: string }): Promise<void> {
      await img(['amend', ...fmtArgs('-f', image), '-o', req.options, image.filename], image.filename);
    },

    async snapshot(image: ImageRef, req: SnapshotRequest): Promise<string> {
      const flag = { list: '-l', create: '-c', apply: '-a', delete: '-d' }[req.action];
      // qemu-img snapshot has no -f: it always probes (or takes --image-opts)
      const args = ['snapshot', ...(image.imageOpts ? ['--image-opts'] : []), ...(req.action === 'list' ? [flag] : [flag, req.name ?? ''])];
      args.push(image.filename);
      const r = await img(args, image.filename);
      return r.stdout.replace(/\n$/, '');
    },

    async bitmap(image: ImageRef, req: BitmapRequest): Promise<void> {
      const args = ['bitmap', ...fmtArgs('-f', image), ...req.actions.flatMap((a) => (a === 'merge' ? ['--merge', req.merge ?? ''] : [`--${a}`]))];
      if (req.granularity !== undefined) args.push('-g', req.granularity);
      if (req.mergeFrom) args.push('-b', req.mergeFrom.filename, ...(req.mergeFrom.format ? ['-F', req.mergeFrom.format] : []));
      args.push(image.filename, req.name);
      await img(args, image.filename);
    },

    async dd(req: DdRequest): Promise<void> {
      const args = ['dd', ...fmtArgs('-f', req.source), ...(req.target.format ? ['-O', req.target.format] : [])];
      args.push(`if=${req.source.filename}`, `of=${req.target.filename}`, ...(req.operands ?? []));
      await img(args, req.target.filename);
    },

    async commit(image: ImageRef, req: { base?: string; keep?: boolean }): Promise<void> {
      const args = ['commit', '-q', ...fmtArgs('-f', image)];
      if (req.keep) args.push('-d');
      if (req.base) args.push('-b', req.base);
      args.push(image.filename);
      await img(args, image.filename);
    },

    async guestSha256(image: ImageRef): Promise<string> {
      // Convert to raw (exact: every guest byte, holes read as zeroes) and hash the file.
      const dir = await mkdtemp(join(tmpdir(), 'qbc-sha-'));
      try {
        const raw = join(dir, 'guest.raw');
        await withSecrets([image.secrets], (objects) => img(['convert', ...objects, '-O', 'raw', ...imageArgs('-f', image), raw], image.filename));
        return await sha256File(raw);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },

    serveNbd: (image: ImageRef, req: NbdServeRequest) => serveNbdWith(qemuNbd, [], image, req, name),

    bounded: (ms: number) => createQemuAdapter({ ...opts, timeoutMs: Math.min(ms, timeout) }),

    holdOpen: (image: ImageRef, req: { write: boolean }) => holdWithQemuIo(qemuIo, [...(req.write ? [] : ['-r']), ...fmtArgs('-f', image), image.filename], name, timeout, image.cwd ?? (!image.imageOpts && isAbsolute(image.filename) ? dirname(image.filename) : undefined)),

    /** What qemu-img info shows of the filename's options (see qemu-filename.ts): its image: line, or the address it failed to reach. */
    async resolveFilename(filename: string, req: ResolveFilenameRequest = {}): Promise<ResolvedFilename> {
      const args = ['info', '--output=json', ...(req.imageOpts ? ['--image-opts'] : req.format ? ['-f', req.format] : []), filename];
      const r = await run(qemuImg, args, undefined, false, req.env);
      return resolvedFromInfo(r, !!(req.imageOpts || req.format || filename.startsWith('json:')), name, capabilities.protocols);
    },
  };
}


export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}
