/**
 * Encryption in the suite's words: secret objects, opening with the right and the wrong
 * passphrase, LUKS1 containers made by cryptsetup, and cryptsetup's judgement of the
 * headers an implementation writes.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { Given, Then, When } from '@cucumber/cucumber';
import { execa } from 'execa';
import type { SecretObject } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt } from './support/errors.js';

const TOOL_TIMEOUT = 60_000;

function addSecret(world: QbcWorld, s: SecretObject): void {
  world.secrets = [...world.secrets.filter((o) => o.id !== s.id), s];
  // images already made take the new definition too (the scenario redefines a secret to try another passphrase)
  for (const img of world.images.values()) if (img.secrets) img.secrets = [...world.secrets];
}

Given('a secret {string} holding the passphrase {string}', function (this: QbcWorld, id: string, pass: string) {
  addSecret(this, { id, data: pass });
});

Given('a secret {string} read from a file holding the passphrase {string}', async function (this: QbcWorld, id: string, pass: string) {
  const file = this.path(`secret-${id}`);
  await writeFile(file, pass, { mode: 0o600 });
  addSecret(this, { id, file });
});

Given('a secret {string} holding the passphrase {string} in base64', function (this: QbcWorld, id: string, pass: string) {
  addSecret(this, { id, data: Buffer.from(pass, 'utf8').toString('base64'), format: 'base64' });
});

/** A read of the first sector: it needs the key, so it is the open that matters. */
async function tryRead(world: QbcWorld, secrets: SecretObject[] | undefined, keySecret: string | undefined): Promise<'skipped' | undefined> {
  const img = world.image();
  const skip = world.needs(img.format, 'read');
  if (skip) return skip;
  world.lastError = await attempt(() => world.iut.io({ filename: img.filename, format: img.format, secrets, keySecret }, [{ op: 'read', offset: 0, length: 512, pattern: -1 }]));
  return undefined;
}

When('the image is read with the passphrase {string}', function (this: QbcWorld, pass: string) {
  const img = this.image();
  const id = img.keySecret ?? 'sec0';
  return tryRead(this, [{ id, data: pass }], id);
});

When('the image is read without a key secret', function (this: QbcWorld) {
  return tryRead(this, undefined, undefined);
});

When('the image is read with the key secret {string} that no object defines', function (this: QbcWorld, id: string) {
  return tryRead(this, this.secrets, id);
});

Then('opening fails naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('opening', this.lastError, [word]);
});

Then('the refusal does not show the passphrase {string}', function (this: QbcWorld, pass: string) {
  assert.ok(this.lastError instanceof Error, 'there is no refusal to look at');
  assert.ok(!this.lastError.message.includes(pass), `the message shows the passphrase: ${this.lastError.message}`);
});

Then('the image info does not show the passphrase {string}', async function (this: QbcWorld, pass: string) {
  const img = this.image();
  const skip = this.needs(img.format, 'info');
  if (skip) return skip;
  const text = JSON.stringify(await this.iut.info(img));
  assert.ok(!text.includes(pass), 'info shows the passphrase');
  return undefined;
});

async function cryptsetup(args: string[], input?: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa('cryptsetup', args, { reject: false, timeout: TOOL_TIMEOUT, input, env: { LC_ALL: 'C' } });
  if (r.timedOut) throw new Error(`cryptsetup ${args[0]} timed out`);
  return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * cryptsetup luksFormat on a plain file (no device mapper needed): LUKS1, a fixed, small
 * iteration count so the scenario stays fast, the payload after cryptsetup's 2 MiB alignment.
 */
Given('a {size} LUKS1 image made by cryptsetup with cipher {string} and the passphrase {string}', async function (this: QbcWorld, size: number, cipher: string, pass: string) {
  const img = this.declare('image', 'luks');
  const payload = 2 << 20;
  await writeFile(img.filename, Buffer.alloc(0));
  await execa('truncate', ['-s', String(payload + size), img.filename]);
  const keyFile = this.path('cryptsetup-key');
  await writeFile(keyFile, pass, { mode: 0o600 });
  const bits = /xts/.test(cipher) ? '512' : '256';
  const r = await cryptsetup(['luksFormat', '--batch-mode', '--type', 'luks1', '--cipher', cipher, '--key-size', bits, '--hash', 'sha256',
    '--pbkdf-force-iterations', '1000', '--align-payload', String(payload / 512), '--key-file', keyFile, img.filename]);
  assert.equal(r.exitCode, 0, `cryptsetup luksFormat failed: ${r.stderr}`);
  addSecret(this, { id: 'sec0', data: pass });
  img.secrets = [...this.secrets];
  img.keySecret = 'sec0';
});

Then('cryptsetup accepts the LUKS header', async function (this: QbcWorld) {
  const r = await cryptsetup(['luksDump', this.image().filename]);
  assert.equal(r.exitCode, 0, `cryptsetup luksDump refuses the header: ${r.stderr}`);
  assert.match(r.stdout, /Version:\s+1/, 'cryptsetup sees a LUKS1 header');
});

Then('cryptsetup unlocks a key slot with the passphrase {string}', async function (this: QbcWorld, pass: string) {
  const r = await cryptsetup(['open', '--test-passphrase', '--key-file', '-', this.image().filename], pass);
  assert.equal(r.exitCode, 0, `cryptsetup does not unlock the image with the passphrase: ${r.stderr}`);
});

Then('cryptsetup unlocks no key slot with the passphrase {string}', async function (this: QbcWorld, pass: string) {
  const r = await cryptsetup(['open', '--test-passphrase', '--key-file', '-', this.image().filename], pass);
  assert.notEqual(r.exitCode, 0, 'cryptsetup unlocked the image with a wrong passphrase');
});

Then('key slot {int} of the image is active with at least {int} iterations', async function (this: QbcWorld, slot: number, min: number) {
  const img = this.image();
  const skip = this.needs(img.format, 'info') ?? this.needsInfoField(img.format, 'format-specific.slots');
  if (skip) return skip;
  const data = (await this.iut.info(img))['format-specific']?.data as { slots?: Array<{ active: boolean; iters?: number }> } | undefined;
  const s = data?.slots?.[slot];
  assert.ok(s?.active, `key slot ${slot} is not active: ${JSON.stringify(data?.slots)}`);
  assert.ok((s.iters ?? 0) >= min, `key slot ${slot} has ${s.iters} iterations, fewer than ${min}`);
  return undefined;
});
