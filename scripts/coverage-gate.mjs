#!/usr/bin/env node
// coverage-gate SUMMARY DIR MIN: line coverage of the files under DIR (from c8's
// json-summary) must be at least MIN percent. Prints the figure either way.
import { readFileSync } from 'node:fs';

const [summaryPath, dir, min] = process.argv.slice(2);
let summary;
try {
  summary = JSON.parse(readFileSync(summaryPath, 'utf8'));
} catch (e) {
  console.error(`coverage-gate: cannot read ${summaryPath}: ${e.message}`);
  process.exit(1);
}
let covered = 0;
let total = 0;
for (const [file, s] of Object.entries(summary)) {
  if (file === 'total' || !file.includes(`/${dir}/`)) continue;
  covered += s.lines.covered;
  total += s.lines.total;
}
if (total === 0) {
  console.error(`coverage-gate: no files under ${dir} in ${summaryPath}`);
  process.exit(1);
}
const pct = (100 * covered) / total;
console.log(`line coverage of ${dir}: ${pct.toFixed(1)}% (${covered}/${total}), minimum ${min}%`);
process.exit(pct >= Number(min) ? 0 : 1);
