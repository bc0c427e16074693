/**
 * Reads the suite's feature files with cucumber's own Gherkin parser, so tags and
 * scenario names (outline rows expanded) are exactly what a run would see.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateMessages } from '@cucumber/gherkin';
import { IdGenerator, SourceMediaType } from '@cucumber/messages';
import { repoPath, repoRelative } from './paths.js';

export interface PlannedScenario {
  /** `<feature path> :: <pickle name>` */
  scenario: string;
  feature: string;
  name: string;
  /** with '@'; feature, rule and examples tags included */
  tags: string[];
  line: number;
}

export interface FeatureScan {
  scenarios: PlannedScenario[];
  errors: string[];
  files: string[];
}

export function listFeatureFiles(dir = repoPath('features')): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.feature'))
    .map((f) => join(dir, f))
    .sort();
}

export function scanFeatures(files = listFeatureFiles()): FeatureScan {
  const scenarios: PlannedScenario[] = [];
  const errors: string[] = [];
  const newId = IdGenerator.incrementing();
  for (const file of files) {
    const feature = repoRelative(file);
    const envelopes = generateMessages(readFileSync(file, 'utf8'), feature, SourceMediaType.TEXT_X_CUCUMBER_GHERKIN_PLAIN, {
      includeSource: false,
      includeGherkinDocument: false,
      includePickles: true,
      newId,
    });
    for (const e of envelopes) {
      if (e.parseError) errors.push(`${feature}: ${e.parseError.message}`);
      if (e.pickle) {
        scenarios.push({
          scenario: `${feature} :: ${e.pickle.name}`,
          feature,
          name: e.pickle.name,
          tags: e.pickle.tags.map((t) => t.name),
          line: e.pickle.location?.line ?? 0,
        });
      }
    }
  }
  return { scenarios, errors, files: files.map((f) => repoRelative(f)) };
}
