/**
 * The corpus mask that cuts a vmdk CID out of its descriptor, in the case a
 * rewrite leaves stale bytes: qemu's vmdk_write_cid rewrites the descriptor in
 * place, so a new CID two or more hex digits shorter than the old one leaves the
 * old text's last bytes between the new NUL and the old one. A file written
 * once (or by an implementation that clears the area) has zeroes there; the
 * mask must judge both alike, and still see any other difference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maskedSha256, zeroRewriteResidue } from '../runner/corpus/files.js';

const CID_MASK = { field: 'vmdk.descriptor.CID', regex: 'CID=[0-9a-f]{1,8}\n', cut: true };
const AREA = 512 + 20 * 512; // header sector, then the 20-sector descriptor area
const AT = 512;

function descriptor(cid: string): string {
  return `# Disk DescriptorFile\nversion=1\nCID=${cid}\nparentCID=ffffffff\ncreateType="monolithicSparse"\n\n` +
    '# Extent description\nRW 2048 SPARSE "x.vmdk"\n\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = "4"\n';
}

/** A file whose descriptor area holds `text` written into a zeroed area. */
function fresh(text: string): Buffer {
  const b = Buffer.alloc(AREA);
  b.write('KDMV', 0, 'latin1');
  b.write(text, AT, 'latin1');
  return b;
}

/** qemu's rewrite: the CID's digits and the rest of the text written over the old text, up to the new NUL only. */
function rewritten(old: Buffer, cid: string): Buffer {
  const b = Buffer.from(old);
  const text = b.toString('latin1', AT, b.indexOf(0, AT));
  const p = text.indexOf('CID=') + 4;
  const tail = text.slice(text.indexOf('parentCID'));
  const next = `${text.slice(0, p)}${cid}\n${tail}`;
  b.write(next + '\0', AT, 'latin1');
  return b;
}

async function sha(dir: string, name: string, b: Buffer): Promise<string> {
  const f = join(dir, name);
  await writeFile(f, b);
  return maskedSha256(f, [CID_MASK]);
}

test('a CID rewritten 2+ digits shorter leaves stale bytes the cut mask ignores', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qbc-cid-'));
  try {
    const before = fresh(descriptor('89abcdef'));
    for (const cid of ['5', '3c', 'a1b2c3', '1234567']) {
      const after = rewritten(before, cid);
      const end = after.indexOf(0, AT);
      const stale = 8 - cid.length - 1;
      // the case is really built: stale bytes (the old text's last ones) follow the new NUL
      if (stale === 0) assert.equal(after[end + 1], 0, `CID ${cid}: one digit shorter leaves no stale byte`);
      else assert.ok(after.subarray(end + 1, end + 1 + stale).every((x) => x !== 0), `CID ${cid}: stale bytes`);
      if (stale > 0) assert.equal(after.toString('latin1', end + 1, end + 1 + stale), after.toString('latin1', end - stale, end));
      const clean = fresh(descriptor('ffff'));
      assert.equal(await sha(dir, 'a.vmdk', after), await sha(dir, 'b.vmdk', clean), `rewritten to CID ${cid} vs written once`);
    }
    // several rewrites, each shorter: every residue run goes
    const twice = rewritten(rewritten(before, '1234'), '7');
    assert.equal(await sha(dir, 'a.vmdk', twice), await sha(dir, 'b.vmdk', fresh(descriptor('0'))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the cut mask still sees bytes after the text that are no residue', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qbc-cid-'));
  try {
    const after = rewritten(fresh(descriptor('89abcdef')), '5');
    const end = after.indexOf(0, AT);
    const other = Buffer.from(after);
    other[end + 2] ^= 0x01; // no longer the text's own suffix
    assert.notEqual(await sha(dir, 'a.vmdk', other), await sha(dir, 'b.vmdk', fresh(descriptor('ffff'))));
    const beyond = fresh(descriptor('ffff'));
    beyond[AREA - 3] = 0x41; // a byte far past the text
    assert.notEqual(await sha(dir, 'a.vmdk', beyond), await sha(dir, 'b.vmdk', fresh(descriptor('ffff'))));
    // the longest run taken for residue is bounded
    const long = fresh(descriptor('ffff'));
    const e = long.indexOf(0, AT);
    long.copy(long, e + 1, e - 40, e);
    zeroRewriteResidue(long, AT);
    assert.notEqual(long[e + 1], 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
