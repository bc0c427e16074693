/**
 * Warnings a driver prints while it works (QEMU's warn_report), such as the ssh
 * driver's "does not support fsync". Inside collectWarnings() they are gathered
 * for the caller (the in-process adapter hands them to the suite); elsewhere
 * (the CLI) they go to stderr as "warning: ...", as qemu-img prints them.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const sink = new AsyncLocalStorage<string[]>();

export function emitWarning(line: string): void {
  const list = sink.getStore();
  if (list) list.push(line);
  else process.stderr.write(`warning: ${line}\n`);
}

export async function collectWarnings<T>(fn: () => Promise<T>): Promise<{ result: T; warnings: string[] }> {
  const warnings: string[] = [];
  const result = await sink.run(warnings, fn);
  return { result, warnings };
}
