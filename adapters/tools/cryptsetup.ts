/**
 * cryptsetup (Debian package cryptsetup-bin) as a third-party reader of LUKS1 headers: info
 * from `cryptsetup luksDump`, shaped as qemu-img info prints a luks image. Reading the payload
 * would need `cryptsetup open`, which maps the disk through the kernel's device-mapper (root and
 * /dev/mapper/control, absent in the containers qbc runs in), so the adapter declares info only and
 * refuses a read by name. The payload is never decrypted by our code on cryptsetup's behalf.
 *
 * What luksDump does not print, the info leaves out: the key-material offset of a disabled key
 * slot, the dirty flag, and the actual size (that is the file system's, not cryptsetup's).
 */
import { statSync } from 'node:fs';
import { ImplError, type Adapter, type ImageInfo, type ImageRef, type Operation } from '../adapter.js';
import { plainFile, refuse, runTool, toolVersion, which } from './common.js';

const NAME = 'cryptsetup';

/** What infoFromDump reports: luksDump's header fields (no host size, no dirty flag: LUKS1 has none to dump). */
const INFO_FIELDS = ['filename', 'format', 'virtual-size', 'encrypted',
  ...['ivgen-alg', 'ivgen-hash-alg', 'hash-alg', 'cipher-alg', 'uuid', 'cipher-mode', 'slots', 'payload-offset', 'master-key-iters'].map((f) => `format-specific.${f}`)];
const SECTOR = 512;

function field(dump: string, label: string): string {
  const m = new RegExp(`^${label}:\\s*(.*)$`, 'm').exec(dump);
  if (!m) throw new ImplError(`cryptsetup luksDump printed no "${label}"`, 1, NAME);
  return m[1].trim();
}

/** The luksDump text of a LUKS1 header as qemu-img info --output=json shows a luks image. */
export function infoFromDump(dump: string, filename: string, fileSize: number): ImageInfo {
  const version = field(dump, 'Version');
  if (version !== '1') throw new ImplError(`LUKS version ${version}: qemu's luks driver (and this adapter) read LUKS1 only`, 1, NAME);
  const cipher = field(dump, 'Cipher name');
  const [mode, ivgen = ''] = field(dump, 'Cipher mode').split('-');
  const [ivgenAlg, ivgenHash] = ivgen.split(':');
  const keyBits = Number(field(dump, 'MK bits'));
  // xts splits the key in two: QEMU names the cipher by one half (aes-256 for a 512-bit xts key)
  const cipherBits = mode === 'xts' ? keyBits / 2 : keyBits;
  const payloadOffset = Number(field(dump, 'Payload offset')) * SECTOR;
  const slots: Record<string, unknown>[] = [];
  for (const m of dump.matchAll(/^Key Slot (\d+): (ENABLED|DISABLED)\n?((?:\t.*\n?)*)/gm)) {
    if (m[2] === 'DISABLED') {
      slots.push({ active: false });
      continue;
    }
    const body = m[3];
    const num = (label: string) => Number(new RegExp(`${label}:\\s*(\\d+)`).exec(body)?.[1]);
    slots.push({ active: true, iters: num('Iterations'), 'key-offset': num('Key material offset') * SECTOR, stripes: num('AF stripes') });
  }
  const data: Record<string, unknown> = {
    'ivgen-alg': ivgenAlg,
    ...(ivgenHash ? { 'ivgen-hash-alg': ivgenHash } : {}),
    'hash-alg': field(dump, 'Hash spec'),
    'cipher-alg': `${cipher}-${cipherBits}`,
    uuid: field(dump, 'UUID'),
    'cipher-mode': mode,
    slots,
    'payload-offset': payloadOffset,
    'master-key-iters': Number(field(dump, 'MK iterations')),
  };
  return {
    filename,
    format: 'luks',
    'virtual-size': Math.max(0, fileSize - payloadOffset),
    encrypted: true,
    'format-specific': { type: 'luks', data },
  } as ImageInfo;
}

export async function createCryptsetupAdapter(): Promise<Adapter & { version: string }> {
  const bin = which('cryptsetup');
  const version = bin ? await toolVersion('cryptsetup-bin', bin, ['--version'], /cryptsetup (\S+)/) : 'absent';
  const ops: Operation[] = ['info'];
  const notes: Record<string, string> = {};
  if (!bin) notes.luks = 'cryptsetup is not installed (Debian package cryptsetup-bin)';
  return {
    name: NAME,
    version,
    capabilities: { formats: bin ? { luks: ops } : {}, protocols: ['file'], notes, infoFields: { luks: INFO_FIELDS } },
    async info(image: ImageRef): Promise<ImageInfo> {
      const file = plainFile(NAME, image, ['luks']);
      const dump = await runTool(NAME, bin ?? 'cryptsetup', ['luksDump', '--', file], { timeout: 30_000 });
      return infoFromDump(dump, image.filename, statSync(file).size);
    },
    create: async () => refuse(NAME, 'create (luksFormat would need a block device or root, and qbc creates through qemu-img create)'),
    check: async () => refuse(NAME, 'check'),
    map: async () => refuse(NAME, 'map'),
    measure: async () => refuse(NAME, 'measure'),
    convert: async () => refuse(NAME, 'convert'),
    compare: async () => refuse(NAME, 'compare'),
    io: async () => refuse(NAME, 'read without the device-mapper (cryptsetup open)'),
    guestSha256: async () => refuse(NAME, 'read without the device-mapper (cryptsetup open)'),
  };
}
