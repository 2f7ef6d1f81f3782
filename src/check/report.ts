// `tsrun check`'s report: built from CheckFacts (./facts.ts) without reading anything, so a test can hand it
// any host. Each item is ✓ (works), ✗ (missing and the default config, `tsrun spec`, needs it: the exit
// status is 1) or ! (missing or limited, optional), with a one-line cost for everything not ✓.
import type { NamespaceKind } from "../plan/linux";
import { SECCOMP_ACTIONS } from "../spec/seccomp-enums";
import type { CgroupHierarchyFacts, CheckFacts, Errno, SeccompFilterFlag, SyscallName } from "./facts";

export type CheckStatus = "ok" | "missing" | "warn";

export interface CheckItem {
  id: string; // stable: "namespace.time", "syscall.openat2", "cgroup.v2.writable", ...
  label: string;
  status: CheckStatus;
  required: boolean; // the default config (`tsrun spec`) needs it
  detail: string;
  cost?: string; // what is lost while it is missing (every item that is not ok)
}

export interface CheckGroup {
  name: string;
  items: CheckItem[];
}

export interface CheckReport {
  kernel: string;
  groups: CheckGroup[];
  missingRequired: string[]; // ids of the ✗ items
  exitCode: 0 | 1;
  facts: CheckFacts;
}

const ERRNO_NAMES: Record<number, string> = { 1: "EPERM", 2: "ENOENT", 12: "ENOMEM", 13: "EACCES", 22: "EINVAL", 28: "ENOSPC", 38: "ENOSYS", 95: "EOPNOTSUPP", 14: "EFAULT", 9: "EBADF" };
function errnoName(e: Errno): string {
  return ERRNO_NAMES[e] ?? `errno ${e}`;
}

function item(id: string, label: string, ok: boolean, required: boolean, detail: string, cost: string): CheckItem {
  return ok ? { id, label, status: "ok", required, detail } : { id, label, status: required ? "missing" : "warn", required, detail, cost };
}

function probed(e: Errno, what = "works"): string {
  return e === 0 ? what : e === 38 ? "not in this kernel (ENOSYS)" : `refused (${errnoName(e)})`;
}

const NS_COST: Record<NamespaceKind, [boolean, string]> = {
  mount: [true, "no container can be created: every container has its own mount namespace"],
  pid: [true, "the default config's pid namespace: containers would see and signal the host's processes"],
  network: [true, "the default config's network namespace: containers would share the host's network"],
  ipc: [true, "the default config's ipc namespace: containers would share the host's SysV IPC"],
  uts: [true, "the default config's uts namespace: containers could not have their own hostname"],
  user: [false, "linux.uidMappings/gidMappings, rootless containers and idmapped mounts are refused"],
  cgroup: [false, "a cgroup namespace is refused: containers see the host's cgroup paths (`tsrun spec --rootless` asks for none either)"],
  time: [false, "a time namespace and linux.timeOffsets are refused"],
};

const SYSCALL_COST: Record<SyscallName, [boolean, string, string]> = {
  openat2: [true, "openat2 (RESOLVE_IN_ROOT)", "paths inside the rootfs cannot be resolved safely: tsrun creates no container"],
  open_tree: [true, "open_tree", "tsrun mounts through the new mount API: no container can be created"],
  move_mount: [true, "move_mount", "tsrun attaches mounts with move_mount: no container can be created"],
  mount_setattr: [true, "mount_setattr", "tsrun sets mount flags with mount_setattr: no container can be created"],
  fsopen: [false, "fsopen/fsmount", "the helper uses the host's /proc instead of a fresh procfs instance"],
  pidfd_open: [true, "pidfd_open", "tsrun addresses processes by pidfd (kill, delete, exec, hooks): a recycled pid could be signalled"],
  pidfd_send_signal: [true, "pidfd_send_signal", "signals go by pid, with the recycled-pid race pidfds close"],
  clone3: [false, "clone3", "none for tsrun (unused); runc >= 1.2 uses it for CLONE_INTO_CGROUP"],
  bpf: [false, "bpf", "cgroup v2 device rules (BPF_PROG_TYPE_CGROUP_DEVICE) cannot be applied"],
};

const FLAG_COST: Record<SeccompFilterFlag, string> = {
  SECCOMP_FILTER_FLAG_TSYNC: "linux.seccomp.flags SECCOMP_FILTER_FLAG_TSYNC is refused",
  SECCOMP_FILTER_FLAG_LOG: "linux.seccomp.flags SECCOMP_FILTER_FLAG_LOG is refused",
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: "linux.seccomp.flags SECCOMP_FILTER_FLAG_SPEC_ALLOW is refused",
  SECCOMP_FILTER_FLAG_NEW_LISTENER: "SCMP_ACT_NOTIFY (a seccomp listener, linux.seccomp.listenerPath) is refused",
  SECCOMP_FILTER_FLAG_TSYNC_ESRCH: "none for tsrun (used only with a listener and TSYNC)",
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: "linux.seccomp.flags SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is refused",
};

function namespaces(f: CheckFacts): CheckGroup {
  const items: CheckItem[] = (Object.keys(NS_COST) as NamespaceKind[]).map((k) => {
    const [required, cost] = NS_COST[k];
    return item(`namespace.${k}`, `${k} namespace`, f.namespaces[k] === 0, required, probed(f.namespaces[k], f.uid === 0 || k === "user" ? "unshare works" : "unshare works (in a user namespace, as rootless)"), cost);
  });
  const u = f.userns;
  if (u.maxUserNamespaces !== null) {
    items.push(item("sysctl.user.max_user_namespaces", "user.max_user_namespaces", u.maxUserNamespaces > 0, false, String(u.maxUserNamespaces), "0: no user namespace can be created (user mappings, rootless, idmapped mounts)"));
  }
  if (u.unprivilegedClone !== null) {
    items.push(item("sysctl.kernel.unprivileged_userns_clone", "kernel.unprivileged_userns_clone", u.unprivilegedClone !== 0, false, String(u.unprivilegedClone), "0: rootless tsrun (not root) cannot create a user namespace"));
  }
  if (u.apparmorRestrict !== null) {
    items.push(item("sysctl.kernel.apparmor_restrict_unprivileged_userns", "kernel.apparmor_restrict_unprivileged_userns", u.apparmorRestrict === 0, false, String(u.apparmorRestrict), "1: an unprivileged user namespace gets no capabilities unless AppArmor allows node (rootless tsrun)"));
  }
  return { name: "Namespaces", items };
}

function hierarchyDetail(h: CgroupHierarchyFacts): string {
  return `${h.mountPoint}${h.own !== null ? `, tsrun in ${h.own}` : ""}${h.writable ? " (writable)" : " (not writable)"}`;
}

const USEFUL_V2 = ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"];
// The controllers linux.resources writes (v1; on a hybrid host a controller may be in the v2 tree instead).
const USEFUL_V1 = ["cpuset", "cpu", "blkio", "memory", "devices", "freezer", "net_cls", "net_prio", "hugetlb", "pids"];

function cgroups(f: CheckFacts): CheckGroup {
  const c = f.cgroups;
  const root = f.uid === 0;
  const items: CheckItem[] = [];
  const where = c.mode === "none" ? "no cgroup filesystem is mounted" : c.mode === "v2" ? `v2 (unified) at ${c.v2?.mountPoint}` : c.mode === "v1" ? "v1 (legacy)" : `hybrid: v1 controllers, v2 at ${c.v2?.mountPoint}`;
  items.push(item("cgroup.layout", "layout", c.mode !== "none", true, where, "no container can be created: the default config has device rules and every container a cgroup"));
  if (c.mode === "v1" || c.mode === "hybrid") {
    const have = new Set([...c.v1.flatMap((h) => h.controllers), ...(c.v2?.controllers ?? [])]);
    const devices = c.v1.find((h) => h.controllers.includes("devices"));
    items.push(item("cgroup.v1.devices", "v1 devices controller", devices !== undefined, true, devices ? hierarchyDetail(devices) : "not mounted", "the default config's device rules (deny all but the default devices) cannot be applied"));
    const missing = USEFUL_V1.filter((k) => !have.has(k));
    items.push(item("cgroup.v1.controllers", c.mode === "hybrid" ? "controllers (v1, and the v2 tree's)" : "v1 controllers", missing.length === 0, false, [...have].filter((k) => !k.startsWith("name=")).join(" ") || "none", `linux.resources for ${missing.join(", ")} are refused`));
    const ro = c.v1.filter((h) => !h.writable);
    items.push(item("cgroup.v1.writable", "v1 hierarchies writable", ro.length === 0, root, ro.length ? `not writable: ${ro.map((h) => h.mountPoint).join(" ")}` : "tsrun can create cgroups in each", root ? "containers cannot get cgroups there: create fails" : "rootless: limits are ignored (--rootless auto), as runc"));
  }
  if (c.v2) {
    const v2 = c.v2;
    if (c.mode === "v2") {
      const missing = USEFUL_V2.filter((k) => !v2.controllers.includes(k));
      items.push(item("cgroup.v2.controllers", "v2 controllers", missing.length === 0, false, v2.controllers.join(" ") || "none", `linux.resources for ${missing.join(", ")} are refused`));
      const own = v2.ownControllers ?? [];
      const notDelegated = v2.controllers.filter((k) => !own.includes(k));
      items.push(item("cgroup.v2.delegated", "v2 controllers delegated to tsrun's cgroup", notDelegated.length === 0, false, `${own.join(" ") || "none"}${v2.own ? ` in ${v2.own}` : ""}`, `tsrun enables ${notDelegated.join(", ")} down from the root (root only); where it cannot, those limits are refused`));
      items.push(item("cgroup.v2.bpf", "v2 device rules (bpf)", f.syscalls.bpf === 0, true, probed(f.syscalls.bpf, "bpf(2) present"), SYSCALL_COST.bpf[2]));
    } else {
      items.push(item("cgroup.v2.controllers", "v2 controllers (hybrid tree)", true, false, v2.controllers.join(" ") || "none (limits go through v1)", ""));
    }
    items.push(item("cgroup.v2.writable", "v2 tree writable", v2.writable, root && c.mode === "v2", hierarchyDetail(v2), root ? "containers cannot get a cgroup in the v2 tree" : "rootless: limits are ignored (--rootless auto), as runc"));
  }
  return { name: "Cgroups", items };
}

function systemd(f: CheckFacts): CheckGroup {
  const s = f.systemd;
  const running = s.pid1 === "systemd" && s.booted;
  const items = [item("systemd.pid1", "systemd as PID 1", running, false, `PID 1 is ${s.pid1 ?? "unknown"}${s.booted ? ", /run/systemd/system exists" : ""}`, "--systemd-cgroup and slice:prefix:name cgroupsPath fail (no systemd to ask): the cgroupfs driver places containers")];
  if (running) items.push(item("systemd.dbus", "D-Bus system bus", s.dbusSocket, false, s.dbusSocket ? "/run/dbus/system_bus_socket" : "no /run/dbus/system_bus_socket", "the systemd cgroup driver cannot reach systemd"));
  items.push(item("systemd.notify_socket", "NOTIFY_SOCKET", true, false, f.notifySocket ? `set: ${f.notifySocket}` : "not set (tsrun is not run by a Type=notify unit)", ""));
  return { name: "systemd", items };
}

function seccomp(f: CheckFacts): CheckGroup {
  const s = f.seccomp;
  const items = [item("seccomp.enabled", "seccomp", s.enabled, false, s.enabled ? "filters can be installed" : "not in this kernel", "linux.seccomp is refused")];
  if (s.enabled) {
    const missing = SECCOMP_ACTIONS.filter((a) => !s.actions.includes(a));
    items.push(item("seccomp.actions", "actions", missing.length === 0, false, s.actionsAvail ? s.actionsAvail.join(" ") : "no /proc/sys/kernel/seccomp/actions_avail", `profiles using ${missing.join(", ")} are refused`));
    for (const flag of Object.keys(s.flags) as SeccompFilterFlag[]) {
      items.push(item(`seccomp.flag.${flag}`, flag.replace("SECCOMP_FILTER_FLAG_", "flag "), s.flags[flag] === 0, false, probed(s.flags[flag], "known to the kernel"), FLAG_COST[flag]));
    }
    items.push(item("seccomp.notify", "user notification (SECCOMP_GET_NOTIF_SIZES)", s.notifSizes === 0, false, probed(s.notifSizes), "SCMP_ACT_NOTIFY (linux.seccomp.listenerPath) is refused"));
  }
  return { name: "Seccomp", items };
}

function lsm(f: CheckFacts): CheckGroup {
  const a = f.apparmor;
  const s = f.selinux;
  return {
    name: "Security modules",
    items: [
      item("lsm.apparmor", "AppArmor", a.enabled && a.securityfs, false, a.enabled ? (a.securityfs ? "enabled, /sys/kernel/security/apparmor" : "enabled, securityfs not mounted") : "not enabled", "a container that names an AppArmor profile (Docker, containerd's CRI and podman do on AppArmor hosts) fails: the kernel refuses the profile, as with runc"),
      item("lsm.selinux", "SELinux", s.mounted, false, s.mounted ? `selinuxfs at /sys/fs/selinux, ${s.enforce === 1 ? "enforcing" : "permissive"}` : "not enabled", "process.selinuxLabel is refused and a linux.mountLabel mount fails, as with runc"),
    ],
  };
}

function kernelApis(f: CheckFacts): CheckGroup {
  const items: CheckItem[] = [];
  for (const name of Object.keys(SYSCALL_COST) as SyscallName[]) {
    if (name === "bpf") continue; // under Cgroups (v2 only)
    const [required, label, cost] = SYSCALL_COST[name];
    items.push(item(`syscall.${name}`, label, f.syscalls[name] === 0, required, probed(f.syscalls[name]), cost));
  }
  const i = f.idmap;
  items.push(item("idmap", "idmapped mounts", i.errno === 0, false, i.errno === 0 ? `works on ${i.path} (fs ${i.fsType})` : `${i.step}: ${errnoName(i.errno)} on ${i.path} (fs ${i.fsType})`, "mounts with uidMappings/gidMappings (the idmap option) are refused on such filesystems"));
  return { name: "Kernel interfaces", items };
}

function others(f: CheckFacts): CheckGroup {
  const c = f.criu;
  return {
    name: "Other",
    items: [
      item("root", "running as root", f.uid === 0, true, `uid ${f.uid}`, "the default config is not rootless: use `tsrun spec --rootless` (user namespace, no cgroup limits)"),
      item("criu", "CRIU", c.version !== null, false, c.version ? `${c.path} ${c.version}` : c.path ? `${c.path}: ${c.error}` : "not on PATH", "none today: tsrun implements no checkpoint/restore"),
      // (the runtime's own gap, whatever the host has: features says the same, org.opencontainers.runc.checkpoint.enabled "false")
      item("checkpoint", "checkpoint/restore", false, false, "not implemented by tsrun", "no `checkpoint`/`restore` commands: podman container checkpoint, ctr task checkpoint and the shim's Checkpoint fail"),
    ],
  };
}

export function buildReport(f: CheckFacts): CheckReport {
  const groups = [namespaces(f), cgroups(f), kernelApis(f), seccomp(f), lsm(f), systemd(f), others(f)];
  const missingRequired = groups.flatMap((g) => g.items.filter((i) => i.status === "missing").map((i) => i.id));
  return { kernel: f.kernel, groups, missingRequired, exitCode: missingRequired.length ? 1 : 0, facts: f };
}

const MARK: Record<CheckStatus, [string, string]> = { ok: ["✓", "\x1b[32m"], missing: ["✗", "\x1b[31m"], warn: ["!", "\x1b[33m"] };

export function renderText(r: CheckReport, colour: boolean): string {
  const paint = (code: string, s: string) => (colour ? `${code}${s}\x1b[0m` : s);
  const out: string[] = [`tsrun check: kernel ${r.kernel}`];
  for (const g of r.groups) {
    out.push("", paint("\x1b[1m", g.name));
    for (const i of g.items) {
      const [mark, code] = MARK[i.status];
      out.push(`  ${paint(code, mark)} ${i.label}: ${i.detail}`);
      if (i.cost) out.push(`      ${paint("\x1b[2m", `cost: ${i.cost}`)}`);
    }
  }
  out.push("");
  out.push(r.missingRequired.length ? paint(MARK.missing[1], `✗ the default config (tsrun spec) cannot run here: ${r.missingRequired.join(", ")}`) : paint(MARK.ok[1], "✓ the default config (tsrun spec) can run here"));
  return out.join("\n") + "\n";
}

// Colour on a terminal only, never with NO_COLOR (https://no-color.org) or TERM=dumb.
export function useColour(isTTY: boolean, env: NodeJS.ProcessEnv): boolean {
  return isTTY && !env.NO_COLOR && env.TERM !== "dumb";
}
