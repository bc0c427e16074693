/**
 * Builds recipes with the real qemu-img / qemu-io and records what qemu-img
 * says about the result. Only argument arrays, never a shell.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { CheckResult, ImageInfo, IoCommand, MapEntry } from '../../adapters/adapter.js';
import { extensionOf, imageFileName, imageFormat, recipeKey, type Recipe } from './recipe.js';
import { CPU_USAGE_ATTEMPTS, CPU_USAGE_FLAKE, keyedName, SecretFiles } from '../../adapters/qemu-secrets.js';
import type { SecretObject } from '../../adapters/adapter.js';
import { qemuIoText } from '../../adapters/qemu-io-text.js';
import { normaliseCheck, normaliseInfo, normaliseMap, type Json } from './normalise.js';
import { REPO } from './paths.js';

const TIMEOUT = 120_000;

export interface QemuTools {
  qemuImg: string;
  qemuIo: string;
}

export const DEFAULT_TOOLS: QemuTools = { qemuImg: 'qemu-img', qemuIo: 'qemu-io' };

export class ToolError extends Error {
  constructor(readonly command: string[], message: string) {
    super(`${command.join(' ')}: ${message}`);
    this.name = 'ToolError';
  }
}

async function run(cmd: string, args: string[], okCodes: number[] = [0]) {
  let r = await execa(cmd, args, { reject: false, timeout: TIMEOUT, stripFinalNewline: true });
  // qemu-img's PBKDF2 calibration (LUKS create) sometimes measures no CPU time on these VMs
  for (let n = 1; n < CPU_USAGE_ATTEMPTS && r.failed && !r.timedOut && CPU_USAGE_FLAKE.test(String(r.stderr)); n++) {
    process.stderr.write(`${cmd}: "Unable to get accurate CPU usage"; retrying (attempt ${n + 1} of ${CPU_USAGE_ATTEMPTS})\n`);
    r = await execa(cmd, args, { reject: false, timeout: TIMEOUT, stripFinalNewline: true });
  }
  if (r.timedOut) throw new ToolError([cmd, ...args], `timed out after ${TIMEOUT} ms`);
  if (r.failed && (r.exitCode === undefined || !okCodes.includes(r.exitCode))) {
    throw new ToolError([cmd, ...args], (r.stderr || r.stdout || `exit ${r.exitCode ?? r.signal}`).trim());
  }
  return r;
}

/** First line of `qemu-img --version`, the manifest's producer. */
export async function qemuImgVersion(tools = DEFAULT_TOOLS): Promise<string> {
  const r = await run(tools.qemuImg, ['--version']);
  return r.stdout.split('\n')[0].trim();
}

/** qemu-io -c command texts for the recipe's I/O. */
export function qemuIoCommands(io: IoCommand[]): string[] {
  return io.map(qemuIoText);
}

// qemu-io reports a failed command on its output and carries on
const IO_FAILURE = /(failed|error|cannot|Could not)/i;

async function runIo(tools: QemuTools, r: Recipe, file: string, format: string, objects: string[] = []): Promise<void> {
  const cmds = qemuIoCommands(r.io ?? []).flatMap((c) => ['-c', c]);
  const key = recipeKey(r);
  if (!r.crash) {
    const res = await run(tools.qemuIo, [...objects, ...imageArgs(file, format, key), ...cmds]);
    const text = `${res.stdout}\n${res.stderr}`;
    if (IO_FAILURE.test(text)) throw new ToolError([tools.qemuIo, ...cmds, file], text.trim());
    return;
  }
  // The writer dies (SIGABRT from qemu-io's abort command) before it can flush or close.
  const opts = Object.entries(r.crash.openOptions ?? {}).map(([k, v]) => `,${k}=${v}`).join('');
  const spec = `driver=${format},file.filename=${file}${opts}`;
  const args = ['-t', r.crash.cache, '--image-opts', ...cmds, '-c', 'abort', spec];
  const res = await execa(tools.qemuIo, args, { reject: false, timeout: TIMEOUT });
  if (res.signal !== 'SIGABRT') {
    throw new ToolError([tools.qemuIo, ...args], `expected the writer to die of SIGABRT, got ${res.signal ?? 'exit ' + res.exitCode}: ${res.stderr}`);
  }
  if (IO_FAILURE.test(res.stdout)) throw new ToolError([tools.qemuIo, ...args], res.stdout.trim());
}

/** `-f FMT FILE`, or for an encrypted image a json: name carrying its key-secret (objects go first). */
function imageArgs(file: string, format: string, key: { keySecret: string } | undefined): string[] {
  if (!key) return ['-f', format, file];
  return [keyedName({ filename: file, format, keySecret: key.keySecret }).name];
}

function createArgs(r: Recipe, file: string, objects: string[] = []): string[] {
  const c = r.create;
  const args = ['create', '-q', ...objects, '-f', c.format];
  if (c.options) args.push('-o', c.options);
  if (c.backingFile) args.push('-b', c.backingFile, '-F', c.backingFormat!);
  args.push(file);
  if (c.size !== undefined) args.push(String(c.size));
  return args;
}

/**
 * Runs a recipe's other producer (bximage, create_compressed_fs, ...): its
 * raw source first (qemu-img create + qemu-io), its small files, then the
 * command with placeholders replaced; the image must exist afterwards.
 */
async function produceImage(r: Recipe, dir: string, target: string, tools: QemuTools): Promise<string> {
  const p = r.produce!;
  const source = join(dir, `${r.id}.source.raw`);
  if (p.source) {
    await rm(source, { force: true });
    await run(tools.qemuImg, ['create', '-q', '-f', 'raw', source, String(p.source.size)]);
    if (p.source.io?.length) {
      const cmds = qemuIoCommands(p.source.io).flatMap((c) => ['-c', c]);
      const res = await run(tools.qemuIo, ['-f', 'raw', ...cmds, source]);
      if (IO_FAILURE.test(`${res.stdout}\n${res.stderr}`)) throw new ToolError([tools.qemuIo, ...cmds, source], res.stdout.trim());
    }
  }
  for (const [name, text] of Object.entries(p.files ?? {})) await writeFile(join(dir, name), text, { mode: 0o600 });
  const fill = (a: string) => a.replaceAll('{repo}', REPO).replaceAll('{image}', target).replaceAll('{source}', source).replaceAll('{dir}', dir);
  await run(p.command, p.args.map(fill));
  for (const name of Object.keys(p.files ?? {})) await rm(join(dir, name), { force: true });
  await rm(source, { force: true });
  try {
    await stat(target);
  } catch {
    throw new ToolError([p.command, ...p.args.map(fill)], `did not write ${target}`);
  }
  return target;
}

/**
 * Makes the recipe's image as dir/<id>.<ext>. Backing files are expected in
 * dir already (built earlier, under their own file names).
 */
export async function buildWithQemu(r: Recipe, dir: string, tools = DEFAULT_TOOLS): Promise<string> {
  const target = join(dir, imageFileName(r));
  if (r.produce) {
    await rm(target, { force: true });
    return produceImage(r, dir, target, tools);
  }
  const first = r.convert ? join(dir, `${r.id}.src.${extensionOf(r.create.format)}`) : target;
  await rm(target, { force: true });
  const key = recipeKey(r);
  const files = new SecretFiles();
  try {
    const objects = key ? await files.args(key.secrets) : [];
    await run(tools.qemuImg, createArgs(r, first, objects));
    // the source of a convert recipe is the plain one (its options name no key); the target is keyed by -o
    const firstKey = r.convert ? undefined : key;
    if (r.io?.length) await runIo(tools, { ...r, secrets: firstKey ? r.secrets : undefined }, first, r.create.format, firstKey ? objects : []);
    if (r.convert) {
      const cv = r.convert;
      const args = ['convert', ...objects, '-f', r.create.format, '-O', cv.format];
      if (cv.options) args.push('-o', cv.options);
      if (cv.compress) args.push('-c');
      args.push(first, target);
      await run(tools.qemuImg, args);
      await rm(first, { force: true });
    }
  } finally {
    await files.dispose();
  }
  return target;
}

/** What qemu-img reports about an image, normalised for the manifest. */
export interface Observation {
  info: Record<string, Json>;
  map: Record<string, Json>[];
  check: Record<string, Json> | null;
  guestSha256: string;
}

export async function guestSha256WithQemu(file: string, format: string, scratch: string, tools = DEFAULT_TOOLS, objects: string[] = [], key?: { keySecret: string }): Promise<string> {
  const out = join(scratch, `guest-${process.pid}-${Date.now()}.raw`);
  try {
    await run(tools.qemuImg, ['convert', ...objects, '-O', 'raw', ...imageArgs(file, format, key), out]);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(out)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  } finally {
    await rm(out, { force: true });
  }
}

/** `key`: an encrypted image's secrets and key-secret id (info needs no key; map, check and reads do). */
export async function observeWithQemu(file: string, format: string, scratch: string, tools = DEFAULT_TOOLS, key?: { secrets: SecretObject[]; keySecret: string }): Promise<Observation> {
  const files = new SecretFiles();
  try {
    const objects = key ? await files.args(key.secrets) : [];
    const img = imageArgs(file, format, key);
    const info = JSON.parse((await run(tools.qemuImg, ['info', '--output=json', '-f', format, file])).stdout) as ImageInfo;
    const map = JSON.parse((await run(tools.qemuImg, ['map', ...objects, '--output=json', ...img])).stdout) as MapEntry[];
    // 2 corruptions, 3 leaks, 63 no check: results, not failures
    const ck = await run(tools.qemuImg, ['check', ...objects, '--output=json', ...img], [0, 2, 3, 63]);
    const exitCode = ck.exitCode ?? 0;
    const check: CheckResult = exitCode === 63 ? { 'check-errors': 0, exitCode } : { ...JSON.parse(ck.stdout), exitCode };
    // a keyed image is named by a json: filename; the record names the file
    if (key && 'filename' in check) check.filename = file;
    return {
      info: normaliseInfo(info, file),
      map: normaliseMap(map),
      check: normaliseCheck(check),
      guestSha256: await guestSha256WithQemu(file, format, scratch, tools, objects, key),
    };
  } finally {
    await files.dispose();
  }
}

export { imageFormat };
