// `tsrun check`'s facts: what this host offers an OCI runtime, gathered as plain data (the report is built from
// them by ./report.ts, which reads nothing). Kernel calls go through tsrun_probe.node (native/probe.cc), which
// calls each syscall where that changes nothing on the host; the rest is read from /proc, /sys and PATH.
// Gathering never fails: a fact that cannot be read is recorded as absent (null or an errno).
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { detectLayout } from "../cgroups/layout";
import { nativeBuildDir } from "../native";
import { NAMESPACES, type NamespaceKind } from "../plan/linux";
import { seccompActions } from "../runtime/features";
import type { SeccompAction } from "../spec/seccomp-enums";

// errno of a probe: 0 = works.
export type Errno = number;

export const SYSCALLS = ["openat2", "open_tree", "move_mount", "mount_setattr", "fsopen", "pidfd_open", "pidfd_send_signal", "clone3", "bpf"] as const;
export type SyscallName = (typeof SYSCALLS)[number];

export const SECCOMP_FILTER_FLAGS = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_NEW_LISTENER: 8,
  SECCOMP_FILTER_FLAG_TSYNC_ESRCH: 16,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32 | 8, // only valid with NEW_LISTENER
} as const;
export type SeccompFilterFlag = keyof typeof SECCOMP_FILTER_FLAGS;

export interface CgroupHierarchyFacts {
  mountPoint: string;
  controllers: string[]; // v1: the hierarchy's; v2: cgroup.controllers at the mount's root
  own: string | null; // tsrun's cgroup in it (/proc/self/cgroup), null when unknown
  ownControllers: string[] | null; // v2: cgroup.controllers of tsrun's cgroup (what is delegated down to it)
  writable: boolean; // tsrun may create a cgroup in its own cgroup (access W_OK)
}

export interface CheckFacts {
  kernel: string;
  uid: number;
  namespaces: Record<NamespaceKind, Errno>; // unshare(CLONE_NEW*) in a forked child (with CLONE_NEWUSER when not root)
  userns: {
    maxUserNamespaces: number | null; // /proc/sys/user/max_user_namespaces
    unprivilegedClone: number | null; // /proc/sys/kernel/unprivileged_userns_clone (Debian, Ubuntu)
    apparmorRestrict: number | null; // /proc/sys/kernel/apparmor_restrict_unprivileged_userns (Ubuntu >= 23.10)
  };
  cgroups: {
    mode: "v1" | "v2" | "hybrid" | "none";
    v1: CgroupHierarchyFacts[];
    v2: CgroupHierarchyFacts | null;
  };
  systemd: { pid1: string | null; booted: boolean; dbusSocket: boolean };
  seccomp: {
    enabled: boolean; // the kernel knows seccomp (Seccomp: in /proc/self/status)
    actionsAvail: string[] | null; // /proc/sys/kernel/seccomp/actions_avail
    actions: SeccompAction[]; // the OCI actions those allow (as `tsrun features`)
    flags: Record<SeccompFilterFlag, Errno>;
    notifSizes: Errno; // SECCOMP_GET_NOTIF_SIZES: user notification
  };
  apparmor: { enabled: boolean; securityfs: boolean };
  selinux: { mounted: boolean; enforce: number | null };
  syscalls: Record<SyscallName, Errno>;
  idmap: { path: string; fsType: string; errno: Errno; step: string };
  criu: { path: string | null; version: string | null; error: string | null };
  notifySocket: string | null; // NOTIFY_SOCKET in tsrun's environment
}

interface ProbeApi {
  syscall(name: string): number;
  seccompFlags(flags: number): number;
  namespace(flag: number): number;
  idmap(path: string): { errno: number; step: string };
}

let probeApi: ProbeApi | undefined;
function probe(): ProbeApi {
  if (!probeApi) {
    const mod = { exports: {} as ProbeApi };
    process.dlopen(mod, path.join(nativeBuildDir(), "tsrun_probe.node"));
    probeApi = mod.exports;
  }
  return probeApi;
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

function readInt(file: string): number | null {
  const t = readText(file)?.trim();
  return t !== undefined && /^-?\d+$/.test(t) ? Number(t) : null;
}

function exists(file: string): boolean {
  return fs.existsSync(file);
}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

// tsrun's own cgroup directory in a hierarchy mounted at MOUNT (whose root inside the hierarchy is ROOT).
function ownDir(mount: string, root: string, own: string | undefined): string | null {
  if (own === undefined) return null;
  let rel: string;
  if (root === "/") rel = own;
  else if (own === root || own.startsWith(root + "/")) rel = own.slice(root.length);
  else return null;
  return rel === "/" || rel === "" ? mount : path.join(mount, rel);
}

function words(text: string | null): string[] {
  return text ? text.trim().split(/\s+/).filter(Boolean) : [];
}

function cgroupFacts(): CheckFacts["cgroups"] {
  let layout;
  try {
    layout = detectLayout();
  } catch {
    return { mode: "none", v1: [], v2: null };
  }
  const v1 = layout.v1.map((h) => {
    const dir = ownDir(h.mountPoint, h.root, layout.own.get(h.controllers.join(",")));
    return { mountPoint: h.mountPoint, controllers: h.controllers, own: dir, ownControllers: null, writable: dir !== null && writable(dir) };
  });
  let v2: CgroupHierarchyFacts | null = null;
  if (layout.unified) {
    const dir = ownDir(layout.unified.mountPoint, layout.unified.root, layout.own.get(""));
    v2 = {
      mountPoint: layout.unified.mountPoint,
      controllers: words(readText(path.join(layout.unified.mountPoint, "cgroup.controllers"))),
      own: dir,
      ownControllers: dir ? words(readText(path.join(dir, "cgroup.controllers"))) : null,
      writable: dir !== null && writable(dir),
    };
  }
  return { mode: layout.mode, v1, v2 };
}

function criuFacts(): CheckFacts["criu"] {
  let found: string | null = null;
  for (const d of (process.env.PATH ?? "").split(":")) {
    const f = path.join(d || ".", "criu");
    try {
      fs.accessSync(f, fs.constants.X_OK);
      if (fs.statSync(f).isFile()) {
        found = f;
        break;
      }
    } catch {
      // next
    }
  }
  if (!found) return { path: null, version: null, error: null };
  const r = spawnSync(found, ["--version"], { encoding: "utf8", timeout: 3000, stdio: ["ignore", "pipe", "pipe"] });
  const m = /Version:\s*(\S+)/.exec(r.stdout ?? "");
  if (m) return { path: found, version: m[1]!, error: null };
  return { path: found, version: null, error: r.error ? r.error.message : `criu --version: status ${r.status}` };
}

export function gatherFacts(): CheckFacts {
  const p = probe();
  // Not root: as rootless tsrun makes them, inside a new user namespace.
  const uid = process.getuid?.() ?? 0;
  const namespaces = {} as Record<NamespaceKind, Errno>;
  for (const [kind, ns] of Object.entries(NAMESPACES) as [NamespaceKind, (typeof NAMESPACES)[NamespaceKind]][]) namespaces[kind] = p.namespace(uid === 0 ? ns.flag : ns.flag | NAMESPACES.user.flag);
  const syscalls = {} as Record<SyscallName, Errno>;
  for (const s of SYSCALLS) syscalls[s] = p.syscall(s);
  const flags = {} as Record<SeccompFilterFlag, Errno>;
  for (const [name, bits] of Object.entries(SECCOMP_FILTER_FLAGS) as [SeccompFilterFlag, number][]) flags[name] = p.seccompFlags(bits);
  const actionsText = readText("/proc/sys/kernel/seccomp/actions_avail");
  const idmapPath = os.tmpdir();
  let fsType = "unknown";
  try {
    fsType = `0x${fs.statfsSync(idmapPath).type.toString(16)}`;
  } catch {
    // unknown
  }
  const selinuxMounted = exists("/sys/fs/selinux/enforce");
  return {
    kernel: os.release(),
    uid,
    namespaces,
    userns: {
      maxUserNamespaces: readInt("/proc/sys/user/max_user_namespaces"),
      unprivilegedClone: readInt("/proc/sys/kernel/unprivileged_userns_clone"),
      apparmorRestrict: readInt("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
    },
    cgroups: cgroupFacts(),
    systemd: { pid1: readText("/proc/1/comm")?.trim() ?? null, booted: exists("/run/systemd/system"), dbusSocket: exists("/run/dbus/system_bus_socket") },
    seccomp: {
      enabled: /^Seccomp:/m.test(readText("/proc/self/status") ?? ""),
      actionsAvail: actionsText === null ? null : words(actionsText),
      actions: actionsText === null ? [] : seccompActions(),
      flags,
      notifSizes: p.syscall("seccomp_notif"),
    },
    apparmor: { enabled: readText("/sys/module/apparmor/parameters/enabled")?.trim() === "Y", securityfs: exists("/sys/kernel/security/apparmor") },
    selinux: { mounted: selinuxMounted, enforce: selinuxMounted ? readInt("/sys/fs/selinux/enforce") : null },
    syscalls,
    idmap: { path: idmapPath, fsType, ...p.idmap(idmapPath) },
    criu: criuFacts(),
    notifySocket: process.env.NOTIFY_SOCKET ?? null,
  };
}
