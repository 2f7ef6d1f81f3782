// spec -> plan: every decision about how a config.json becomes syscalls is made here, in order, as data
// the helper executes. The order follows runc (nsexec + standard_init) so behaviour carries over:
//   host context:   close stray fds, oom_score_adj, cgroups, join namespaces, user namespace + maps,
//                   new namespaces, time offsets, rlimits, clone the init;
//   init, pre-pivot: a procfs of its own, propagation, rootfs bind, lo up, mounts, /dev,
//                   prestart/createRuntime (via tsrun), createContainer hooks, pivot_root;
//   init, post-pivot: console, read-only root, hostname, sysctl, readonly/masked paths, keyring,
//                   personality, umask, bounding set, user, cwd, capabilities, executable lookup, NNP;
//   wait for start: startContainer hooks, signals, fds, seccomp (+ notify listener), exec.
import * as fs from "fs";
import * as path from "path";
import type { Hook, LinuxDevice, Mount, Process, Spec } from "../spec/schema";
import { CLONE, NAMESPACES, NamespaceKind, MS, PERSONALITY, RLIMITS, capMask } from "./linux";
import { containerPath, parseMountOptions } from "./mounts";
import { Op } from "./opcodes";
import { Plan } from "./writer";

export interface BuildOptions {
  id: string;
  spec: Spec;
  bundle: string; // absolute
  rootfs: string; // absolute, resolved
  noPivot: boolean;
  noNewKeyring: boolean;
  // fds in the helper: 0-2 stdio, 3..3+extraFds-1 passed through, then the fds below
  extraFds: number;
  syncFd: number;
  stateDirFd: number;
  consoleFd?: number;
  cgroupProcs: string[];
  // For a mount of type "cgroup": the container's cgroup directory per hierarchy, and the host mode.
  cgroupDirs: Record<string, string>;
  cgroupMode: "v1" | "v2" | "hybrid";
  // The compiled filter; with SCMP_ACT_NOTIFY, the listener socket tsrun connected (an fd of the helper),
  // its path (for messages) and the start of the container process state sent to it.
  seccomp?: SeccompPlan;
  init?: boolean; // --init: a reaping PID 1 in front of the user process
  warn: (msg: string) => void;
}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

// The devices every container gets (runc's defaults).
const DEFAULT_DEVICES: { path: string; major: number; minor: number }[] = [
  { path: "/dev/null", major: 1, minor: 3 },
  { path: "/dev/zero", major: 1, minor: 5 },
  { path: "/dev/full", major: 1, minor: 7 },
  { path: "/dev/random", major: 1, minor: 8 },
  { path: "/dev/urandom", major: 1, minor: 9 },
  { path: "/dev/tty", major: 5, minor: 0 },
];

export interface NamespacePlan {
  create: NamespaceKind[];
  join: { kind: NamespaceKind; path: string }[];
}

export function namespacePlan(spec: Spec): NamespacePlan {
  const create: NamespaceKind[] = [];
  const join: { kind: NamespaceKind; path: string }[] = [];
  for (const ns of spec.linux?.namespaces ?? []) {
    const kind = ns.type as NamespaceKind;
    if (ns.path) join.push({ kind, path: ns.path });
    else create.push(kind);
  }
  return { create, join };
}

export function hasNewNamespace(spec: Spec, kind: NamespaceKind): boolean {
  return namespacePlan(spec).create.includes(kind);
}

function hasNamespace(spec: Spec, kind: NamespaceKind): boolean {
  return (spec.linux?.namespaces ?? []).some((n) => n.type === kind);
}

// Checks the runtime-spec's cross-field rules the schema cannot see.
export function validateForLinux(spec: Spec): void {
  const fail = (m: string) => {
    throw new Error(m);
  };
  if (!spec.process) fail("config.json: process is required to create a container");
  if (spec.hostname && !hasNewNamespace(spec, "uts") && spec.hostname !== "") fail("config.json: hostname is set but the container has no new uts namespace");
  if (spec.domainname && !hasNewNamespace(spec, "uts")) fail("config.json: domainname is set but the container has no new uts namespace");
  const linux = spec.linux;
  if (linux?.timeOffsets && Object.keys(linux.timeOffsets).length > 0 && !hasNewNamespace(spec, "time"))
    fail("config.json: linux.timeOffsets is set but the container has no new time namespace");
  const userns = hasNamespace(spec, "user");
  if (hasNewNamespace(spec, "user") && !(linux?.uidMappings?.length && linux?.gidMappings?.length))
    fail("config.json: a new user namespace needs linux.uidMappings and linux.gidMappings");
  if (!userns && (linux?.uidMappings?.length || linux?.gidMappings?.length)) fail("config.json: linux.uidMappings are set but there is no user namespace");
  for (const key of Object.keys(linux?.sysctl ?? {})) {
    const why = sysctlRefusal(spec, key);
    if (why) fail(`config.json: linux.sysctl: ${why}`);
  }
  const p = spec.process!;
  if (p.apparmorProfile) fail("config.json: process.apparmorProfile is set but AppArmor is not enabled on this host");
  if (p.selinuxLabel) fail("config.json: process.selinuxLabel is set but SELinux is not enabled on this host");
  if (linux?.personality?.flags && linux.personality.flags.length > 0) fail("config.json: linux.personality.flags: no personality flag is defined (runtime-spec), so none can be applied");
  if (p.scheduler) fail("config.json: process.scheduler is not supported by tsrun");
  if (p.ioPriority) fail("config.json: process.ioPriority is not supported by tsrun");
  if (p.execCPUAffinity) fail("config.json: process.execCPUAffinity is not supported by tsrun");
  if (linux?.intelRdt) fail("config.json: linux.intelRdt is not supported by tsrun");
  (spec.mounts ?? []).forEach((m, i) => {
    if (m.uidMappings || m.gidMappings) fail(`config.json: mount ${m.destination}: idmapped mounts are not supported by tsrun`);
    const why = procMountRefusal(m, `config.json: mounts[${i}]`);
    if (why) fail(`config.json: mounts[${i}]: check proc-safety of ${m.destination} mount: ${why}`);
  });
}

// The sysctls runc accepts (libcontainer/configs/validate: sysctl()): only those in a kernel namespace the
// container has its own of, so a write never reaches the host. The reason for a refusal, in runc's words.
const IPC_SYSCTLS = new Set(["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"]);

export function sysctlRefusal(spec: Spec, rawKey: string): string | undefined {
  const key = sysctlDotted(rawKey);
  if (sysctlFile(rawKey).split("/").some((p) => p === "" || p === "." || p === ".."))
    return `sysctl ${JSON.stringify(rawKey)} is not a valid sysctl name`;
  if (IPC_SYSCTLS.has(key) || key.startsWith("fs.mqueue.")) {
    return hasNewOwnNamespace(spec, "ipc") ? undefined : `sysctl ${JSON.stringify(key)} is not allowed in the hosts ipc namespace`;
  }
  if (key.startsWith("net.")) {
    return hasNewOwnNamespace(spec, "network") ? undefined : `sysctl ${JSON.stringify(key)} not allowed in host network namespace`;
  }
  if (hasNamespace(spec, "uts")) {
    if (key === "kernel.domainname") return undefined;
    if (key === "kernel.hostname") return `sysctl ${JSON.stringify(key)} is not allowed as it conflicts with the OCI "hostname" field`;
  }
  if (key.startsWith("user.")) return hasNamespace(spec, "user") ? undefined : `setting ucounts without a user namespace not allowed: ${key}`;
  return `sysctl ${JSON.stringify(key)} is not in a separate kernel namespace`;
}

// A namespace of the container's own: a new one, or one joined by a path that is not tsrun's own (runc
// compares a joined network namespace with the current process's).
function hasNewOwnNamespace(spec: Spec, kind: NamespaceKind): boolean {
  const ns = (spec.linux?.namespaces ?? []).find((n) => n.type === kind);
  if (!ns) return false;
  if (!ns.path) return true;
  try {
    const a = fs.statSync(ns.path);
    const b = fs.statSync(`/proc/self/ns/${NAMESPACES[kind].proc}`);
    return !(a.dev === b.dev && a.ino === b.ino);
  } catch {
    return true; // a path that cannot be opened fails when the namespace is joined
  }
}

// "net/ipv4/ip_forward" -> "net.ipv4.ip_forward" (runc's convertSysctlVariableToDotsSeparator: a name whose
// first separator is "/" has its dots and slashes swapped).
export function sysctlDotted(key: string): string {
  const first = key.search(/[./]/);
  if (first < 0 || key[first] === ".") return key;
  return key.replace(/[./]/g, (c) => (c === "." ? "/" : "."));
}

// The file under /proc/sys, relative to a procfs root: dots separate names; a slash in the dotted form
// (from the slash form) is a dot inside a name (an interface called "eth0.100").
export function sysctlFile(key: string): string {
  return "sys/" + sysctlDotted(key).split(".").map((p) => p.replace(/\//g, ".")).join("/");
}

// The files runc lets a mount cover inside /proc (the ones lxcfs emulates).
const PROC_MOUNT_ALLOWED = ["/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled"];

// runc's checkProcMount, on the destination as written (the helper repeats the check on the destination
// as it resolves in the rootfs): a proc-type mount may go on /proc, a bind only when its source is a
// procfs; nothing goes inside /proc but the files above; and a "proc" mount goes nowhere else.
export function procMountRefusal(m: Mount, where: string): string | undefined {
  const dest = mountPoint(m.destination, where);
  const bind = parseMountOptions(m.options, m.type, where).bind;
  if (!bind && m.type === "proc" && dest !== "/proc") return `${JSON.stringify(dest)} cannot be mounted because it is not on /proc (a proc-type mount goes only on /proc)`;
  if (dest === "/proc") {
    if (bind) return isProcfs(m.source ?? "") ? undefined : `${JSON.stringify(dest)} cannot be mounted because it is not of type proc`;
    return m.type === "proc" ? undefined : `${JSON.stringify(dest)} cannot be mounted because it is not of type proc`;
  }
  if (!dest.startsWith("/proc/")) return undefined;
  if (PROC_MOUNT_ALLOWED.includes(dest)) return undefined;
  return `${JSON.stringify(dest)} cannot be mounted because it is inside /proc`;
}

const PROC_SUPER_MAGIC = 0x9fa0;
function isProcfs(source: string): boolean {
  try {
    return fs.statfsSync(source).type === PROC_SUPER_MAGIC;
  } catch {
    return false;
  }
}

function consoleOps(plan: Plan, proc: Process, consoleFd: number | undefined, bindConsole: boolean): void {
  if (!proc.terminal) return;
  if (consoleFd === undefined) throw new Error("process.terminal is true but no console socket was given (--console-socket)");
  plan.add(Op.CONSOLE, consoleFd, proc.consoleSize?.height ?? 0, proc.consoleSize?.width ?? 0, proc.user?.uid ?? 0, proc.user?.gid ?? 0, bindConsole ? 1 : 0);
}

function rlimitOps(plan: Plan, proc: Process): void {
  for (const r of proc.rlimits ?? []) plan.add(Op.RLIMIT, RLIMITS[r.type]!, rlimitValue(r.soft), rlimitValue(r.hard), r.type);
}

function rlimitValue(v: number): number {
  return v >= 2 ** 63 ? -1 : v;
}

const SYS_ADMIN = capMask(["CAP_SYS_ADMIN"], () => undefined);

function splitMask(m: bigint): [number, number] {
  return [Number(m & 0xffffffffn), Number((m >> 32n) & 0xffffffffn)];
}

function hookOp(plan: Plan, kind: string, h: Hook): void {
  const args = h.args && h.args.length > 0 ? h.args : [h.path];
  plan.add(Op.HOOK, kind, h.path, ...Plan.list(args), ...Plan.list(h.env ?? []), h.timeout ?? 0);
}

function deviceType(d: LinuxDevice): number {
  switch (d.type) {
    case "b":
      return S_IFBLK;
    case "p":
      return S_IFIFO;
    default:
      return S_IFCHR;
  }
}

// HOME from the container's /etc/passwd (runc does this when the env has none), "/" otherwise. The file
// is read only if it resolves inside the rootfs.
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

export function processEnv(spec: Spec, rootfs: string): string[] {
  const env = [...(spec.process?.env ?? [])];
  if (!env.some((e) => e.startsWith("HOME="))) env.push(`HOME=${homeOf(rootfs, spec.process?.user?.uid ?? 0)}`);
  return env;
}

// A mount destination: a clean absolute path inside the rootfs, without a trailing slash.
function mountPoint(destination: string, where: string): string {
  const p = containerPath(destination, where);
  return p.length > 1 ? p.replace(/\/+$/, "") : p;
}

function mountOps(plan: Plan, o: BuildOptions, m: Mount, index: number): void {
  const where = `config.json: mounts[${index}]`;
  const dest = mountPoint(m.destination, where);
  const parsed = parseMountOptions(m.options, m.type, where);
  if (m.type === "cgroup" || m.type === "cgroup2") {
    cgroupMountOps(plan, o, dest, parsed.flags);
    return;
  }
  let source = m.source ?? "";
  if (parsed.bind) {
    if (!source) throw new Error(`${where}: a bind mount needs a source`);
    if (!path.isAbsolute(source)) source = path.join(o.bundle, source);
    if (!fs.existsSync(source)) throw new Error(`${where}: bind source ${source} does not exist`);
  }
  const kind = parsed.bind ? 2 : 0;
  // procfs and sysfs go on an ordinary directory only, never through a symlink (runc: "must be mounted on
  // ordinary directory"), and the helper checks afterwards that the new filesystem is what sits there.
  const ordinary = !parsed.bind && (m.type === "proc" || m.type === "sysfs");
  plan.add(Op.MOUNT, source, dest, m.type ?? "", parsed.flags, parsed.data, parsed.propagation, kind, (parsed.recursive ? 2 : 0) | (parsed.tmpcopyup ? 4 : 0) | (ordinary ? 8 : 0));
}

// A "cgroup" mount shows the container its own cgroups: on v2 a cgroup2 mount (rooted at the container's
// cgroup when it has a cgroup namespace); on v1/hybrid a tmpfs with each hierarchy's container directory
// bound in, read-only unless the mount asks for rw (but see below).
// With a user namespace and no cgroup namespace of its own the container would see (and, being root in
// its namespace, write) the cgroups above its own: such a mount is read-only whatever it asks for
// (runc's answer to CVE-2023-25809).
function cgroupMountOps(plan: Plan, o: BuildOptions, dest: string, flags: number): void {
  const forceRo = hasNamespace(o.spec, "user") && !hasNamespace(o.spec, "cgroup");
  const base = (flags & ~(MS.BIND | MS.REC)) | MS.NOSUID | MS.NODEV | MS.NOEXEC | (forceRo ? MS.RDONLY : 0);
  if (o.cgroupMode === "v2") {
    if (hasNewNamespace(o.spec, "cgroup")) {
      plan.add(Op.MOUNT, "cgroup2", dest, "cgroup2", base, "", 0, 0, 0);
    } else {
      plan.add(Op.MOUNT, o.cgroupDirs[""] ?? "/sys/fs/cgroup", dest, "", MS.BIND | MS.REC | base, "", 0, 0, 2);
    }
    return;
  }
  plan.add(Op.MOUNT, "tmpfs", dest, "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, "mode=755", 0, 0, 0);
  for (const [key, dir] of Object.entries(o.cgroupDirs)) {
    const name = key === "" ? "unified" : key.replace(/^name=/, "");
    const sub = path.posix.join(dest, name);
    plan.add(Op.MOUNT, dir, sub, "", MS.BIND | base, "", 0, 0, 0);
    // co-mounted controllers (cpu,cpuacct) are also reachable by each name, as on the host
    if (key.includes(",")) for (const c of key.split(",")) plan.add(Op.SYMLINK, name, path.posix.join(dest, c));
  }
}

export function buildPlan(o: BuildOptions): Plan {
  const { spec } = o;
  validateForLinux(spec);
  const proc = spec.process!;
  const linux = spec.linux ?? {};
  const plan = new Plan();
  const ns = namespacePlan(spec);
  const userns = hasNamespace(spec, "user");

  // ---- host context (the set-up helper)
  plan.add(Op.CLOSE_FROM, Math.max(o.syncFd, o.stateDirFd, o.consoleFd ?? 0, o.seccomp?.listener?.fd ?? 0) + 1);
  if (proc.oomScoreAdj !== undefined) plan.add(Op.WRITE_FILE, "/proc/self/oom_score_adj", String(proc.oomScoreAdj), 0);
  for (const f of o.cgroupProcs) plan.add(Op.CGROUP_JOIN, f);
  plan.add(Op.BIND_START_SOCKET, o.stateDirFd, "start.sock");

  // Join existing namespaces first (user first, mount last: paths are opened before any is joined).
  const order: NamespaceKind[] = ["user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount"];
  const joins = [...ns.join].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  for (const j of joins) plan.add(Op.OPEN_NS, NAMESPACES[j.kind].flag, j.path);
  for (const j of joins) {
    plan.add(Op.SETNS, NAMESPACES[j.kind].flag);
    if (j.kind === "user") plan.add(Op.BECOME_ROOT);
  }
  if (ns.create.includes("user")) {
    plan.add(Op.UNSHARE, CLONE.NEWUSER);
    plan.add(Op.USERMAP_SYNC);
    plan.add(Op.BECOME_ROOT);
  }
  const flags = ns.create.filter((k) => k !== "user").reduce((f, k) => f | NAMESPACES[k].flag, 0);
  if (flags) plan.add(Op.UNSHARE, flags);
  if (ns.create.includes("time") && linux.timeOffsets) {
    const lines = Object.entries(linux.timeOffsets).map(([clock, off]) => `${clock} ${off.secs ?? 0} ${off.nanosecs ?? 0}`);
    if (lines.length) plan.add(Op.WRITE_FILE, "/proc/self/timens_offsets", lines.join("\n") + "\n", 0);
  }
  rlimitOps(plan, proc);
  plan.add(Op.CLONE_INIT);
  // A procfs of the helper's own, for every later write into /proc and every fd reopened by path: the
  // container's /proc (which an image or a mount can make anything) is never used.
  plan.add(Op.OPEN_PROC);

  // ---- the init, before pivot_root
  const newMountNs = ns.create.includes("mount");
  if (!newMountNs && !ns.join.some((j) => j.kind === "mount")) throw new Error("config.json: the container needs a mount namespace");
  const rootProp: Record<string, number> = {
    private: MS.PRIVATE | MS.REC,
    rprivate: MS.PRIVATE | MS.REC,
    shared: MS.SHARED | MS.REC,
    rshared: MS.SHARED | MS.REC,
    slave: MS.SLAVE | MS.REC,
    rslave: MS.SLAVE | MS.REC,
    unbindable: MS.UNBINDABLE | MS.REC,
    runbindable: MS.UNBINDABLE | MS.REC,
  };
  plan.add(Op.ROOT_PROPAGATION, linux.rootfsPropagation ? rootProp[linux.rootfsPropagation]! : MS.SLAVE | MS.REC);
  plan.add(Op.ROOTFS, o.rootfs);
  if (ns.create.includes("network")) plan.add(Op.LOOPBACK_UP);

  const mounts = spec.mounts ?? [];
  mounts.forEach((m, i) => mountOps(plan, o, m, i));

  // /dev: unless the host's /dev is bound in, make the default nodes, the configured devices, links.
  const devBound = mounts.some((m) => path.posix.normalize(`/${m.destination}`) === "/dev" && parseMountOptions(m.options, m.type, "").bind);
  if (!devBound) {
    const seen = new Set<string>();
    const configured = linux.devices ?? [];
    for (const d of configured) seen.add(path.posix.normalize(d.path));
    for (const d of DEFAULT_DEVICES) {
      if (seen.has(d.path)) continue;
      plan.add(Op.DEVICE, d.path, S_IFCHR, 0o666, d.major, d.minor, 0, 0, userns ? 1 : 0);
    }
    configured.forEach((d, i) => {
      const p = containerPath(d.path, `config.json: linux.devices[${i}]`);
      if (!p.startsWith("/dev/")) throw new Error(`config.json: linux.devices[${i}]: path ${d.path} is not under /dev`);
      plan.add(Op.DEVICE, p, deviceType(d), d.fileMode ?? 0o666, d.major ?? 0, d.minor ?? 0, d.uid ?? 0, d.gid ?? 0, userns ? 1 : 0);
    });
    const links: [string, string][] = [
      ["/proc/self/fd", "/dev/fd"],
      ["/proc/self/fd/0", "/dev/stdin"],
      ["/proc/self/fd/1", "/dev/stdout"],
      ["/proc/self/fd/2", "/dev/stderr"],
      ["pts/ptmx", "/dev/ptmx"],
    ];
    if (fs.existsSync("/proc/kcore")) links.push(["/proc/kcore", "/dev/core"]);
    for (const [target, link] of links) plan.add(Op.SYMLINK, target, link);
  }

  const hooks = spec.hooks ?? {};
  if ((hooks.prestart?.length ?? 0) + (hooks.createRuntime?.length ?? 0) > 0) plan.add(Op.SYNC_HOOKS);
  for (const h of hooks.createContainer ?? []) hookOp(plan, "createContainer", h);

  plan.add(Op.MKDIR, containerPath(proc.cwd, "config.json: process.cwd"));
  plan.add(o.noPivot ? Op.MOVE_ROOT : Op.PIVOT_ROOT);

  // ---- the init, after pivot_root
  consoleOps(plan, proc, o.consoleFd, true);
  if (spec.root?.readonly) plan.add(Op.REMOUNT_RO, "/");
  if (spec.hostname) plan.add(Op.HOSTNAME, spec.hostname);
  if (spec.domainname) plan.add(Op.DOMAINNAME, spec.domainname);
  for (const [key, value] of Object.entries(linux.sysctl ?? {})) plan.add(Op.SYSCTL, sysctlFile(key), value);
  for (const p of linux.readonlyPaths ?? []) plan.add(Op.READONLY_PATH, p);
  for (const p of linux.maskedPaths ?? []) plan.add(Op.MASK_PATH, p);
  if (!o.noNewKeyring) plan.add(Op.KEYRING, `_ses.${o.id}`);
  if (linux.personality) plan.add(Op.PERSONALITY, PERSONALITY[linux.personality.domain]!);
  const env = processEnv(spec, o.rootfs);
  const dropAfterSeccomp = credentialOps(plan, proc, env, userns, o.warn, o.seccomp);

  // ---- wait for `tsrun start`, then exec (READY clears the parent-death signal once tsrun has recorded the
  // container: see op_ready)
  plan.add(Op.READY);
  for (const h of hooks.startContainer ?? []) hookOp(plan, "startContainer", h);
  if (o.init) plan.add(Op.INIT_REAPER);
  execOps(plan, proc, env, o.extraFds, o.seccomp, dropAfterSeccomp);
  return plan;
}

// The user process's identity, in runc's order: umask, bounding set, keep capabilities across the uid
// change, groups/gid/uid, cwd (after the uid change, so it is checked with the user's rights), the
// capability sets, the executable looked up (so a missing one fails now), no_new_privs.
export function credentialOps(plan: Plan, proc: Process, env: readonly string[], userns: boolean, warn: (m: string) => void, seccomp?: SeccompPlan): CapSets | undefined {
  const uid = proc.user?.uid ?? 0;
  const gid = proc.user?.gid ?? 0;
  plan.add(Op.UMASK, proc.user?.umask ?? 0o022);
  const warnCap = (n: string) => warn(`unknown capability ${n} ignored`);
  const caps = proc.capabilities ?? {};
  plan.add(Op.CAPS_BOUNDING, ...splitMask(capMask(caps.bounding, warnCap)));
  plan.add(Op.KEEPCAPS, 1);
  // setgroups is refused in a user namespace whose setgroups file says "deny" (rootless maps).
  const groups = proc.user?.additionalGids ?? [];
  const setgroupsDenied = userns && process.getuid?.() !== 0;
  plan.add(Op.SET_USER, uid, gid, ...(setgroupsDenied ? [-1] : Plan.list(groups)));
  plan.add(Op.CHDIR, proc.cwd);
  plan.add(Op.KEEPCAPS, 0);
  const effective = capMask(caps.effective, warnCap);
  const permitted = capMask(caps.permitted, warnCap);
  const inheritable = capMask(caps.inheritable, warnCap);
  // seccomp(2) needs no_new_privs or CAP_SYS_ADMIN. runc (standard_init_linux.go) loads the filter before
  // dropping capabilities when noNewPrivileges is false, so every set-up step after it (setuid, capset,
  // the exec lookup, the wait for start, startContainer hooks) runs under the container's filter. tsrun keeps
  // the filter last instead: the process keeps CAP_SYS_ADMIN in its effective and permitted sets until the
  // filter is loaded, right before exec, and then drops it with one capset(2) (OP_CAPSET, in execOps). So a
  // profile must allow capset and execve, as it must with runc; the user and the other capabilities are
  // already as configured while the init waits for start.
  const adminForSeccomp = seccomp !== undefined && !proc.noNewPrivileges && (effective & SYS_ADMIN) === 0n;
  const held = adminForSeccomp ? SYS_ADMIN : 0n;
  plan.add(Op.CAPS, ...splitMask(effective | held), ...splitMask(permitted | held), ...splitMask(inheritable), ...splitMask(capMask(caps.ambient, warnCap)));
  const pathEnv = env.find((e) => e.startsWith("PATH="))?.slice(5) ?? DEFAULT_PATH;
  plan.add(Op.LOOKUP_EXEC, proc.args[0]!, pathEnv);
  if (proc.noNewPrivileges) plan.add(Op.NO_NEW_PRIVS);
  return adminForSeccomp ? { effective, permitted, inheritable } : undefined;
}

export interface SeccompPlan {
  program: Buffer;
  flags: number;
  listener?: { fd: number; path: string; stateHead: string };
}

interface CapSets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

// The last steps before the user's program: default signals, blocking stdio, every fd but stdio and the
// passed ones close-on-exec, the seccomp filter last, exec.
export function execOps(plan: Plan, proc: Process, env: readonly string[], extraFds: number, seccomp?: SeccompPlan, dropAfterSeccomp?: CapSets): void {
  plan.add(Op.RESET_SIGNALS);
  for (const fd of [0, 1, 2]) plan.add(Op.CLEAR_NONBLOCK, fd);
  plan.add(Op.CLOEXEC_FROM, 3 + extraFds);
  if (seccomp) {
    plan.add(Op.SECCOMP, seccomp.program, seccomp.flags);
    // the capabilities credentialOps kept for loading the filter (CAP_SYS_ADMIN without no_new_privs)
    if (dropAfterSeccomp) plan.add(Op.CAPSET, ...splitMask(dropAfterSeccomp.effective), ...splitMask(dropAfterSeccomp.permitted), ...splitMask(dropAfterSeccomp.inheritable));
  }
  plan.add(Op.EXEC, ...Plan.list(proc.args), ...Plan.list(env));
}

export function idMapText(maps: readonly { containerID: number; hostID: number; size: number }[]): string {
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}`).join("\n") + "\n";
}

export interface ExecBuildOptions {
  spec: Spec; // the container's config
  proc: Process; // the process to start
  rootfs: string;
  // fds in the helper: 0-2 stdio, 3..3+extraFds-1 passed through, then these
  extraFds: number;
  syncFd: number;
  pidFd: number; // pidfd of the container's init
  rootFd: number; // the init's root directory (/proc/PID/root)
  consoleFd?: number;
  nsFlags: number; // CLONE_NEW* of the namespaces to join (those that differ from tsrun's own)
  cgroupProcs: string[];
  seccomp?: SeccompPlan;
  state?: string; // the container state JSON, for the seccomp notify listener
  warn: (msg: string) => void;
}

// exec: join the init's cgroups and namespaces (all at once, through its pidfd), fork so the new pid
// namespace applies, enter its root, then the same identity and exec steps as the init.
export function buildExecPlan(o: ExecBuildOptions): Plan {
  const plan = new Plan();
  const { proc } = o;
  plan.add(Op.CLOSE_FROM, Math.max(o.syncFd, o.pidFd, o.rootFd, o.consoleFd ?? 0, o.seccomp?.listener?.fd ?? 0) + 1);
  if (proc.terminal) plan.add(Op.OPEN_PROC); // tsrun's own procfs, before the container's namespaces are joined
  if (proc.oomScoreAdj !== undefined) plan.add(Op.WRITE_FILE, "/proc/self/oom_score_adj", String(proc.oomScoreAdj), 0);
  for (const f of o.cgroupProcs) plan.add(Op.CGROUP_JOIN, f);
  rlimitOps(plan, proc);
  if (o.nsFlags) plan.add(Op.SETNS_FD, o.pidFd, o.nsFlags);
  const userns = (o.nsFlags & CLONE.NEWUSER) !== 0;
  if (userns) plan.add(Op.BECOME_ROOT);
  plan.add(Op.CLONE_INIT);
  plan.add(Op.ENTER_ROOT, o.rootFd);
  consoleOps(plan, proc, o.consoleFd, false);
  const env = [...(proc.env ?? [])];
  if (!env.some((e) => e.startsWith("HOME="))) env.push(`HOME=${homeOf(o.rootfs, proc.user?.uid ?? 0)}`);
  const dropAfterSeccomp = credentialOps(plan, proc, env, userns || hasNamespace(o.spec, "user"), o.warn, o.seccomp);
  if (o.spec.linux?.personality) plan.add(Op.PERSONALITY, PERSONALITY[o.spec.linux.personality.domain]!);
  plan.add(Op.PDEATHSIG, 0);
  if (o.state !== undefined) plan.add(Op.SET_STATE, o.state);
  execOps(plan, proc, env, o.extraFds, o.seccomp, dropAfterSeccomp);
  return plan;
}
