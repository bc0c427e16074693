#!/usr/bin/env node
// A git merge driver for the suite's JSON registries (spec items, corpus recipes and
// manifest, expectations): lists of objects keyed by one field. Branches that each add
// entries merge without conflict; an entry changed on both sides to different values is
// a real conflict and the merge stops (exit 1) naming it.
//
//   git config merge.jsonunion.driver 'node scripts/json-union-merge.mjs %O %A %B'
//   .gitattributes: <file> merge=jsonunion
import { readFileSync, writeFileSync } from 'node:fs';

const [basePath, oursPath, theirsPath] = process.argv.slice(2);
const read = (p) => {
  const text = readFileSync(p, 'utf8');
  return text.trim() === '' ? null : JSON.parse(text);
};
const KEYS = ['id', 'scenario'];

/** The list of keyed objects in a document, and how to put it back. */
function listOf(doc) {
  if (Array.isArray(doc)) return { list: doc, put: (l) => l };
  for (const field of ['entries', 'recipes', 'items']) {
    if (doc && Array.isArray(doc[field])) return { list: doc[field], put: (l) => ({ ...doc, [field]: l }) };
  }
  throw new Error('no keyed list (entries, recipes or items) in the document');
}
const keyOf = (o) => { for (const k of KEYS) if (o && typeof o[k] === 'string') return `${k}:${o[k]}`; throw new Error(`entry without id/scenario: ${JSON.stringify(o).slice(0, 80)}`); };
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

try {
  const base = read(basePath), ours = read(oursPath), theirs = read(theirsPath);
  const b = base ? new Map(listOf(base).list.map((o) => [keyOf(o), o])) : new Map();
  const o = listOf(ours), t = listOf(theirs);
  const tm = new Map(t.list.map((x) => [keyOf(x), x]));
  const om = new Map(o.list.map((x) => [keyOf(x), x]));
  const out = [];
  const conflicts = [];
  const pick = (k, ov, tv) => {
    const bv = b.get(k);
    if (ov && tv) {
      if (same(ov, tv)) return ov;
      if (bv && same(bv, ov)) return tv;
      if (bv && same(bv, tv)) return ov;
      conflicts.push(k);
      return ov;
    }
    const only = ov ?? tv;
    // Deleted on one side, untouched on the other: stays deleted.
    if (bv && same(bv, only)) return undefined;
    return only;
  };
  for (const x of o.list) { const k = keyOf(x); const v = pick(k, x, tm.get(k)); if (v) out.push(v); }
  for (const x of t.list) { const k = keyOf(x); if (om.has(k)) continue; const v = pick(k, undefined, x); if (v) out.push(v); }
  // Top-level fields other than the list: ours unless only theirs changed them.
  let merged = o.put(out);
  if (!Array.isArray(ours)) {
    for (const f of Object.keys(theirs)) {
      if (f === 'entries' || f === 'recipes' || f === 'items') continue;
      if (base && same(base[f], ours[f]) && !same(ours[f], theirs[f])) merged[f] = theirs[f];
    }
  }
  writeFileSync(oursPath, JSON.stringify(merged, null, 2) + '\n');
  if (conflicts.length) {
    console.error(`json-union-merge: changed differently on both sides: ${conflicts.join(', ')}`);
    process.exit(1);
  }
} catch (e) {
  console.error(`json-union-merge: ${e.message}`);
  process.exit(2);
}
