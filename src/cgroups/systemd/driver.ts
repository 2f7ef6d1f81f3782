// The systemd cgroup driver's steps, as runc's systemd managers (LegacyManager on v1 and hybrid hosts,
// UnifiedManager on v2) take them; CgroupManager calls these when its record says systemd:
//   placement  where the unit's cgroup is in each hierarchy (mount point + expanded slice + unit);
//   start      StartTransientUnit with the container's first process, then the directories systemd did not
//              make (v1 hierarchies it does not manage) are made by the caller as cgroupfs does;
//   set        SetUnitProperties with what systemd knows, then every file through cgroupfs (the caller);
//   stop       StopUnit and its job, then the leftovers removed by the caller.
// Freezing, signalling, listing and statistics are cgroupfs only, as in runc.
import * as path from "path";
import type { LinuxResources } from "../../spec/schema";
import type { CgroupLayout } from "../layout";
import { isRunningSystemd, withSystemd } from "./dbus";
import { parseCgroupsPath, resourceProperties, type ResourceOptions, startProperties, type SystemdRecord, unitCgroupPath } from "./units";

export type { SystemdRecord } from "./units";

// The record and directories of a container about to be created with --systemd-cgroup. Refused, as runc,
// without systemd as the host's init. Rootless (runc's rootless systemd manager): the unit goes to the user's
// own systemd instance, below its manager's cgroup (managerCgroup(), asked for before this).
export function placement(cgroupsPath: string | undefined, id: string, layout: CgroupLayout, o: { rootless?: boolean; managerCgroup?: string } = {}): { dirs: Record<string, string>; systemd: SystemdRecord } {
  if (!isRunningSystemd()) throw new Error("systemd cgroup flag passed, but systemd support for managing cgroups is not available (systemd is not running: no /run/systemd/system)");
  const rootless = o.rootless === true;
  if (rootless && !o.managerCgroup) throw new Error("internal: the user's systemd manager cgroup was not asked for");
  const systemd = parseCgroupsPath(cgroupsPath, id, rootless);
  const rel = unitCgroupPath(systemd, rootless ? o.managerCgroup : "");
  const dirs: Record<string, string> = {};
  for (const h of layout.v1) dirs[h.controllers.join(",")] = path.join(h.mountPoint, rel);
  if (layout.unified) dirs[""] = path.join(layout.unified.mountPoint, rel);
  return { dirs, systemd };
}

// The cgroup of the user's systemd instance (its units' parent), as runc's rootless initPath asks it.
export async function managerCgroup(): Promise<string> {
  if (!isRunningSystemd()) throw new Error("systemd cgroup flag passed, but systemd support for managing cgroups is not available (systemd is not running: no /run/systemd/system)");
  try {
    return await withSystemd(true, (bus) => bus.controlGroup());
  } catch (e) {
    throw new Error(`rootless systemd cgroups: the user's systemd instance: ${(e as Error).message}`);
  }
}

// The transient unit, started with `pid` in it (runc's Apply), waited for until systemd says done.
export async function start(r: SystemdRecord, pid: number, o: { v2: boolean; resources?: LinuxResources | undefined }): Promise<void> {
  await withSystemd(r.rootless, async (bus) => {
    const version = await bus.systemdVersion();
    const props = startProperties(r, pid, { v2: o.v2, version, resources: o.resources });
    try {
      await bus.startUnit(r.unit, props, pid === -1);
    } catch (e) {
      throw new Error(`unable to start unit "${r.unit}": ${(e as Error).message}`);
    }
  });
}

// The unit's properties for `resources` (runc's Set, systemd's half); resolves to the resources cgroupfs
// then writes (cpu quota rounded as systemd rounds it).
export async function set(r: SystemdRecord, resources: LinuxResources, o: Omit<ResourceOptions, "version">): Promise<LinuxResources> {
  return withSystemd(r.rootless, async (bus) => {
    const converted = resourceProperties(resources, { ...o, version: await bus.systemdVersion() });
    try {
      await bus.setUnitProperties(r.unit, converted.props);
    } catch (e) {
      throw new Error(`unable to set unit properties: ${(e as Error).message}`);
    }
    return converted.resources;
  });
}

// StopUnit and its job (runc's Destroy, systemd's half); resolves to a warning, if any.
export async function stop(r: SystemdRecord): Promise<string | undefined> {
  return withSystemd(r.rootless, (bus) => bus.stopUnit(r.unit));
}
