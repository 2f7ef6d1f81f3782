// For src/state/store.ts, which reads "paused" from the freezer by a record's dirs: the manager's isFrozen.
// (Kept until store.ts builds the manager itself: CgroupManager.fromRecord(record.cgroup).isFrozen().)
import { CgroupManager } from "./manager";

export function isFrozen(dirs: Record<string, string>): boolean {
  return CgroupManager.fromRecord({ dirs, created: [] }).isFrozen();
}
