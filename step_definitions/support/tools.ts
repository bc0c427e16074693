/** Whether an external tool named in `@requires:<tool>` can be run here. */
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

const known = new Map<string, boolean>();

/** Requirements that are devices, not programs: @requires:vfio is a VFIO container to bind a PCI device to. */
const DEVICES: Record<string, string> = { vfio: '/dev/vfio/vfio' };

export async function toolAvailable(tool: string): Promise<boolean> {
  const cached = known.get(tool);
  if (cached !== undefined) return cached;
  let found = false;
  if (DEVICES[tool]) {
    found = await access(DEVICES[tool]!, constants.R_OK | constants.W_OK).then(() => true, () => false);
    known.set(tool, found);
    return found;
  }
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
