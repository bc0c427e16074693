/**
 * What qemu-img's own output reveals of the options a filename resolved to,
 * for implementations with qemu-img's command line (real QEMU, or qbc img):
 * `qemu-img info --output=json NAME` either opens the image, and its
 * `filename` (the image: line) is a json:{...} of the options or a plain name,
 * or fails, and a failure to connect names the address QEMU tried
 * ("Failed to connect to '127.0.0.1:1'", gluster's "volume V, path P ... failed
 * on host H and port P"). Nothing here parses a filename itself: every option
 * reported was printed by the implementation. Any other failure is the
 * implementation refusing the filename.
 */
import { ImplError, type ResolvedFilename } from './adapter.js';

/** dotted paths of every leaf of a nested object */
function leaves(v: unknown, prefix = ''): string[] {
  if (v === null || typeof v !== 'object') return [prefix];
  const out: string[] = [];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out.push(...leaves(x, prefix ? `${prefix}.${k}` : k));
  return out;
}

function address(text: string): Record<string, string> {
  // "/path" is a unix socket; "HOST:PORT" an inet address, the port after the last ':' (IPv6 hosts keep theirs)
  const colon = text.lastIndexOf(':');
  if (text.startsWith('/') || colon < 0) return { type: 'unix', path: text };
  // qemu prints an IPv6 host bare ('::1:1'), qbc img in brackets ('[::1]:1')
  return { type: 'inet', host: text.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: text.slice(colon + 1) };
}

export interface InfoRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * `layered`: the request gave a format layer (json:, --image-opts, -f); without
 * one, the options asked about are the protocol node's, under the probed format.
 * `protocols`: the implementation's protocol drivers, to tell a protocol on top.
 */
export function resolvedFromInfo(run: InfoRun, layered: boolean, impl: string, protocols: readonly string[] = []): ResolvedFilename {
  if (run.exitCode === 0) {
    let info: { filename?: string; format?: string };
    try {
      info = JSON.parse(run.stdout) as { filename?: string; format?: string };
    } catch {
      throw new ImplError(`info output is not JSON: ${run.stdout.slice(0, 200)}`, 1, impl);
    }
    const shown = String(info.filename ?? '');
    if (shown.startsWith('json:')) {
      let tree = JSON.parse(shown.slice(5)) as Record<string, unknown>;
      if (!layered && tree.file && typeof tree.file === 'object' && tree.driver === info.format) tree = tree.file as Record<string, unknown>;
      return { options: tree, shown: leaves(tree), source: 'the json: name on its image: line' };
    }
    // a plain name: the protocol node's filename (URIs say nothing more without parsing them)
    if (shown.includes('://')) return { options: {}, shown: [], source: `its image: line ${shown}, a URI` };
    // qemu-img names a protocol opened without a format layer as the format ("file format: file")
    const topIsProtocol = protocols.includes(String(info.format));
    const options: Record<string, unknown> = layered && !topIsProtocol ? { driver: info.format, file: { filename: shown } } : layered ? { driver: info.format, filename: shown } : { filename: shown };
    return { options, shown: leaves(options), source: 'the plain name on its image: line' };
  }
  const msg = (run.stderr.trim() || run.stdout.trim()).split('\n');
  // warnings ("rdma feature is not supported") come before the error line
  const first = msg.find((l) => / Could not open '/.test(l)) ?? msg[0] ?? '';
  const body = first.replace(/^[^:]*: Could not open '.*?': /, '');
  const all = msg.join('\n');
  let m = /^Failed to connect to '(.*)': /.exec(body);
  if (m) {
    const server = address(m[1]!);
    return { options: { server }, shown: leaves({ server }), source: `the address of its connection failure: ${body}`, node: 'protocol' };
  }
  m = /^address resolution failed for (.*): /.exec(body);
  if (m) {
    const server = address(m[1]!);
    return { options: { server }, shown: leaves({ server }), source: `the address it failed to resolve: ${body}`, node: 'protocol' };
  }
  m = /^Gluster connection for volume (.*), path (.*) failed to connect/.exec(body);
  if (m) {
    const server: Record<string, string>[] = [];
    for (const h of all.matchAll(/failed on (?:host (\S+) and port (\S+)|socket (\S+))/g)) {
      server.push(h[3] !== undefined ? { type: 'unix', path: h[3] } : { type: 'inet', host: h[1]!, port: h[2]! });
    }
    const options = { volume: m[1]!, path: m[2]!, server };
    return { options, shown: leaves(options), source: `its gluster connection failure: ${all}`, node: 'protocol' };
  }
  // opened as far as the device or the network: the filename was accepted, but nothing of it is shown
  if (/^Failed to open \/dev\/vfio\/vfio|^iSCSI: Failed to connect to LUN|^Unable to set VVFAT to 'rw' when drive is read-only/.test(body)) {
    return { options: {}, shown: [], source: `an open that failed past parsing: ${body}` };
  }
  throw new ImplError(all || `exit status ${run.exitCode}`, run.exitCode || 1, impl);
}
