/** Hostile dmg images: a valid UDIF file from the fixture writer, damaged in code. */
import type { ReadonlyDefect } from './readonly-images.js';

export const dmgDefects: Record<string, ReadonlyDefect> = {};
