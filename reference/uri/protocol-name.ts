/** QEMU's test for a protocol prefix: a ':' before any '/' (path_has_protocol). */
export function pathHasProtocol(path: string): boolean {
  const m = /[:/]/.exec(path);
  return m !== null && m[0] === ':';
}

/** The protocol name of a filename that has one: the text before the first ':', cut at 127 bytes as QEMU's buffer is. */
export function protocolName(path: string): string {
  const name = path.slice(0, path.indexOf(':'));
  return Buffer.byteLength(name) > 127 ? Buffer.from(name).subarray(0, 127).toString('utf8') : name;
}
