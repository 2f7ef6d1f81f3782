// runc's rootless cgroup manager (opencontainers/cgroups fs.go and fs2.go with Rootless set): when tsrun
// may not have access to the cgroup tree (a non-root user, root in a user namespace, or --rootless true)
// and the config names no cgroupsPath, a hierarchy tsrun cannot create or join is left out instead of
// failing create — unless a limit needs it:
//   v1 / hybrid  each inaccessible hierarchy is dropped; a limit for a dropped one fails with runc's
//                "cannot set <controller> limit: container could not join or create cgroup";
//   v2           the one tree is dropped when no limit needs a controller, else runc's "rootless needs no
//                limits + no cgrouppath when no permission is granted for cgroups".
// Device rules are never a reason to fail (ApplyOptions.rootless: runc ignores the devices controller's
// errors there). Decided before anything is made, from what the kernel's permission check says now.
import * as fs from "fs";
import * as path from "path";
import { messageOf } from "../errors";
import type { LinuxResources } from "../spec/schema";
import { type ApplyOptions, CgroupManager } from "./manager";

// Why this process could not create or join `dir` (undefined: it can).
export function accessProblem(dir: string): string | undefined {
  try {
    if (fs.existsSync(dir)) {
      fs.accessSync(path.join(dir, "cgroup.procs"), fs.constants.W_OK);
      return undefined;
    }
    let up = path.dirname(dir);
    while (up !== "/" && !fs.existsSync(up)) up = path.dirname(up);
    fs.accessSync(up, fs.constants.W_OK | fs.constants.X_OK);
    return undefined;
  } catch (e) {
    return `${dir}: ${messageOf(e)}`;
  }
}

export function rootlessCgroups(m: CgroupManager, resources: LinuxResources | undefined, o: ApplyOptions): CgroupManager {
  const dirs = m.directories();
  const problems = new Map<string, string>();
  for (const [key, dir] of Object.entries(dirs)) {
    const p = accessProblem(dir);
    if (p !== undefined) problems.set(key, p);
  }
  if (problems.size === 0) return m;
  const kept = Object.fromEntries(Object.entries(dirs).filter(([k]) => !problems.has(k)));
  const reduced = CgroupManager.fromRecord({ dirs: kept, created: [] });
  const lost = reduced.unplaced(resources ?? {}, o, m);
  if (lost !== undefined) {
    const why = [...problems].find(([k]) => k.split(",").includes(lost))?.[1] ?? [...problems.values()][0]!;
    if (m.mode === "v2") throw new Error(`rootless needs no limits + no cgrouppath when no permission is granted for cgroups: ${why}`);
    throw new Error(`cannot set ${lost} limit: container could not join or create cgroup (${why})`);
  }
  return reduced;
}
