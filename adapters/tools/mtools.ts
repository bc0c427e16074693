/**
 * mtools and dosfstools' fsck.fat as a third-party FAT implementation. They know file systems,
 * not disk formats, so the adapter declares no format operation: only the file-level
 * capability `files.fat` — extract (mcopy -s of the whole volume) and check (fsck.fat -n). A
 * disk image is a raw file holding a FAT volume, behind an MBR (its first partition) or not
 * (a floppy); the adapter finds the volume as mtools needs it told (`-i IMAGE@@OFFSET`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { ImplError, type Adapter, type FilesystemCheck, type ImageRef } from '../adapter.js';
import { absent, plainFile, refuse, runTool, toolVersion, which, withTemp } from './common.js';
import { volumeOffset } from './fat-volume.js';

const NAME = 'mtools';

export async function createMtoolsAdapter(): Promise<Adapter & { version: string }> {
  const mcopy = which('mcopy');
  const fsck = which('fsck.fat');
  const missing = [!mcopy && 'mcopy (Debian package mtools)', !fsck && 'fsck.fat (Debian package dosfstools)'].filter(Boolean);
  const version = missing.length ? 'absent' : `${await toolVersion('mtools')}, ${await toolVersion('dosfstools')}`;
  const capabilities = missing.length
    ? { ...absent([], ''), notes: { fat: `not installed: ${missing.join(', ')}` } }
    : { formats: {}, protocols: ['file'], files: { fat: ['extract' as const, 'check' as const] }, notes: { fat: 'mtools and fsck.fat read FAT volumes in raw images: files out (mcopy -s) and a check (fsck.fat -n); no disk-format operations' } };
  const no = (op: string) => async (): Promise<never> => refuse(NAME, `${op}: it works on FAT file systems, not disk images`);
  // raw only: mtools reads the bytes of a file, so an image of any other format is not its input
  const file = (image: ImageRef) => plainFile(NAME, image, ['raw']);
  return {
    name: NAME,
    version,
    capabilities,
    create: no('create'), info: no('info'), check: no('check'), map: no('map'), measure: no('measure'),
    convert: no('convert'), compare: no('compare'), io: no('io'), guestSha256: no('guest reads'),
    async extractFiles(image: ImageRef, dir: string): Promise<void> {
      const f = file(image);
      // MTOOLS_SKIP_CHECK: a volume the scenario damaged on purpose is still read, as far as it goes
      const r = await execa(mcopy!, ['-s', '-n', '-p', '-m', '-i', `${f}@@${volumeOffset(f)}`, '::*', dir], {
        reject: false, timeout: 120_000, all: true, env: { LC_ALL: 'C', MTOOLS_SKIP_CHECK: '1', MTOOLS_NO_VFAT: '' },
      });
      // an empty volume has nothing for ::* to match: that is no failure
      if (r.exitCode !== 0 && !/not found/i.test(String(r.all))) throw new ImplError(`mcopy: ${String(r.all).trim().split('\n').slice(-3).join(' / ')}`, r.exitCode ?? 1, NAME);
    },
    async checkFilesystem(image: ImageRef): Promise<FilesystemCheck> {
      const f = file(image);
      const off = volumeOffset(f);
      const run = async (vol: string): Promise<FilesystemCheck> => {
        // -n: report only, never write; exit 0 is a clean volume, 1 a volume with errors
        const r = await execa(fsck!, ['-n', vol], { reject: false, timeout: 120_000, all: true, env: { LC_ALL: 'C' } });
        if (r.exitCode !== 0 && r.exitCode !== 1) throw new ImplError(`fsck.fat -n: ${String(r.all).trim().split('\n').slice(-3).join(' / ')}`, r.exitCode ?? 2, NAME);
        return { clean: r.exitCode === 0, output: String(r.all ?? '') };
      };
      if (off === 0) return run(f);
      // fsck.fat takes a volume, not a partitioned disk: check a sparse copy of the partition
      return withTemp(NAME, async (tmp) => {
        const vol = join(tmp, 'volume');
        await runTool(NAME, 'dd', [`if=${f}`, `of=${vol}`, 'bs=1M', 'iflag=skip_bytes', `skip=${off}`, 'conv=sparse', 'status=none'], { timeout: 120_000 });
        if (!existsSync(vol)) throw new ImplError('dd wrote no volume copy', 1, NAME);
        return run(vol);
      });
    },
  };
}
