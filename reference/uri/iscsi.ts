/**
 * iSCSI URLs: iscsi://[USER[%PASSWORD]@]HOST[:PORT]/TARGET-IQN/LUN (and iser://
 * for the iSER transport). QEMU hands the text to libiscsi's
 * iscsi_parse_full_url and keeps what it returns: transport, portal (HOST[:PORT]
 * as written; libiscsi adds port 3260 when connecting), target (percent-decoded),
 * lun, and user/password only when both are non-empty. CHAP credentials may
 * instead come from LIBISCSI_CHAP_USERNAME / LIBISCSI_CHAP_PASSWORD, as the
 * manual says. No node name exists for iSCSI, so qemu-img shows json:{...}.
 *
 * The reference is stricter than libiscsi where libiscsi takes nonsense
 * silently (an empty host, a port above 65535, an empty target, a negative
 * LUN) and where qemu 7.2 crashes (?header_digest=... dereferences a missing
 * context): those are refused with the reason.
 */
import { syntaxError, type FilenameSyntax } from './syntax.js';
import type { QDict } from '../options/qdict.js';

export const ISCSI_DEFAULT_PORT = 3260;
/** what QEMU logs in as when neither -iscsi initiator-name nor a VM name/UUID is given (qemu-img) */
export const ISCSI_DEFAULT_INITIATOR = 'iqn.2008-11.org.linux-kvm';
const SYNTAX = 'iscsi://[<username>[%<password>]@]<host>[:<port>]/<target-iqn>/<lun>';

function bad(filename: string, why: string, option: string) {
  return syntaxError(`Failed to parse URL : ${filename} (${why}; iSCSI URL must be of the form: ${SYNTAX})`, option, filename);
}

/** libiscsi's iscsi_decode_url_string: %XX to a byte, no check of the digits. */
function decodeTarget(s: string): string {
  const h2i = (c: string) => (c >= 'a' && c <= 'f' ? c.charCodeAt(0) - 87 : c >= 'A' && c <= 'F' ? c.charCodeAt(0) - 55 : c.charCodeAt(0) - 48);
  const bytes: number[] = [];
  const src = Buffer.from(s, 'utf8');
  for (let i = 0; i < src.length; i++) {
    if (src[i] !== 0x25) {
      bytes.push(src[i]!);
      continue;
    }
    if (i + 2 >= src.length) {
      // a '%' with fewer than two characters after it ends the decoding; the rest stays as written
      bytes.push(...src.subarray(i));
      break;
    }
    bytes.push(((h2i(String.fromCharCode(src[i + 1]!)) << 4) | h2i(String.fromCharCode(src[i + 2]!))) & 0xff);
    i += 2;
  }
  return Buffer.from(bytes).toString('utf8');
}

export const iscsiSyntax: FilenameSyntax = {
  driver: 'iscsi',
  prefixes: ['iscsi', 'iser'],
  strong: ['transport', 'portal', 'target', 'user', 'password', 'password-secret', 'lun', 'initiator-name', 'header-digest'],

  parse(filename, given) {
    let rest: string;
    let iser = false;
    if (filename.startsWith('iscsi://')) rest = filename.slice(8);
    else if (filename.startsWith('iser://')) {
      rest = filename.slice(7);
      iser = true;
    } else throw bad(filename, "the URL must start with 'iscsi://' or 'iser://'", 'filename');
    let user = process.env.LIBISCSI_CHAP_USERNAME;
    let passwd = process.env.LIBISCSI_CHAP_PASSWORD;
    const q = rest.indexOf('?');
    if (q >= 0) {
      for (const piece of rest.slice(q + 1).split('&')) {
        if (!piece) continue;
        const eq = piece.indexOf('=');
        const key = eq < 0 ? piece : piece.slice(0, eq);
        const value = eq < 0 ? null : piece.slice(eq + 1);
        if (key === 'header_digest') {
          if (value !== 'crc32c' && value !== 'none') throw bad(filename, `Invalid URL argument for header_digest: ${value ?? '(none)'}`, 'header-digest');
          // libiscsi would apply it to a context QEMU does not pass (7.2 crashes); as an option it is header-digest
          throw bad(filename, 'header_digest in the URL is not supported; use the header-digest option', 'header-digest');
        }
        if (key === 'iser') iser = true;
      }
      rest = rest.slice(0, q);
    }
    let portal = rest;
    const at = portal.indexOf('@');
    if (at >= 0) {
      let u = portal.slice(0, at);
      portal = portal.slice(at + 1);
      let sep = u.indexOf('%');
      if (sep < 0) sep = u.indexOf(':');
      if (sep >= 0) {
        passwd = u.slice(sep + 1);
        u = u.slice(0, sep);
      }
      user = u;
    }
    const slash = portal.indexOf('/');
    if (slash < 0) throw bad(filename, "Could not parse '<target-iqn>'", 'target');
    let target = portal.slice(slash + 1);
    portal = portal.slice(0, slash);
    if (target === '') throw bad(filename, 'Could not parse <target-iqn>', 'target');
    const ls = target.indexOf('/');
    if (ls < 0) throw bad(filename, 'Could not parse <lun>', 'lun');
    const lunText = target.slice(ls + 1);
    target = target.slice(0, ls);
    if (!/^[+-]?[0-9]+$/.test(lunText)) throw bad(filename, `Could not parse <lun> '${lunText}'`, 'lun');
    // Stricter than libiscsi, which takes these and fails only when connecting:
    if (portal === '' || portal.startsWith(':')) throw bad(filename, 'missing <host>', 'portal');
    const pm = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(portal)!;
    if (pm[2] !== undefined && (!/^[0-9]{1,5}$/.test(pm[2]) || Number(pm[2]) > 65535 || Number(pm[2]) === 0)) {
      throw bad(filename, `port '${pm[2]}' is not a number from 1 to 65535`, 'port');
    }
    if (target === '') throw bad(filename, 'Could not parse <target-iqn>: it is empty', 'target');
    const lun = Number(lunText);
    if (lun < 0 || lun > 0x7fffffff) throw bad(filename, `<lun> ${lunText} is not from 0 to 2147483647`, 'lun');
    const out: QDict = {
      transport: iser ? 'iser' : 'tcp',
      portal,
      target: decodeTarget(target),
      lun: String(lun),
    };
    // -iscsi user/password would take precedence; qemu-img has no -iscsi, so the URL's (or the environment's) apply
    if (user && passwd && !('user' in given)) {
      out.user = user;
      out.password = passwd;
    }
    return out;
  },
};
