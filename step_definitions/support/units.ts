/** Sizes as scenarios write them: "64 MiB", "512 bytes", "1 byte", "0". */
const UNITS: Record<string, number> = { byte: 1, bytes: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, PiB: 2 ** 50 };

export function parseSize(text: string): number {
  const m = /^(\d+)(?: (\w+))?$/.exec(text.trim());
  if (!m) throw new Error(`not a size: "${text}"`);
  const unit = m[2] ?? 'bytes';
  const factor = UNITS[unit];
  if (factor === undefined) throw new Error(`unknown size unit "${unit}" in "${text}"`);
  return Number(m[1]) * factor;
}

export function describeSize(n: number): string {
  for (const [unit, f] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (n >= f && n % f === 0) return `${n / f} ${unit}`;
  }
  return `${n} bytes`;
}
