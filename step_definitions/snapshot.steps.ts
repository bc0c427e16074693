/**
 * qcow2 internal snapshots (qemu-img snapshot -l|-c|-a|-d), in the suite's words:
 * taken, applied and deleted by the implementation under test or by the oracle,
 * listed by info and by the -l table.
 */
import assert from 'node:assert/strict';
import { Given, Then, When } from '@cucumber/cucumber';
import type { Adapter, SnapshotRequest } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { sha256File } from '../adapters/qemu.js';
import { assertRefusalNaming, attempt } from './support/errors.js';
import { toolAvailable } from './support/tools.js';
import { makeBaseImage } from './support/hostile-qcow2.js';
import { execa } from 'execa';
import { readField, writeAt } from './support/qcow2-header.js';

function snapshotCapable(world: QbcWorld, adapter: Adapter): 'skipped' | null {
  const img = world.image();
  const skip = world.needs(img.format, 'snapshot', adapter);
  if (skip) return skip;
  if (!adapter.snapshot) return world.notApplicable(`${adapter.name} has no snapshot operation`);
  return null;
}

async function run(world: QbcWorld, adapter: Adapter, req: SnapshotRequest): Promise<'skipped' | string> {
  const skip = snapshotCapable(world, adapter);
  if (skip) return skip;
  return adapter.snapshot!(world.image(), req);
}

function oracleOf(world: QbcWorld): Adapter | 'skipped' {
  return world.oracle ?? world.notApplicable('no oracle configured');
}

const ACTION: Record<string, SnapshotRequest['action']> = { creating: 'create', applying: 'apply', deleting: 'delete' };

// ---- the implementation under test --------------------------------------------------

Given('snapshot {string} is created', async function (this: QbcWorld, name: string) {
  const r = await run(this, this.iut, { action: 'create', name });
  return r === 'skipped' ? r : undefined;
});

When('snapshot {string} is applied', async function (this: QbcWorld, name: string) {
  const r = await run(this, this.iut, { action: 'apply', name });
  return r === 'skipped' ? r : undefined;
});

When('snapshot {string} is deleted', async function (this: QbcWorld, name: string) {
  const r = await run(this, this.iut, { action: 'delete', name });
  return r === 'skipped' ? r : undefined;
});

When(/^(creating|applying|deleting) snapshot "([^"]*)" is attempted$/, async function (this: QbcWorld, verb: string, name: string) {
  const skip = snapshotCapable(this, this.iut);
  if (skip) return skip;
  this.lastError = await attempt(() => this.iut.snapshot!(this.image(), { action: ACTION[verb], name }));
  return undefined;
});

Then('the snapshot operation fails naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('the snapshot operation', this.lastError, [word]);
});

// ---- the oracle -------------------------------------------------------------------------

When(/^the oracle (creates|applies|deletes) snapshot "([^"]*)"$/, async function (this: QbcWorld, verb: string, name: string) {
  const oracle = oracleOf(this);
  if (oracle === 'skipped') return oracle;
  const action = ({ creates: 'create', applies: 'apply', deletes: 'delete' } as const)[verb as 'creates'];
  const r = await run(this, oracle, { action, name });
  return r === 'skipped' ? r : undefined;
});

Then('the oracle reads {size} at offset {size} as pattern {pattern}', async function (this: QbcWorld, length: number, offset: number, pattern: number) {
  const oracle = oracleOf(this);
  if (oracle === 'skipped') return oracle;
  const skip = this.needs(this.image().format, 'read', oracle);
  if (skip) return skip;
  await oracle.io(this.image(), [{ op: 'read', offset, length, pattern }]);
  return undefined;
});

// ---- lists ------------------------------------------------------------------------------

/** "1 first, 2 second" -> [["1","first"],["2","second"]]; "no" -> [] */
function expected(text: string): Array<[string, string]> {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const [id, ...name] = s.split(/\s+/);
    return [id, name.join(' ')];
  });
}

async function infoSnapshots(world: QbcWorld, adapter: Adapter): Promise<Array<[string, string]> | 'skipped'> {
  const skip = world.needs(world.image().format, 'info', adapter);
  if (skip) return skip;
  const info = await adapter.info(world.image());
  const list = (info.snapshots ?? []) as Array<{ id: string; name: string; 'vm-state-size': number; 'date-sec': number }>;
  return list.map((s) => [s.id, s.name]);
}

Then('the image info lists the snapshots {string}', async function (this: QbcWorld, text: string) {
  const got = await infoSnapshots(this, this.iut);
  if (got === 'skipped') return got;
  assert.deepEqual(got, expected(text), `${this.iut.name} info lists other snapshots`);
  return undefined;
});

Then('the image info lists no snapshots', async function (this: QbcWorld) {
  const got = await infoSnapshots(this, this.iut);
  if (got === 'skipped') return got;
  assert.deepEqual(got, [], `${this.iut.name} info still lists snapshots`);
  return undefined;
});

Then('the oracle lists the snapshots {string}', async function (this: QbcWorld, text: string) {
  const oracle = oracleOf(this);
  if (oracle === 'skipped') return oracle;
  const got = await infoSnapshots(this, oracle);
  if (got === 'skipped') return got;
  assert.deepEqual(got, expected(text), `${oracle.name} info lists other snapshots`);
  return undefined;
});

/**
 * qemu-img 7.2's -l table: a title, a header of fixed columns, then per snapshot
 * the ID (9 wide), the tag (16 wide), the VM state size, the local date, the VM
 * clock and the instruction count, right-aligned in their columns.
 */
Then('the snapshot list shows the snapshots {string}', async function (this: QbcWorld, text: string) {
  const table = await run(this, this.iut, { action: 'list' });
  if (table === 'skipped') return table;
  const info = await this.iut.info(this.image());
  const lines = table.split('\n');
  assert.equal(lines[0], 'Snapshot list:', `the table's title:\n${table}`);
  assert.equal(lines[1], 'ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT', `the table's header:\n${table}`);
  const want = expected(text);
  assert.equal(lines.length - 2, want.length, `the table lists ${lines.length - 2} snapshots:\n${table}`);
  const byId = new Map(((info.snapshots ?? []) as Array<{ id: string; 'date-sec': number }>).map((s) => [s.id, s]));
  want.forEach(([id, name], k) => {
    const line = lines[k + 2];
    const d = new Date(byId.get(id)!['date-sec'] * 1000);
    const two = (n: number) => (n < 10 ? `0${n}` : `${n}`);
    const date = [d.getFullYear(), two(d.getMonth() + 1), two(d.getDate())].join('-') + ' ' + [d.getHours(), d.getMinutes(), d.getSeconds()].map(two).join(':');
    // columns: 0-8 id, 9 space, 10-25 tag, 26 space, 27-34 size, 35-54 date, 55-67 clock, 68-78 icount
    assert.equal(line.slice(0, 9).trimEnd(), id, `ID column of: ${line}`);
    assert.equal(line.slice(10, 26).trimEnd(), name, `TAG column of: ${line}`);
    assert.equal(line.slice(27, 35), '     0 B', `VM SIZE column of: ${line}`);
    assert.equal(line.slice(35, 55), ` ${date}`, `DATE column of: ${line}`);
    assert.equal(line.slice(55, 68), ' 00:00:00.000', `VM CLOCK column of: ${line}`);
    assert.equal(line.slice(68), '          0', `ICOUNT column of: ${line}`);
  });
  return undefined;
});

// ---- a snapshot table entry that cannot be right -------------------------------------------

/** A qemu-img-made image with snapshot "s1", its entry's l1_size then set to 2^31 (beyond QEMU's 32 MiB L1 limit). */
Given('a qcow2 image with a snapshot whose L1 table is too large', async function (this: QbcWorld) {
  if (!(await toolAvailable('qemu-img'))) return this.notApplicable('qemu-img is needed to make the image that is then damaged');
  const img = this.declare('image', 'qcow2');
  await makeBaseImage('qemu-img', img.filename, 4 * 2 ** 20);
  await execa('qemu-img', ['snapshot', '-c', 's1', img.filename], { timeout: 60_000, stdin: 'ignore' });
  const table = Number(await readField(img.filename, 'snapshots_offset'));
  const v = Buffer.alloc(4);
  v.writeUInt32BE(2 ** 31);
  await writeAt(img.filename, table + 8, v);
  this.sha256Before = await sha256File(img.filename);
  return undefined;
});
