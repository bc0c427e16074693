/**
 * How a Then judges a failure: it must be a typed refusal (ImplError from an
 * adapter, BlockError from the reference), never a crash, and its message must
 * name what the user got wrong.
 */
import { ImplError } from '../../adapters/adapter.js';

/**
 * Lower case, with "_", "-" and "." read as spaces and camelCase split into words:
 * "lazy_refcounts" names "Lazy refcounts", and a library's "maxTableEntries" names
 * "max_table_entries".
 */
export function normalise(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().replace(/[_\-.]+/g, ' ').replace(/\s+/g, ' ');
}

export function names(message: string, word: string): boolean {
  return normalise(message).includes(normalise(word));
}

export function isTypedRefusal(err: unknown): err is Error {
  return err instanceof ImplError || (err instanceof Error && err.name === 'BlockError') || (err instanceof Error && err.name === 'ImplError');
}

/** Throws an assertion error unless `err` is a typed refusal naming every word. */
export function assertRefusalNaming(what: string, err: unknown, words: string[]): void {
  if (err === null || err === undefined) throw new Error(`${what} succeeded, but it should have failed naming ${words.map((w) => `"${w}"`).join(' and ')}`);
  if (!isTypedRefusal(err)) {
    throw new Error(`${what} crashed instead of refusing with a typed error: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  }
  const missing = words.filter((w) => !names(err.message, w));
  if (missing.length > 0) {
    throw new Error(`${what} failed, but its message does not name ${missing.map((w) => `"${w}"`).join(' and ')}:\n${err.message}`);
  }
}

/** Runs an action that a scenario allows to fail; returns the error or null. */
export async function attempt(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
    return null;
  } catch (err) {
    return err ?? new Error('rejected with no reason');
  }
}
