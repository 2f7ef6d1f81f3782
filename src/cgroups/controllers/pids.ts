// pids: linux.resources.pids.limit -> pids.max (v1 and v2 alike), and the pid count statistics.
import * as fs from "fs";
import type { Controller, Location } from "../controller";
import { nz } from "../controller";
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
  // pids.limit 0 is "unset" (runc with runtime-spec 1.2; runc >= 1.4 maps it to 1 for spec 1.3)
  needed: (r) => nz(r.pids?.limit),
  apply: (w, r) => w.write(P, "pids.max", r.pids!.limit > 0 ? num(r.pids!.limit) : "max"),
  stats: (loc, s) => {
    s.pids = stats(loc);
  },
};
