/**
 * Normalised qemu-img outputs, so that a manifest recorded in one directory
 * compares equal to outputs obtained anywhere else: file names become names
 * relative to the image's own directory, actual-size (a host allocation
 * detail) is dropped, everything else is kept as qemu-img printed it.
 */
import { basename, dirname, isAbsolute, relative, resolve } from 'node:path';
import type { CheckResult, ImageInfo, MapEntry } from '../../adapters/adapter.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function relToImage(imagePath: string, name: string): string {
  const dir = dirname(resolve(imagePath));
  return relative(dir, isAbsolute(name) ? name : resolve(dir, name));
}

export function normaliseInfo(info: ImageInfo, imagePath: string): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(info)) {
    if (k === 'actual-size' || v === undefined) continue;
    if (k === 'filename' && typeof v === 'string') out[k] = basename(v);
    // qemu prints this one resolved (absolute when the image path was), so express it like the recorded name
    else if (k === 'full-backing-filename' && typeof v === 'string') out[k] = relToImage(imagePath, v);
    // vmdk lists its extent files as opened (with the image's directory): keep their base names
    else if (k === 'format-specific' && typeof v === 'object' && v !== null && Array.isArray((v as { data?: { extents?: unknown } }).data?.extents)) {
      const fs = v as { type: string; data: Record<string, Json> & { extents: Record<string, Json>[] } };
      out[k] = { ...fs, data: { ...fs.data, extents: fs.data.extents.map((e) => (typeof e.filename === 'string' ? { ...e, filename: basename(e.filename) } : e)) } } as unknown as Json;
    } else if (k === 'backing-image' && typeof v === 'object' && v !== null) {
      const b = v as ImageInfo;
      out[k] = normaliseInfo(b, typeof b.filename === 'string' ? resolve(dirname(resolve(imagePath)), b.filename) : imagePath);
    } else out[k] = v as Json;
  }
  return out;
}

export function normaliseMap(map: MapEntry[]): Record<string, Json>[] {
  return map.map((e) => {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(e)) {
      if (v === undefined) continue;
      // qemu-img map names the file only in its human output; keep a basename if an IUT adds one
      out[k] = k === 'filename' && typeof v === 'string' ? basename(v) : (v as Json);
    }
    return out;
  });
}

/** null for formats without a check (qemu-img exit 63). */
export function normaliseCheck(check: CheckResult): Record<string, Json> | null {
  if (check.exitCode === 63) return null;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(check)) {
    // the exit status follows from the counters (0 clean, 1 check errors, 2 corruptions, 3 leaks)
    if (v === undefined || k === 'exitCode') continue;
    out[k] = k === 'filename' && typeof v === 'string' ? basename(v) : (v as Json);
  }
  return out;
}

/** Differences between a recorded and an observed value, as JSON paths. */
export function diffJson(expected: Json | undefined, actual: Json | undefined, path = '$', out: string[] = [], limit = 8): string[] {
  if (out.length >= limit) return out;
  const show = (v: Json | undefined): string => (v === undefined ? 'absent' : JSON.stringify(v));
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) out.push(`${path}: length ${expected.length} recorded, ${actual.length} observed`);
    const n = Math.min(expected.length, actual.length);
    for (let i = 0; i < n && out.length < limit; i++) diffJson(expected[i], actual[i], `${path}[${i}]`, out, limit);
    return out;
  }
  const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(expected) && isObj(actual)) {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
    for (const k of keys) diffJson(expected[k], actual[k], `${path}.${k}`, out, limit);
    return out;
  }
  if (expected !== actual) out.push(`${path}: ${show(expected)} recorded, ${show(actual)} observed`);
  return out;
}

/** The exit status qemu-img check gives for a result: 1 check errors, 2 corruptions, 3 leaks, else 0. */
export function checkExitCode(check: Record<string, Json>): number {
  if (Number(check['check-errors'] ?? 0) > 0) return 1;
  if (Number(check.corruptions ?? 0) > 0) return 2;
  if (Number(check.leaks ?? 0) > 0) return 3;
  return 0;
}
