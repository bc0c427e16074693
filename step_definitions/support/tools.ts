/** Whether an external tool named in `@requires:<tool>` can be run here. */
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

const known = new Map<string, boolean>();

export async function toolAvailable(tool: string): Promise<boolean> {
  const cached = known.get(tool);
  if (cached !== undefined) return cached;
  let found = false;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      await access(join(dir, tool), constants.X_OK);
      found = true;
      break;
    } catch {
      // not in this directory
    }
  }
  known.set(tool, found);
  return found;
}
