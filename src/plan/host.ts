// The facts about the host a plan depends on, gathered in one place before anything is validated or
// built: validateSpec and buildPlan read no file and ask the kernel nothing, they depend only on their
// arguments (and test/plan-golden.test.ts builds plans from fixed facts). Gathering never fails: a fact
// that cannot be read has the value the old inline checks gave it.
import * as fs from "fs";
import * as path from "path";
import type { Process, Spec } from "../spec/schema";
import { NAMESPACES, type NamespaceKind } from "./linux";
import { isBindMount } from "./mounts";
import { runningInUserNamespace } from "../userns";

// What the identity steps of a process need (create and exec).
export interface ProcessFacts {
  // tsrun's uid (process.getuid()): when it is not 0, a user namespace it sets up has setgroups "deny"
  // (rootless maps), so the process gets no supplementary groups.
  uid: number;
  // The home directory of the process's uid in the container's /etc/passwd (read only when the file
  // resolves inside the rootfs), "/" without one: HOME when process.env has none (as runc).
  home: string;
  // AppArmor and SELinux on this host (absent: neither).
  lsm?: LsmFacts;
}

// AppArmor and SELinux as runc finds them (apparmor.IsEnabled, go-selinux's GetEnabled), and which attribute
// takes an AppArmor exec profile: attr/apparmor/exec (Linux 5.8+), else attr/exec (runc's fallback when
// /proc/self/attr/apparmor/exec does not exist).
export interface LsmFacts {
  apparmor: boolean;
  apparmorAttr: "apparmor/exec" | "exec";
  selinux: boolean;
  // Tests only: TSRUN_TEST_LSM_ATTR_DIR, a directory of the host standing in for the process's attr
  // directory (files apparmor/exec, exec, keycreate). AppArmor and SELinux are then taken as enabled and the
  // helper writes the attributes there. Only tsrun's caller sets it: nothing of a container or its image
  // chooses where an attribute is written.
  attrDir?: string;
}

// A bind mount's source, as config.json writes it (relative to the bundle or absolute).
export interface SourceFacts {
  path: string; // absolute: resolved against the bundle
  exists: boolean;
  procfs: boolean; // a procfs (runc lets only a procfs be bound over /proc)
}

export interface HostFacts extends ProcessFacts {
  // /proc/kcore exists: /dev/core links to it.
  hasKcore: boolean;
  // The namespaces config.json joins by a path that is tsrun's own namespace (same device and inode as
  // /proc/self/ns/<name>): the container shares it with tsrun, so a sysctl in it would reach the host.
  sharedNamespaces: NamespaceKind[];
  // Every bind mount source, keyed by the source as written in config.json.
  bindSources: Record<string, SourceFacts>;
  // tsrun itself runs inside a user namespace (rootless podman's): device nodes cannot be made there, so
  // they are bound from the host as in a user-namespaced container (runc's RunningInUserNS). Absent: no.
  inUserNamespace?: boolean;
}

const PROC_SUPER_MAGIC = 0x9fa0;

export function hostFacts(spec: Spec, bundle: string, rootfs: string): HostFacts {
  const bindSources: Record<string, SourceFacts> = {};
  for (const m of spec.mounts ?? []) {
    const source = m.source ?? "";
    if (!source || !isBindMount(m.options, m.type) || source in bindSources) continue;
    const abs = path.isAbsolute(source) ? source : path.join(bundle, source);
    bindSources[source] = { path: abs, exists: fs.existsSync(abs), procfs: isProcfs(abs) };
  }
  return {
    ...processFacts(rootfs, spec.process),
    hasKcore: fs.existsSync("/proc/kcore"),
    sharedNamespaces: sharedNamespaces(spec),
    bindSources,
    ...(runningInUserNamespace() ? { inUserNamespace: true } : {}),
  };
}

export function processFacts(rootfs: string, proc: Process | undefined): ProcessFacts {
  return { uid: process.getuid?.() ?? 0, home: homeOf(rootfs, proc?.user?.uid ?? 0), lsm: lsmFacts() };
}

const SELINUX_MAGIC = 0xf97cff8c;

export function lsmFacts(): LsmFacts {
  const test = process.env.TSRUN_TEST_LSM_ATTR_DIR;
  if (test) {
    const dir = path.resolve(test);
    return { apparmor: true, apparmorAttr: fs.existsSync(path.join(dir, "apparmor")) ? "apparmor/exec" : "exec", selinux: true, attrDir: dir };
  }
  return { apparmor: apparmorEnabled(), apparmorAttr: fs.existsSync("/proc/self/attr/apparmor/exec") ? "apparmor/exec" : "exec", selinux: selinuxEnabled() };
}

// runc's apparmor.IsEnabled: securityfs shows AppArmor and its module says it is enabled.
function apparmorEnabled(): boolean {
  try {
    if (!fs.existsSync("/sys/kernel/security/apparmor")) return false;
    return fs.readFileSync("/sys/module/apparmor/parameters/enabled", "utf8").startsWith("Y");
  } catch {
    return false;
  }
}

// go-selinux's GetEnabled: selinuxfs is mounted and this process has a label other than "kernel".
function selinuxEnabled(): boolean {
  try {
    if (fs.statfsSync("/sys/fs/selinux").type !== SELINUX_MAGIC) return false;
    const current = fs.readFileSync("/proc/self/attr/current", "utf8").replace(/[\0\n]+$/, "");
    return current !== "" && current !== "kernel";
  } catch {
    return false;
  }
}

function sharedNamespaces(spec: Spec): NamespaceKind[] {
  const out: NamespaceKind[] = [];
  for (const ns of spec.linux?.namespaces ?? []) {
    if (!ns.path) continue;
    const kind = ns.type as NamespaceKind;
    try {
      const a = fs.statSync(ns.path);
      const b = fs.statSync(`/proc/self/ns/${NAMESPACES[kind].proc}`);
      if (a.dev === b.dev && a.ino === b.ino && !out.includes(kind)) out.push(kind);
    } catch {
      // a path that cannot be opened fails when the namespace is joined
    }
  }
  return out;
}

function isProcfs(source: string): boolean {
  try {
    return fs.statfsSync(source).type === PROC_SUPER_MAGIC;
  } catch {
    return false;
  }
}

function homeOf(rootfs: string, uid: number): string {
  try {
    const file = fs.realpathSync(path.join(rootfs, "etc/passwd"));
    if (!file.startsWith(fs.realpathSync(rootfs) + "/")) return "/";
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      const f = line.split(":");
      if (f.length >= 7 && Number(f[2]) === uid && f[5]) return f[5];
    }
  } catch {
    // no passwd file
  }
  return "/";
}
