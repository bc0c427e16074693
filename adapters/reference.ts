/**
 * The embedded reference implementation as an implementation under test:
 * in-process calls into reference/, BlockErrors turned into ImplErrors.
 */
import { BlockError } from '../reference/errors.js';
import { createImage } from '../reference/tools/create.js';
import { imageInfo } from '../reference/tools/info.js';
import { checkImage } from '../reference/tools/check.js';
import { mapImage } from '../reference/tools/map.js';
import { measure } from '../reference/tools/measure.js';
import { convertImage } from '../reference/tools/convert.js';
import { compareImages } from '../reference/tools/compare.js';
import { guestSha256, ioOnImage } from '../reference/tools/io.js';
import { resizeImage } from '../reference/tools/resize.js';
import { rebaseImage } from '../reference/tools/rebase.js';
import { commitImage } from '../reference/tools/commit.js';
import { amendImage } from '../reference/tools/amend.js';
import { snapshotImage, snapshotTable } from '../reference/tools/snapshot.js';
import { bitmapImage } from '../reference/tools/bitmap.js';
import { ddImage } from '../reference/tools/dd.js';
import { openImage } from '../reference/graph/open.js';
import { glusterAddonBuilt } from '../reference/protocols/gluster/addon.js';
import { serveNbdWith } from './nbd-serve.js';
import { collectWarnings } from '../reference/warnings.js';
import { blockdevOptions, parseFilename } from '../reference/uri/index.js';
import { join } from 'node:path';
import { repoRoot } from './index.js';
import { ImplError, type Adapter, type CheckResult, type ImageInfo, type Operation } from './adapter.js';

const OPS: Operation[] = ['create', 'info', 'check', 'repair', 'read', 'write', 'map', 'measure', 'convert', 'compare', 'resize', 'dd'];
const QCOW2_ONLY: Operation[] = ['rebase', 'commit', 'amend', 'snapshot', 'bitmap'];

async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof BlockError) throw new ImplError(e.message, 1, 'reference');
    if (e instanceof ImplError) throw e;
    // Anything else is a bug in the reference: surface it loudly, with its stack.
    const err = e as Error;
    throw new ImplError(`internal error: ${err.stack ?? err.message}`, 1, 'reference');
  }
}

export function createReferenceAdapter(): Adapter {
  return {
    name: 'reference',
    capabilities: {
      formats: {
        raw: OPS.filter((o) => o !== 'repair'),
        qcow2: [...OPS, ...QCOW2_ONLY],
        vdi: OPS.filter((o) => !['repair', 'measure', 'resize'].includes(o)), parallels: OPS.filter((o) => !['measure', 'resize'].includes(o)),
        qed: ['create', 'info', 'check', 'repair', 'read', 'write', 'map', 'convert', 'compare'], qcow: ['create', 'info', 'read', 'write', 'map', 'convert', 'compare'],
        vpc: ['create', 'info', 'read', 'write', 'map', 'convert', 'compare'],
        vhdx: ['create', 'info', 'check', 'repair', 'read', 'write', 'map', 'convert', 'compare'],
        luks: ['create', 'info', 'check', 'read', 'write', 'map', 'convert', 'compare'],
        'qcow2+luks': ['create', 'info', 'check', 'read', 'write', 'map', 'convert', 'compare'], 'qcow2+aes': ['create', 'info', 'check', 'read', 'write', 'map', 'convert', 'compare'], // encrypted qcow2 (issue 6): LUKS and legacy AES, created and written as qemu-img 7.2 lays them out
        bochs: ['info', 'check', 'read', 'map', 'convert', 'compare'],
        cloop: ['info', 'check', 'read', 'map', 'convert', 'compare'],
        dmg: ['info', 'check', 'read', 'map', 'convert', 'compare'],
        vmdk: ['create', 'info', 'check', 'read', 'write', 'map', 'convert', 'compare'],
        'vmdk+bounds': ['info', 'read'], // opens hostile vmdk descriptors (10^6 extents, a parent loop) with bounds
        // (one line per format, above this comment)
      },
      protocols: ['file', 'nbd', 'nbd-server', 'null-co', 'filename-parse', 'iscsi', 'ssh', 'locking', 'host_device', 'host_cdrom', 'vvfat', 'vvfat-rw', ...(glusterAddonBuilt() ? ['gluster'] : [])],
      notes: { gluster: 'the reference reaches GlusterFS through libgfapi (build/Release/gluster.node), which was not built here: libglusterfs-dev (glfs.h) was missing when `npm install` ran node-gyp' },
    },
    create: (req) => guard(async () => {
      await createImage(req);
    }),
    info: (image, opts) => guard(async () => {
      const r = await imageInfo(image.filename, { format: image.format, imageOpts: image.imageOpts, forceShare: image.forceShare, backingChain: opts?.backingChain, secrets: image.secrets, keySecret: image.keySecret });
      if (!Array.isArray(r)) return r as ImageInfo;
      // The contract nests the chain as backing-image, top first.
      for (let i = r.length - 2; i >= 0; i--) r[i]['backing-image'] = r[i + 1];
      return r[0] as ImageInfo;
    }),
    check: (image, opts) => guard(async () => {
      try {
        return await checkImage(image.filename, { format: image.format, imageOpts: image.imageOpts, forceShare: image.forceShare, repair: opts?.repair, secrets: image.secrets, keySecret: image.keySecret });
      } catch (e) {
        if (e instanceof BlockError && e.code === 'unsupported' && /does not support checks/.test(e.message)) {
          return { 'check-errors': 0, exitCode: 63 } as CheckResult;
        }
        throw e;
      }
    }),
    map: (image) => guard(() => mapImage(image.filename, { format: image.format, imageOpts: image.imageOpts, forceShare: image.forceShare, secrets: image.secrets, keySecret: image.keySecret })),
    measure: (req) => guard(() => measure({ outputFormat: req.outputFormat, options: req.options, size: req.size, source: req.source })),
    convert: (req) => guard(() => convertImage(req)),
    compare: (a, b) => guard(() => compareImages(a, b)),
    io: (image, commands) => guard(async () => ({ warnings: (await collectWarnings(() => ioOnImage(image, commands))).warnings })),
    guestSha256: (image) => guard(() => guestSha256(image)),
    rebase: (image, req) => guard(() => rebaseImage({ filename: image.filename, format: image.format, ...req })),
    commit: (image, req) => guard(() => commitImage({ filename: image.filename, format: image.format, ...req })),
    snapshot: (image, req) => guard(async () => {
      const list = await snapshotImage({ filename: image.filename, format: image.format, action: req.action, name: req.name });
      return req.action === 'list' ? snapshotTable(list) : '';
    }),
    bitmap: (image, req) => guard(() => bitmapImage({ filename: image.filename, format: image.format, bitmap: req.name, actions: req.actions, granularity: req.granularity, merge: req.merge, sourceFile: req.mergeFrom?.filename, sourceFormat: req.mergeFrom?.format })),
    dd: (req) => guard(() => ddImage({ format: req.source.format, outputFormat: req.target.format, operands: [`if=${req.source.filename}`, `of=${req.target.filename}`, ...(req.operands ?? [])] })),
    amend: (image, req) => guard(() => amendImage({ filename: image.filename, format: image.format, options: req.options })),
    resize: (image, req) => guard(async () => {
      await resizeImage({ filename: image.filename, format: image.format, size: req.size, shrink: req.shrink, preallocation: req.preallocation });
    }),
    resolveFilename: (filename, req = {}) => guard(async () => {
      // the parse is synchronous, so the environment it reads can be set around it
      const saved = new Map(Object.keys(req.env ?? {}).map((k) => [k, process.env[k]]));
      Object.assign(process.env, req.env ?? {});
      try {
        const spec = parseFilename(filename, { format: req.format, imageOpts: req.imageOpts });
        // no format layer named: the options are the protocol node's (the format is probed only when it opens)
        const node = spec.driver === null && spec.children.file ? spec.children.file : spec;
        return { options: blockdevOptions(node), shown: 'all' as const, source: 'the reference\'s filename parser' };
      } finally {
        for (const [k, v] of saved) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
    }),
    holdOpen: (image, req) => guard(async () => {
      // in-process: the open file description and its locks are this process's, as a qemu-io's are its own
      const node = await openImage(image.filename, { format: image.format, imageOpts: image.imageOpts, forceShare: image.forceShare, readOnly: !req.write });
      let open = true;
      return {
        async release() {
          if (!open) return;
          open = false;
          await node.close();
        },
      };
    }),
    // the reference's server is a real process too (qbc nbd), so every export is stopped by its PID
    serveNbd: (image, req) => serveNbdWith(process.execPath, [join(repoRoot(), 'bin', 'qbc'), 'nbd'], image, req, 'reference'),
  };
}

export default createReferenceAdapter;
