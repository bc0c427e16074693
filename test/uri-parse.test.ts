// Filenames to blockdev options and back: the grammar of every protocol, the option each
// refusal names, the json:{...} names qemu-img shows, QEMU's JSON dialect, the blockdev schemas.
// Expected values are what qemu-img 7.2 printed for the same text (image: lines, errors), or,
// where it needs a server to show them, what QEMU's source makes of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import AjvModule from 'ajv';
import { BlockError } from '../reference/errors.js';
import { blockdevOptions, displayName, parseFilename } from '../reference/uri/index.js';
import { drivers } from '../reference/uri/drivers.js';
import { parseQemuJson } from '../reference/options/json.js';
import { formatDouble, qdictOrder, toQemuJson } from '../reference/options/qdict.js';
import { parseUri, queryParams } from '../reference/uri/rfc3986.js';
import { resolveBacking } from '../reference/graph/open.js';
import { getValidator, schemasDir } from '../reference/options/schemas.js';
import { localUser } from '../reference/uri/ssh.js';

const Ajv = AjvModule.default;

function refused(name: string, option: string, includes: string, opts: { imageOpts?: boolean } = {}): void {
  assert.throws(
    () => parseFilename(name, opts),
    (e: unknown) => {
      assert.ok(e instanceof BlockError, `${name}: expected a BlockError, got ${String(e)}`);
      assert.equal(e.option, option, `${name}: names option ${e.option}, not ${option} (${e.message})`);
      assert.ok(e.message.includes(includes), `${name}: "${e.message}" should include "${includes}"`);
      return true;
    },
  );
}

/** the protocol node's options of a plain name */
function proto(name: string): Record<string, unknown> {
  const s = parseFilename(name);
  return blockdevOptions(s.driver === null ? s.children.file! : s);
}

test('NBD: URIs and the older syntax to server and export; the shown name is the URI with the port', () => {
  assert.deepEqual(proto('nbd://h/e'), { driver: 'nbd', export: 'e', server: { type: 'inet', host: 'h', port: '10809' } });
  assert.deepEqual(proto('nbd+unix:///e?socket=/s'), { driver: 'nbd', export: 'e', server: { type: 'unix', path: '/s' } });
  assert.deepEqual(proto('nbd:[::1]:7:exportname=a:b'), { driver: 'nbd', export: 'a:b', server: { type: 'inet', host: '::1', port: '7' } });
  assert.equal(displayName(parseFilename('nbd:unix:/s'), 'raw'), 'nbd+unix://?socket=/s');
  assert.equal(displayName(parseFilename('nbd:h:1:exportname=x'), 'raw'), 'nbd://h:1/x');
  assert.equal(displayName(parseFilename('nbd://h'), 'qcow2'), 'nbd://h:10809');
  refused('nbd://h:65536/x', 'port', 'No valid URL specified');
  refused('nbd://h:/x', 'port', 'No valid URL specified');
  refused('nbd+unix:///x', 'socket', 'No valid URL specified');
  refused('nbd+unix:///x?socket', 'socket', 'socket has no value');
  refused('nbd:///x', 'host', 'No valid URL specified');
  refused('nbd:h', 'host', "error parsing address 'h'");
  refused('nbd:', 'server', 'NBD server address missing');
});

test('iSCSI: libiscsi\'s URL grammar, CHAP from the URL or the environment, json: as the shown name', () => {
  assert.deepEqual(proto('iscsi://u%p@10.0.0.1:3261/iqn.x%3ay/3'), {
    driver: 'iscsi', transport: 'tcp', portal: '10.0.0.1:3261', target: 'iqn.x:y', lun: 3, user: 'u', password: 'p',
  });
  process.env.LIBISCSI_CHAP_USERNAME = 'eu';
  process.env.LIBISCSI_CHAP_PASSWORD = 'ep';
  try {
    assert.equal(proto('iscsi://h/t/1').user, 'eu');
    assert.equal(proto('iscsi://me@h/t/1').password, 'ep');
  } finally {
    delete process.env.LIBISCSI_CHAP_USERNAME;
    delete process.env.LIBISCSI_CHAP_PASSWORD;
  }
  // as qemu-img 7.2 printed them for a tgtd target on loopback
  assert.equal(
    displayName(parseFilename('iscsi://127.0.0.1:13261/iqn.2026-12.org.qbc%3auri/1'), 'raw'),
    'json:{"driver": "raw", "file": {"lun": "1", "portal": "127.0.0.1:13261", "driver": "iscsi", "transport": "tcp", "target": "iqn.2026-12.org.qbc:uri"}}',
  );
  assert.equal(
    displayName(parseFilename('iscsi://me%secret@127.0.0.1:13261/iqn.2026-12.org.qbc:uri/1'), 'raw'),
    'json:{"driver": "raw", "file": {"lun": "1", "portal": "127.0.0.1:13261", "driver": "iscsi", "transport": "tcp", "user": "me", "password": "secret", "target": "iqn.2026-12.org.qbc:uri"}}',
  );
  refused('iscsi://h/t', 'lun', 'Failed to parse URL');
  refused('iscsi://h', 'target', 'Failed to parse URL');
  refused('iscsi://h:99999/t/1', 'port', 'is not a number from 1 to 65535');
  refused('iscsi:///t/1', 'portal', 'missing <host>');
  refused('iscsi://h/t/-1', 'lun', 'is not from 0 to');
});

test('gluster: the URI as shown, the -blockdev form with one server; the json: server list', () => {
  assert.deepEqual(proto('gluster+unix:///v/d/a.img?socket=/g.sock'), { driver: 'gluster', volume: 'v', path: 'd/a.img', server: [{ type: 'unix', path: '/g.sock' }] });
  assert.deepEqual(proto('gluster:v/a'), { driver: 'gluster', volume: 'v', path: 'a', server: [{ type: 'inet', host: 'localhost', port: '24007' }] });
  assert.equal(displayName(parseFilename('gluster://h/v/a.img'), 'raw'), 'gluster://h/v/a.img');
  const j = blockdevOptions(parseFilename('json:{"driver":"gluster","volume":"v","path":"p","server":[{"type":"tcp","host":"h","port":1},{"type":"unix","socket":"/s"}]}'));
  assert.deepEqual(j.server, [{ type: 'inet', host: 'h', port: '1' }, { type: 'unix', path: '/s' }]);
  refused('gluster://h/v', 'path', 'invalid URI gluster://h/v');
  refused('gluster+unix://h/v/p?socket=/s', 'server', 'invalid URI');
  refused('json:{"driver":"gluster","volume":"v","path":"p","server":[{"type":"x"}]}', 'server.0.type', "Parameter 'type' may be 'inet' or 'unix'");
});

test('ssh: user, server, path, host_key_check; the shown name fills in the local user and port 22', () => {
  assert.deepEqual(proto('ssh://me@h:2/p?host_key_check=no'), { driver: 'ssh', user: 'me', server: { host: 'h', port: '2' }, path: '/p', 'host-key-check': { mode: 'none' } });
  assert.equal(displayName(parseFilename('ssh://h/p'), 'raw'), `ssh://${localUser()}@h:22/p`);
  assert.equal(displayName(parseFilename('ssh://u@h/p?host_key_check=yes'), 'raw'), 'ssh://u@h:22/p?host_key_check=yes');
  const sha256 = 'ab'.repeat(32);
  assert.equal((proto(`ssh://h/p?host_key_check=sha256:${sha256}`)['host-key-check'] as { type: string }).type, 'sha256');
  refused('ssh://h/p?host_key_check=md5:zz', 'host_key_check', 'is not a md5 fingerprint');
  refused('ssh://h/p?host_key_check=sha1:' + 'ab'.repeat(16), 'host_key_check', 'expected 20 bytes');
  refused('ssh://h/p?host_key_check=maybe', 'host_key_check', 'unknown host_key_check setting (maybe)');
  refused('ssh:///p', 'host', 'missing hostname in URI');
  refused('ssh://h', 'path', 'missing remote path in URI');
});

test('nvme, sheepdog, fat: and null-co parse as their drivers did', () => {
  assert.deepEqual(proto('nvme://0000:06:0d.0/3'), { driver: 'nvme', device: '0000:06:0d.0', namespace: 3 });
  assert.equal(displayName(parseFilename('nvme://0000:06:0d.0/3'), 'raw'), 'nvme://0000:06:0d.0/3');
  refused('nvme://0000:06:0d.0/x', 'namespace', "Invalid namespace 'x'");
  refused('nvme://0000:06:0d.0/0', 'namespace', 'numbered from 1');
  assert.deepEqual(proto('sheepdog:h:7001:vdi:tag'), { driver: 'sheepdog', server: { type: 'inet', host: 'h', port: '7001' }, vdi: 'vdi', tag: 'tag' });
  refused('sheepdog:///', 'vdi', 'missing file path in URI');
  assert.deepEqual(proto('fat:rw:c:/dir'), { driver: 'vvfat', dir: 'c:/dir', 'fat-type': 0, floppy: false, rw: true });
  assert.deepEqual(proto('fat:'), { driver: 'vvfat', dir: '', 'fat-type': 0, floppy: false, rw: false });
  refused('driver=vvfat,dir=/d,label=ABCDEFGHIJKL', 'label', 'cannot be longer than 11 bytes', { imageOpts: true });
  refused('null-co://x', 'filename', "only allowed filename for this driver is 'null-co://'");
});

test('plain names: protocol prefixes, file: stripped, host devices by their type', () => {
  assert.deepEqual(proto('a/b:c'), { driver: 'file', filename: 'a/b:c' });
  assert.deepEqual(proto('file:a:b'), { driver: 'file', filename: './a:b' });
  assert.deepEqual(proto('/dev/null'), { driver: 'host_device', filename: '/dev/null' });
  refused('a:b', 'filename', "Unknown protocol 'a'");
  refused('x'.repeat(200) + ':y', 'filename', `Unknown protocol '${'x'.repeat(127)}'`);
  assert.equal(resolveBacking('/d/top.qcow2', 'base.qcow2'), '/d/base.qcow2');
  assert.equal(resolveBacking('/d/top.qcow2', 'nbd://h/x'), 'nbd://h/x');
  assert.equal(resolveBacking('/d/top.qcow2', 'json:{"file.filename":"x"}'), 'json:{"file.filename":"x"}');
});

test('shown names: QDict key order, qemu\'s JSON escapes and doubles', () => {
  // the orders qemu-img 7.2 printed
  assert.deepEqual(qdictOrder(['driver', 'file', 'offset', 'size']), ['offset', 'driver', 'size', 'file']);
  assert.deepEqual(qdictOrder(['driver', 'dir', 'fat-type', 'floppy', 'rw']), ['fat-type', 'dir', 'driver', 'floppy', 'rw']);
  assert.equal(toQemuJson({ filename: '/t/q"é\\x.img' }), '{"filename": "/t/q\\"\\u00E9\\\\x.img"}');
  assert.equal(toQemuJson({ a: '😀' }), '{"a": "\\uD83D\\uDE00"}');
  assert.equal(formatDouble(0.1), '0.10000000000000001');
  assert.equal(formatDouble(1e20), '1e+20');
  assert.equal(formatDouble(1.5), '1.5');
  assert.equal(displayName(parseFilename('driver=raw,offset=512,file.filename=a', { imageOpts: true })), 'json:{"offset": "512", "driver": "raw", "file": {"driver": "file", "filename": "a"}}');
  assert.equal(displayName(parseFilename('json:{"driver":"qcow2","file":{"driver":"file","filename":"a","locking":"off"}}')), 'a');
  assert.equal(displayName(parseFilename('json:{"driver":"raw","file":{"driver":"qcow2","file":{"filename":"a"}}}')), 'json:{"driver": "raw", "file": {"driver": "qcow2", "file": {"driver": "file", "filename": "a"}}}');
  const long = displayName(parseFilename(`json:{"driver":"raw","offset":0,"file":{"driver":"file","filename":"${'x'.repeat(5000)}"}}`));
  assert.equal(long.length, 4095);
  assert.ok(long.endsWith('...'));
});

test("QEMU's JSON dialect: depth 1024, single quotes, surrogates, integers", () => {
  assert.doesNotThrow(() => parseQemuJson(`{"a":${'['.repeat(1023)}${']'.repeat(1023)}}`));
  assert.throws(() => parseQemuJson(`{"a":${'['.repeat(1024)}${']'.repeat(1024)}}`), /JSON nesting depth limit exceeded/);
  assert.deepEqual(parseQemuJson("{'a':'b\\'c', \"d\": \"\\ud83d\\ude00\"}"), { a: "b'c", d: '😀' });
  assert.deepEqual(parseQemuJson('[-0, 18446744073709551615, 99999999999999999999999, 1e400]'), [0, 18446744073709551615n, 1e23, Infinity]);
  assert.deepEqual(parseQemuJson('{"__proto__": 1}'), JSON.parse('{"__proto__": 1}'));
  assert.throws(() => parseQemuJson('{"a":"\t"}'), /stray/);
});

test('RFC 3986 as util/uri.c: ports, pct-escapes, query pieces', () => {
  assert.equal(parseUri('x://h:65535/p')?.port, 65535);
  assert.equal(parseUri('x://h:65536/p'), null);
  assert.equal(parseUri('x://[::1]z/p'), null);
  assert.equal(parseUri('x://h/a%2Fb')?.path, '/a/b');
  assert.equal(parseUri('x://h/a%zz'), null);
  // after the last '&', ';' separates too
  assert.deepEqual(queryParams('a=1&&b&=c;d=2'), [{ name: 'a', value: '1' }, { name: 'b', value: null }, { name: 'd', value: '2' }]);
  assert.deepEqual(queryParams('a=1;b=2'), [{ name: 'a', value: '1' }, { name: 'b', value: '2' }]);
});

test('blockdev schemas: valid draft-07, one per driver with a syntax, and the options every parse returns conform', () => {
  const meta = new Ajv({ strict: false });
  for (const dir of ['blockdev', 'create', 'output', '.']) {
    for (const f of readdirSync(join(schemasDir, dir)).filter((n) => n.endsWith('.json'))) {
      const schema = JSON.parse(readFileSync(join(schemasDir, dir, f), 'utf8')) as object;
      assert.ok(meta.validateSchema(schema), `${dir}/${f}: ${JSON.stringify(meta.errors)}`);
    }
  }
  for (const [name, d] of drivers) {
    if (!d.syntax && d.protocol) continue;
    const s = JSON.parse(readFileSync(join(schemasDir, 'blockdev', `${name}.json`), 'utf8')) as Record<string, unknown>;
    assert.equal(s['x-driver'], name);
    assert.equal(s['x-kind'], d.protocol ? 'protocol' : 'format');
  }
  for (const name of ['nbd://h/e', 'nbd:unix:/s', 'iscsi://u%p@h/t/1', 'gluster://h/v/p', 'ssh://u@h/p?host_key_check=no', 'nvme://0000:00:01.0/1', 'sheepdog:///v#t', 'fat:floppy:/d', 'null-co://', '/x/y.img']) {
    const o = proto(name) as { driver: string };
    const v = getValidator(`blockdev/${o.driver}`);
    assert.ok(v(o), `${name}: ${JSON.stringify(v.errors)}`);
  }
});
