/**
 * Third-party implementations qbc has adapters for, by the name `--impl` takes. Each entry
 * names the compiled module (relative to dist/adapters/) and its async factory. A factory
 * never throws because its implementation is missing: it returns an adapter whose
 * capabilities are empty, with the reason in `notes`, so every scenario is not applicable.
 */
export interface ThirdPartyEntry {
  module: string;
  factory: string;
  /** one line for `qbc run --help` and the README */
  summary: string;
}

export const THIRD_PARTY_ADAPTERS: Record<string, ThirdPartyEntry> = {
  libyal: { module: './libyal.js', factory: 'createLibyalAdapter', summary: "libyal's qcow/vmdk/vhdi readers (Debian Python bindings)" },
  vhd: { module: './npm-vhd.js', factory: 'createVhdAdapter', summary: 'npm vhd 0.5.0 (VHD read, fixed-image write)' },
  udif: { module: './npm-udif.js', factory: 'createUdifAdapter', summary: '@balena/udif 1.1.2 (DMG read)' },
  'xo-qcow2': { module: './npm-xo-qcow2.js', factory: 'createXoQcow2Adapter', summary: '@xen-orchestra/qcow2 1.3.1 (qcow2 read, qcow2 stream write)' },
  'vhd-lib': { module: './npm-vhd-lib.js', factory: 'createVhdLibAdapter', summary: "Xen Orchestra's vhd-lib 0.7.2 (VHD read and write of dynamic images)" },
  dmg2img: { module: './tools/dmg2img.js', factory: 'createDmg2imgAdapter', summary: 'dmg2img (DMG read, through its conversion to raw)' },
  cloop: { module: './tools/cloop.js', factory: 'createCloopAdapter', summary: "cloop-utils' extract_compressed_fs (cloop read)" },
  bximage: { module: './tools/bximage.js', factory: 'createBximageAdapter', summary: 'bximage 2.7 (raw/bochs/vpc/vmdk read and convert)' },
  cryptsetup: { module: './tools/cryptsetup.js', factory: 'createCryptsetupAdapter', summary: 'cryptsetup (LUKS1 header info from luksDump)' },
  nbdkit: { module: './tools/nbdkit.js', factory: 'createNbdkitAdapter', summary: 'nbdkit + nbdcopy (raw and LUKS1 read over NBD)' },
  mtools: { module: './tools/mtools.js', factory: 'createMtoolsAdapter', summary: 'mtools + fsck.fat (the files of FAT volumes: extract and check)' },
  // (one line per third-party adapter, above this comment)
};

export function isThirdParty(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(THIRD_PARTY_ADAPTERS, name);
}
