// Preconditions of cases: when one does not hold, the case is skipped with its reason.
import * as os from "os";
import type { Env, Requirement } from "./case";
import { cgroupHierarchies } from "./host";

const req = (why: string, met: (e: Env) => boolean): Requirement => ({ why, met });

export const needs = {
  timeNamespaces: req("the kernel has no time namespaces", (e) => e.host.timeNamespaces),
  userNamespaces: req("user namespaces are not available", (e) => e.host.userNamespaces),
  blockDevice: req("no block device found in /sys/block", (e) => e.host.blockDevice !== undefined),
  features: req("the runtime has no `features` command (features.md: a runtime MAY provide one)", (e) => e.runtime.features !== undefined),
  noResctrl: req("a resctrl file system is mounted here (the case needs a host without one)", (e) => !e.host.resctrl),
  resctrl: req("no resctrl file system is mounted on this host (Intel RDT)", (e) => e.host.resctrl),
  noApparmor: req("AppArmor is enabled on this host (the case needs a host without it)", (e) => !e.host.apparmor),
  noSelinux: req("SELinux is enabled on this host (the case needs a host without it)", (e) => !e.host.selinux),
  selinux: req("SELinux is not enabled on this host", (e) => e.host.selinux),
  knownArch: req("the case knows x64 and arm64 only", (e) => e.host.arch === "x64" || e.host.arch === "arm64"),
  cgroupV2: req("no cgroup v2 hierarchy on this host", () => cgroupHierarchies().some((h) => h.version === 2)),
  cpus: req("one CPU only: an affinity cannot be told apart", () => os.cpus().length > 1),
};
