/**
 * The contract between the suite and an implementation under test (IUT).
 *
 * An adapter is the only code that knows how to talk to one implementation. The
 * suite speaks in qemu-img's terms: formats, `-o` option text, qemu-img's JSON
 * outputs (info, check, map, measure). Every operation takes file paths and
 * returns data shaped like `qemu-img ... --output=json` prints it.
 *
 * Failure of an operation is an ImplError: the implementation refused (like a
 * non-zero exit of qemu-img), with the message the user would have seen.
 * A capability the implementation lacks is declared in `capabilities`, never
 * faked: the suite then reports the scenario as not applicable.
 */
import type { QemuImgCheck } from '../reference/types/output-check.js';
import type { ImageInfoEntry } from '../reference/types/output-info.js';
import type { MapEntryOutput } from '../reference/types/output-map.js';
import type { QemuImgMeasure } from '../reference/types/output-measure.js';

export type Operation =
  | 'create' | 'info' | 'check' | 'repair' | 'read' | 'write' | 'map' | 'measure'
  | 'convert' | 'compare' | 'snapshot' | 'resize' | 'amend' | 'rebase' | 'commit' | 'bitmap' | 'dd';

export interface Capabilities {
  /** format name -> operations supported for it */
  formats: Record<string, Operation[]>;
  /** protocol drivers the IUT can open ("file", "nbd", ...), "nbd-server" when it can export images (serveNbd), "filename-parse" when resolveFilename needs no opening */
  protocols: string[];
  /** why a format is missing, when "not implemented" would mislead (e.g. the adapter cannot pass secrets yet) */
  notes?: Record<string, string>;
  /**
   * format -> subformat -> the operations that work on images of that subformat, when they are
   * fewer than `formats` says (vpc dynamic vs fixed). Informational (reports, the matrix): the
   * steps judge by `formats`, so an operation that fails on one subformat is a failure to record.
   */
  subformats?: Record<string, Record<string, Operation[]>>;
  /**
   * format -> the fields of qemu-img info's JSON the implementation reports, when it reports
   * fewer than qemu-img does (a header dump prints what the header holds, no host size, no
   * dirty flag): top-level names ('virtual-size') and format-specific ones as
   * 'format-specific.<name>'. A step about a field left out is not applicable, and comparing
   * info with the oracle's covers only the fields listed. Absent: every field qemu-img prints.
   */
  infoFields?: Record<string, string[]>;
  /**
   * format -> which of qemu-io's write commands beyond a plain write (write -z: 'zero',
   * discard: 'discard') the implementation has, when `write` does not bring both: a step that
   * zeroes or discards is then not applicable. Absent: both, with `write`.
   */
  writeCommands?: Record<string, WriteCommand[]>;
  /**
   * false: the implementation opens an image only when told its format (a library for one
   * format has nothing to probe), so a scenario about recognising a format by its bytes is not
   * applicable. Absent or true: it probes, as qemu-img does without -f.
   */
  probes?: boolean;
  /**
   * file-system level: file system ("fat") -> what the implementation does with the files of
   * a disk image holding one (an MBR's first partition, or the whole image): `extract` (every
   * file and directory, extractFiles) and `check` (a consistency check, checkFilesystem). For
   * implementations that know file systems, not disk formats (mtools, fsck.fat).
   */
  files?: Record<string, FileOperation[]>;
}

export type FileOperation = 'extract' | 'check';

/** The guest write commands a `write` capability may lack (Capabilities.writeCommands). */
export type WriteCommand = 'zero' | 'discard';

/** A file-system check's answer: clean or not, and what the checker printed. */
export interface FilesystemCheck {
  clean: boolean;
  output: string;
}

/** An implementation refused or failed; `message` is what its user would read. */
export class ImplError extends Error {
  constructor(message: string, readonly exitCode: number = 1, readonly impl = '') {
    super(message);
    this.name = 'ImplError';
  }
}

/**
 * A secret object, as `--object secret,id=ID,data=...|file=...[,format=base64]` gives qemu-img one.
 * `data` is the secret itself: an adapter must never put it on a command line, in a message or
 * in a report (the qemu adapter writes it to a private file and passes `file=`).
 */
export interface SecretObject {
  id: string;
  data?: string;
  file?: string;
  format?: 'raw' | 'base64';
}

export interface ImageRef {
  filename: string;
  /** -f; omitted means probe */
  format?: string;
  /** --image-opts: `filename` is a dotted option list (driver=qcow2,file.filename=...); format must be absent */
  imageOpts?: boolean;
  /** the secret objects this image needs (qemu-img --object) */
  secrets?: SecretObject[];
  /**
   * open with this secret as the image's key: luks `key-secret=ID`, qcow/qcow2 `encrypt.key-secret=ID`
   * (qemu-img takes it in --image-opts or json: form; info needs none)
   */
  keySecret?: string;
  /** -U / --force-share: open sharing every permission with other users (image locking); read-only opens only */
  forceShare?: boolean;
  /**
   * the working directory of the process that opens the image (default: the image's own
   * directory). It matters only for relative names recorded inside the image that an
   * implementation resolves against its working directory (qemu 7.2's data_file); an
   * in-process implementation that resolves them against the image's directory may ignore it.
   */
  cwd?: string;
}

export interface CreateRequest {
  format: string;
  filename: string;
  /** bytes; may be omitted when a backing file gives the size */
  size?: number;
  /** `-o` text exactly as a user types it, e.g. "cluster_size=4096,lazy_refcounts=on" */
  options?: string;
  backingFile?: string;
  backingFormat?: string;
  /** secret objects the -o text names (key-secret=ID, encrypt.key-secret=ID) */
  secrets?: SecretObject[];
}

/** qemu-io style guest I/O: what qemu-io -c "write -P 0xab 0 64k" etc. do. */
/** What a successful io() may report besides success: warnings, without their "warning: " prefix. */
export interface IoOutcome {
  warnings: string[];
}

export type IoCommand =
  | { op: 'write'; offset: number; length: number; pattern: number }
  /** write `length` bytes taken from the start of a host file (qemu-io write -s FILE) */
  | { op: 'write-file'; offset: number; length: number; file: string }
  | { op: 'zero'; offset: number; length: number; unmap?: boolean }
  | { op: 'discard'; offset: number; length: number }
  /** read and verify every byte equals pattern (qemu-io read -P); pattern -1 only reads */
  | { op: 'read'; offset: number; length: number; pattern: number }
  /**
   * The writer dies here without closing the image (qemu-io's abort). A command
   * list containing it runs with cache=writethrough: every request's metadata
   * reaches the file except what lazy_refcounts defers, as after a host crash.
   */
  | { op: 'crash' };

export interface ConvertRequest {
  source: ImageRef;
  /** with imageOpts (--target-image-opts) the filename is an option list naming the format, and noCreate must be set */
  target: ImageRef & { format: string };
  /** -o for the target */
  options?: string;
  /** -c */
  compress?: boolean;
  /** -n: target exists already */
  noCreate?: boolean;
  /** -B: backing file of the target */
  backingFile?: string;
  backingFormat?: string;
  /** --bitmaps: copy the source's persistent bitmaps; --skip-broken-bitmaps: leave out inconsistent ones */
  bitmaps?: boolean;
  skipBrokenBitmaps?: boolean;
}

export interface MeasureRequest {
  outputFormat: string;
  options?: string;
  /** either a size (bytes) or a source image */
  size?: number;
  source?: ImageRef;
}

// Output shapes come from the JSON Schemas (schemas/output/*.json), the single source.
/** qemu-img info --output=json (one image; backing chain nested as `backing-image`) */
export type ImageInfo = ImageInfoEntry & { [key: string]: unknown };

/** qemu-img check --output=json (zero counters absent, as qemu-img omits them), plus its exit status: 0 clean, 2 corruptions, 3 leaks, 63 no check */
export type CheckResult = Omit<QemuImgCheck, 'filename' | 'format'> & Partial<Pick<QemuImgCheck, 'filename' | 'format'>> & { exitCode: number };

/** one entry of qemu-img map --output=json */
export type MapEntry = MapEntryOutput;

/** qemu-img measure --output=json */
export type MeasureResult = QemuImgMeasure;

/** qemu-img bitmap: the operations in order on one bitmap (`granularity` is -g as typed, with add only). */
export interface BitmapRequest {
  name: string;
  actions: Array<'add' | 'remove' | 'clear' | 'enable' | 'disable' | 'merge'>;
  granularity?: string;
  /** --merge SOURCE: the source bitmap (with 'merge' in actions) */
  merge?: string;
  /** -b FILE [-F FMT]: the image holding the merge source (default: the image itself) */
  mergeFrom?: ImageRef;
}

/** qemu-img dd [-f FMT] [-O FMT] if=SOURCE of=TARGET [bs=] [count=] [skip=] */
export interface DdRequest {
  source: ImageRef;
  /** the output image (created by dd); `format` is -O (raw without) */
  target: { filename: string; format?: string };
  /** further operands exactly as typed, e.g. ["bs=64k", "count=3"] */
  operands?: string[];
}

/** qemu-img snapshot: -l lists, -c NAME creates, -a NAME (or ID) applies, -d NAME deletes. */
export interface SnapshotRequest {
  action: 'list' | 'create' | 'apply' | 'delete';
  /** the snapshot's name (apply also takes an ID); not for list */
  name?: string;
}

/** What qemu-nbd is asked to export: a unix socket or a loopback TCP port, and its options. */
export interface NbdServeRequest {
  socket?: string;
  /** on 127.0.0.1 */
  port?: number;
  /** -x; omitted: the default export "" */
  exportName?: string;
  readOnly?: boolean;
  /** -e / --shared */
  shared?: number;
  /** -t / --persistent (default true: the suite stops servers itself) */
  persistent?: boolean;
}

/**
 * What an implementation makes of a filename: the blockdev options it resolves
 * to, as far as it shows them. An implementation that parses filenames without
 * opening them declares the protocol capability 'filename-parse' and shows every
 * option; one that must open the image (qemu-img) shows what its output reveals
 * (the image: line, the address a connection failed to reach) and lists those
 * option paths in `shown`.
 */
export interface ResolvedFilename {
  /**
   * nested as -blockdev takes them: {"driver": "nbd", "server": {"type": "inet", ...}, "export": ...}.
   * A plain name or URI without a format (no -f, not json:, not --image-opts) gives the protocol
   * node's options: its format is only probed when it is opened.
   */
  options: Record<string, unknown>;
  /** dotted option paths the implementation showed (e.g. "server.host"); 'all' when it shows every option */
  shown: 'all' | string[];
  /** where the options were read from, for reports */
  source: string;
  /**
   * 'protocol': `options` are those of the protocol node at the bottom of the file chain only
   * (what a connection failure reveals), so "file.server.host" of a format-on-top request is
   * "server.host" here.
   */
  node?: 'protocol';
}

export interface ResolveFilenameRequest {
  /** qemu-img -f */
  format?: string;
  /** --image-opts */
  imageOpts?: boolean;
  /** environment variables the implementation reads (LIBISCSI_CHAP_USERNAME, ...) */
  env?: Record<string, string>;
}

/**
 * An image one user of the implementation keeps open (qemu-io waiting for its
 * next command), with the image locks that open takes; release() closes it
 * (and ends exactly that process, by PID, where there is one).
 */
export interface HeldImage {
  pid?: number;
  release(): Promise<void>;
}

/** A running NBD server; stop() ends exactly that process (by PID) and waits for it. */
export interface NbdExportHandle {
  pid: number;
  stop(): Promise<void>;
}

export interface Adapter {
  readonly name: string;
  /** the implementation's version as its users name it (e.g. "qemu-img 7.2.22", "dmg2img 1.6.7-1"), for reports and the matrix */
  readonly version?: string;
  readonly capabilities: Capabilities;
  create(req: CreateRequest): Promise<void>;
  info(image: ImageRef, opts?: { backingChain?: boolean }): Promise<ImageInfo>;
  check(image: ImageRef, opts?: { repair?: 'leaks' | 'all' }): Promise<CheckResult>;
  map(image: ImageRef): Promise<MapEntry[]>;
  measure(req: MeasureRequest): Promise<MeasureResult>;
  convert(req: ConvertRequest): Promise<void>;
  /** true when both images show the same guest bytes (qemu-img compare exit 0) */
  compare(a: ImageRef, b: ImageRef): Promise<{ identical: boolean; message: string }>;
  /**
   * Runs the commands in order in one open of the image; a failed read -P verification rejects.
   * May resolve to the warnings the implementation printed (qemu-io's "warning: ..." lines).
   */
  io(image: ImageRef, commands: IoCommand[]): Promise<void | IoOutcome>;
  /** sha256 (hex) of the whole guest-visible disk content */
  guestSha256(image: ImageRef): Promise<string>;
  /** qemu-img resize [--shrink] [--preallocation=MODE] FILE SIZE; size "1G", "+64M" or "-1M". Needs capability 'resize'. */
  resize?(image: ImageRef, req: { size: string; shrink?: boolean; preallocation?: string }): Promise<void>;
  /** qemu-img rebase [-u] -b BACKING [-F FMT] FILE (backingFile "" removes it). Needs capability 'rebase'. */
  rebase?(image: ImageRef, req: { backingFile: string; backingFormat?: string; unsafe?: boolean }): Promise<void>;
  /** qemu-img amend -o OPTIONS FILE. Needs capability 'amend'. */
  amend?(image: ImageRef, req: { options: string }): Promise<void>;
  /**
   * qemu-img snapshot -l | -c NAME | -a NAME | -d NAME FILE; resolves to what qemu-img printed
   * (the -l table, or "" for the others). Needs capability 'snapshot'.
   */
  snapshot?(image: ImageRef, req: SnapshotRequest): Promise<string>;
  /** qemu-img bitmap --add [-g G] | --remove | --clear | --enable | --disable ... FILE NAME. Needs capability 'bitmap'. */
  bitmap?(image: ImageRef, req: BitmapRequest): Promise<void>;
  /** qemu-img dd: copy (part of) the source into a new image. Needs capability 'dd' for the source's format. */
  dd?(req: DdRequest): Promise<void>;
  /** qemu-img commit [-d] [-b BASE] FILE. Needs capability 'commit'. */
  commit?(image: ImageRef, req: { base?: string; keep?: boolean }): Promise<void>;
  /**
   * The blockdev options a filename (or, with imageOpts, a dotted option list) resolves to; an
   * ImplError when the implementation refuses the filename. With protocol capability 'filename-parse'
   * it works for every protocol; otherwise for the protocols it declares.
   */
  resolveFilename?(filename: string, req?: ResolveFilenameRequest): Promise<ResolvedFilename>;
  /**
   * Open the image as qemu-io does (read-write, or read-only with `write: false`; -U with
   * image.forceShare) and keep it open until release(); an ImplError when the open is refused.
   * Needs protocol capability 'locking' (the implementation takes QEMU's image locks).
   */
  holdOpen?(image: ImageRef, req: { write: boolean }): Promise<HeldImage>;
  /** qemu-nbd's job: export the image until stop(). Needs protocol 'nbd-server'. */
  serveNbd?(image: ImageRef, req: NbdServeRequest): Promise<NbdExportHandle>;
  /**
   * The same implementation with every operation bounded to `ms` (a process is killed, the
   * call rejects with an ImplError saying so). The hostile-image steps use it: a small image
   * with a damaged header must be answered quickly, and waiting out the general timeout on
   * each implementation that loops would cost minutes. Adapters that run in-process and bound
   * their own work need not offer it.
   */
  bounded?(ms: number): Adapter;
  /** capability files[fs] 'extract': copies every file and directory of the image's file system into `dir` (which exists, empty) */
  extractFiles?(image: ImageRef, dir: string): Promise<void>;
  /** capability files[fs] 'check': checks the image's file system without changing the image */
  checkFilesystem?(image: ImageRef): Promise<FilesystemCheck>;
  /** release anything the adapter holds (nothing for CLI-based ones) */
  dispose?(): Promise<void>;
}

/** Capability check shared by every adapter: returns null or the reason it is missing. */
export function missingCapability(adapter: Adapter, format: string, op: Operation): string | null {
  const ops = adapter.capabilities.formats[format];
  const note = adapter.capabilities.notes?.[format];
  if (!ops) return note ? `${adapter.name}: ${format}: ${note}` : `${adapter.name} does not implement the ${format} format`;
  if (!ops.includes(op)) return `${adapter.name} does not implement ${op} for ${format}`;
  return null;
}

/** Null when the adapter reports `field` of qemu-img info for `format` (Capabilities.infoFields), else the reason. */
export function missingInfoField(adapter: Adapter, format: string, field: string): string | null {
  const fields = adapter.capabilities.infoFields?.[format];
  if (!fields || fields.includes(field)) return null;
  return `${adapter.name} does not report "${field}" in the info of a ${format} image`;
}

/** Null when the adapter has the write command for `format` (write capability, then Capabilities.writeCommands), else the reason. */
export function missingWriteCommand(adapter: Adapter, format: string, command: WriteCommand): string | null {
  const missing = missingCapability(adapter, format, 'write');
  if (missing) return missing;
  const commands = adapter.capabilities.writeCommands?.[format];
  if (!commands || commands.includes(command)) return null;
  return `${adapter.name} has no ${command === 'zero' ? 'write of zeroes (write -z)' : 'discard'} for ${format}`;
}
