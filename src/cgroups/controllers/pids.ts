// pids: linux.resources.pids.limit -> pids.max (v1 and v2 alike), and the pid count statistics.
import * as fs from "fs";
import type { Controller, Location } from "../controller";
import { num, readCgroupFile, readUint, UINT64_MAX } from "../files";
import { nzBig, type Obj, optional } from "../stats";

const P = "linux.resources.pids.limit";

// Without pids.current, v2 counts cgroup.procs (runc's fs2); v1 reports nothing.
function stats(loc: Location | undefined): Obj {
  if (!loc || !fs.existsSync(loc.dir)) return {};
  const dir = loc.dir;
  const current = optional(() => readUint(dir, "pids.current"));
  if (current === undefined) {
    if (loc.version === 1) return {};
    const n = BigInt(readCgroupFile(dir, "cgroup.procs").split("\n").filter(Boolean).length);
    return { current: nzBig(n) };
  }
  const max = readUint(dir, "pids.max");
  return { current: nzBig(current), limit: nzBig(max === UINT64_MAX ? 0n : max) };
}

export const pids: Controller = {
  name: "pids",
  setting: P,
  // runc 1.4 (runtime-spec 1.3): a given limit is a limit, 0 included — written as 1 (systemd's TasksMax cannot
  // be 0, and the fs drivers match it); a negative one is "max"; only an absent one (update) leaves it alone.
  needed: (r) => r.pids?.limit !== undefined,
  apply: (w, r) => {
    const l = r.pids!.limit;
    w.write(P, "pids.max", l > 0 ? num(l) : l === 0 ? "1" : "max");
  },
  stats: (loc, s) => {
    s.pids = stats(loc);
  },
};
