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

export function pidsMax(limit: number): string {
  return limit > 0 ? num(limit) : limit === 0 ? "1" : "max";
}

export const pids: Controller = {
  name: "pids",
  setting: P,
  // runtime-spec 1.3 (runc >= 1.4, opencontainers/cgroups): a limit that is there is applied, v1 and v2
  // alike: > 0 as it is, 0 as "1" (pids.max "0" is what systemd's TasksMax cannot say, so runc writes the
  // same in both drivers: only the init then fits), < 0 as "max". No limit (no pids object, or one without
  // "limit") leaves pids.max alone.
  needed: (r) => r.pids?.limit !== undefined,
  apply: (w, r) => w.write(P, "pids.max", pidsMax(r.pids!.limit!)),
  stats: (loc, s) => {
    s.pids = stats(loc);
  },
};
