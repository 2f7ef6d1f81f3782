// spec -> plan: every decision about how a config.json becomes syscalls is made here, in order, as data
// the helper executes. The order follows runc (nsexec + standard_init) so behaviour carries over:
//   host context:   close stray fds, oom_score_adj, cgroups, join namespaces, user namespace + maps,
//                   new namespaces, time offsets, rlimits, clone the init;
//   init, pre-pivot: a procfs of its own, propagation, rootfs bind, lo up, mounts, /dev,
//                   prestart/createRuntime (via tsrun), createContainer hooks, pivot_root;
//   init, post-pivot: console, read-only root, hostname, sysctl, readonly/masked paths, keyring (under
//                   the SELinux label), personality, cwd (as root), umask, scheduler, I/O priority,
//                   bounding set, user, cwd (as the user, if root was refused), capabilities, executable
//                   lookup, NNP, the AppArmor profile and SELinux label for exec;
//   wait for start: (seccomp first if there are startContainer hooks) startContainer hooks, signals, fds,
//                   seccomp (+ notify listener), exec.
// Pure: the spec has passed validateSpec (src/spec/validate.ts) and what the plan depends on in the host
// comes in as HostFacts (src/plan/host.ts); the same arguments give the same plan. What it throws is an
// internal invariant, never a rule of config.json.
import * as path from "path";
import type { Hook, LinuxDevice, Mount, Process, Spec } from "../spec/schema";
import type { HostFacts, LsmFacts, ProcessFacts } from "./host";
import { CLONE, NAMESPACES, NamespaceKind, MS, MPOL_FLAGS, MPOL_MODES, PERSONALITY, RLIMITS, capMask, sysctlFile } from "./linux";
import { containerPath, idmapOf, mountPoint, parseMountOptions, PROPAGATION } from "./mounts";
import { Op } from "./opcodes";
import { FLAGS } from "./protocol";
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
  // The compiled filter (with SCMP_ACT_NOTIFY, tsrun-init hands the notify fd back to tsrun).
  seccomp?: SeccompPlan;
  init?: boolean; // --init: a reaping PID 1 in front of the user process
  host: HostFacts; // hostFacts(spec, bundle, rootfs)
  warn: (msg: string) => void;
}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const CHDIR_AS_ROOT = FLAGS.CHDIR.values.AS_ROOT;
const CHDIR_AS_USER = FLAGS.CHDIR.values.AS_USER;
const AFFINITY = FLAGS.AFFINITY.values;

// process.scheduler and process.ioPriority as the kernel numbers them (runc's ToSchedAttr, setupIOPriority)
const SCHED_POLICIES: Record<string, number> = { SCHED_OTHER: 0, SCHED_FIFO: 1, SCHED_RR: 2, SCHED_BATCH: 3, SCHED_ISO: 4, SCHED_IDLE: 5, SCHED_DEADLINE: 6 };
const SCHED_FLAGS: Record<string, number> = {
  SCHED_FLAG_RESET_ON_FORK: 0x01,
  SCHED_FLAG_RECLAIM: 0x02,
  SCHED_FLAG_DL_OVERRUN: 0x04,
  SCHED_FLAG_KEEP_POLICY: 0x08,
  SCHED_FLAG_KEEP_PARAMS: 0x10,
  SCHED_FLAG_UTIL_CLAMP_MIN: 0x20,
  SCHED_FLAG_UTIL_CLAMP_MAX: 0x40,
};
const IOPRIO_CLASSES: Record<string, number> = { IOPRIO_CLASS_RT: 1, IOPRIO_CLASS_BE: 2, IOPRIO_CLASS_IDLE: 3 };

function cpusetOf(spec: Spec): boolean {
  return !!spec.linux?.resources?.cpu?.cpus;
}

// The highest CPU a list may name (runc's configs.MaxCPU).
export const MAX_CPU = 64 * 1024;

// A CPU list ("0-3,5,7-9", spaces and empty elements allowed) as a cpu_set_t mask, as runc's ToCPUSet;
// undefined for an empty list. Throws runc's words for a bad one.
export function cpuListMask(list: string | undefined): Buffer | undefined {
  if (!list) return undefined;
  const ranges: [number, number][] = [];
  const toInt = (v: string): number => {
    if (!/^[0-9]+$/.test(v)) throw new Error(`strconv.ParseUint: parsing ${JSON.stringify(v)}: invalid syntax`);
    const n = Number(v);
    if (n > MAX_CPU) throw new Error(`values larger than ${MAX_CPU} are not supported`);
    return n;
  };
  for (const raw of list.split(",")) {
    const r = raw.trim();
    if (r === "") continue;
    const dash = r.indexOf("-");
    const start = toInt(dash < 0 ? r : r.slice(0, dash));
    const end = dash < 0 ? start : toInt(r.slice(dash + 1));
    if (start > end) throw new Error(`invalid range: ${r}`);
    ranges.push([start, end]);
  }
  if (ranges.length === 0) throw new Error(`no members found in set ${JSON.stringify(list)}`);
  const max = Math.max(...ranges.map(([, e]) => e));
  const mask = Buffer.alloc(Math.ceil((max + 1) / 64) * 8);
  for (const [a, b] of ranges) for (let c = a; c <= b; c++) mask[c >> 3]! |= 1 << (c & 7);
  return mask;
}

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

function consoleOps(plan: Plan, proc: Process, consoleFd: number | undefined, bindConsole: boolean): void {
  if (!proc.terminal) return;
  if (consoleFd === undefined) throw new Error("internal: process.terminal is true but the plan has no console fd");
  plan.add(Op.CONSOLE, consoleFd, proc.consoleSize?.height ?? 0, proc.consoleSize?.width ?? 0, proc.user?.uid ?? 0, bindConsole ? 1 : 0);
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

// HOME from the container's /etc/passwd (HostFacts.home) when process.env has none, as runc.
export function processEnv(proc: Process, host: ProcessFacts): string[] {
  const env = [...(proc.env ?? [])];
  if (!env.some((e) => e.startsWith("HOME="))) env.push(`HOME=${host.home}`);
  return env;
}

// Returns the destination when the mount is to be made read-only at the end (see readOnlyLater).
function mountOps(plan: Plan, o: BuildOptions, m: Mount, index: number, tree: { slot: number; fallback: boolean } | undefined): string | undefined {
  const where = `config.json: mounts[${index}]`;
  const dest = mountPoint(m.destination, where);
  const parsed = parseMountOptions(m.options, m.type, where);
  if (m.type === "cgroup" || m.type === "cgroup2") return cgroupMountOps(plan, o, dest, parsed.flags);
  parsed.data = mountLabelData(m.type, parsed.bind, parsed.data, o.spec.linux?.mountLabel);
  // runc (mountPropagate/finalizeRootfs): a read-only tmpfs, or a read-only mount on /dev, is mounted
  // read-write and remounted read-only after pivot_root, once /dev's nodes, links and submounts and what a
  // tmpfs needs are in place.
  const later = (parsed.flags & MS.RDONLY) !== 0 && (parsed.flags & MS.REMOUNT) === 0 && (m.type === "tmpfs" || dest === "/dev");
  if (later) parsed.flags &= ~MS.RDONLY;
  let source = m.source ?? "";
  if (parsed.bind && !path.isAbsolute(source)) source = path.join(o.bundle, source);
  const kind = parsed.bind ? 2 : 0;
  // procfs and sysfs go on an ordinary directory only, never through a symlink (runc: "must be mounted on
  // ordinary directory"), and the helper checks afterwards that the new filesystem is what sits there.
  const ordinary = !parsed.bind && (m.type === "proc" || m.type === "sysfs");
  plan.add(Op.MOUNT, source, dest, m.type ?? "", parsed.flags, parsed.data, parsed.propagation, kind, (parsed.recursive ? 2 : 0) | (parsed.tmpcopyup ? 4 : 0) | (ordinary ? 8 : 0) | (tree?.fallback ? 16 : 0), parsed.recSet, parsed.recClr, tree?.slot ?? -1);
  mqueueLabelOps(plan, m.type, parsed.bind, dest, o.spec.linux?.mountLabel, o.host.lsm);
  return later ? dest : undefined;
}

// Binds prepared on the host, before any namespace is entered or made (runc's mount sources, made by its
// host-side thread): an idmapped bind, whose MOUNT_ATTR_IDMAP only the host's root may set; and, in a
// container with a user namespace made by root, every bind, as the fallback for a source the container's
// root cannot reach (a path under a directory closed to it). Returns each such mount's tree slot and
// whether it is a fallback, by its index in config.json's mounts.
function treeOps(plan: Plan, o: BuildOptions): Map<number, { slot: number; fallback: boolean }> {
  const slots = new Map<number, { slot: number; fallback: boolean }>();
  const { spec } = o;
  const userns = hasNamespace(spec, "user") && o.host.uid === 0;
  (spec.mounts ?? []).forEach((m, i) => {
    if (m.type === "cgroup" || m.type === "cgroup2") return;
    const where = `config.json: mounts[${i}]`;
    const parsed = parseMountOptions(m.options, m.type, where);
    const idmap = idmapOf(spec, m, parsed.idmap);
    if (!idmap && !(userns && parsed.bind)) return;
    const source = path.isAbsolute(m.source ?? "") ? m.source! : path.join(o.bundle, m.source ?? "");
    const flags = parsed.flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
    const slot = slots.size;
    const mode = idmap ? (idmap.recursive ? 2 : 1) : 0;
    plan.add(Op.OPEN_TREE, source, slot, parsed.recursive ? 1 : 0, flags, parsed.recSet, parsed.recClr, mode, idmap?.uid ?? "", idmap?.gid ?? "", idmap?.userns ?? "");
    slots.set(i, { slot, fallback: !idmap });
  });
  return slots;
}

// A "cgroup" mount shows the container its own cgroups: on v2 a cgroup2 mount (rooted at the container's
// cgroup when it has a cgroup namespace); on v1/hybrid a tmpfs with each hierarchy's container directory
// bound in, read-only unless the mount asks for rw (but see below); a read-only one's tmpfs is remounted
// read-only too once the binds are in (returned: readOnlyLater), as runc's mountCgroupV1.
// With a user namespace and no cgroup namespace of its own the container would see (and, being root in
// its namespace, write) the cgroups above its own: such a mount is read-only whatever it asks for
// (runc's answer to CVE-2023-25809).
function cgroupMountOps(plan: Plan, o: BuildOptions, dest: string, flags: number): string | undefined {
  const forceRo = hasNamespace(o.spec, "user") && !hasNamespace(o.spec, "cgroup");
  const base = (flags & ~(MS.BIND | MS.REC)) | MS.NOSUID | MS.NODEV | MS.NOEXEC | (forceRo ? MS.RDONLY : 0);
  if (o.cgroupMode === "v2") {
    if (hasNewNamespace(o.spec, "cgroup")) {
      plan.add(Op.MOUNT, "cgroup2", dest, "cgroup2", base, "", 0, 0, 0, 0, 0, -1);
    } else {
      plan.add(Op.MOUNT, o.cgroupDirs[""] ?? "/sys/fs/cgroup", dest, "", MS.BIND | MS.REC | base, "", 0, 0, 2, 0, 0, -1);
    }
    return undefined;
  }
  plan.add(Op.MOUNT, "tmpfs", dest, "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, formatMountLabel("mode=755", o.spec.linux?.mountLabel), 0, 0, 0, 0, 0, -1);
  for (const [key, dir] of Object.entries(o.cgroupDirs)) {
    const name = key === "" ? "unified" : key.replace(/^name=/, "");
    const sub = path.posix.join(dest, name);
    plan.add(Op.MOUNT, dir, sub, "", MS.BIND | base, "", 0, 0, 0, 0, 0, -1);
    // co-mounted controllers (cpu,cpuacct) are also reachable by each name, as on the host
    if (key.includes(",")) for (const c of key.split(",")) plan.add(Op.SYMLINK, name, path.posix.join(dest, c));
  }
  return base & MS.RDONLY ? dest : undefined;
}

export function buildPlan(o: BuildOptions): Plan {
  const { spec } = o;
  const proc = spec.process;
  if (!proc) throw new Error("internal: buildPlan needs a validated config (process is missing)");
  const linux = spec.linux ?? {};
  const plan = new Plan();
  const ns = namespacePlan(spec);
  const userns = hasNamespace(spec, "user");

  // ---- host context (the set-up helper)
  plan.add(Op.CLOSE_FROM, Math.max(o.syncFd, o.stateDirFd, o.consoleFd ?? 0) + 1);
  lsmHostOps(plan, o.host.lsm);
  if (proc.oomScoreAdj !== undefined) plan.add(Op.WRITE_FILE, "/proc/self/oom_score_adj", String(proc.oomScoreAdj), 0);
  for (const f of o.cgroupProcs) plan.add(Op.CGROUP_JOIN, f);
  // every CPU (within the container's cpuset), not tsrun's own affinity, as runc's tryResetCPUAffinity
  plan.add(Op.CPU_AFFINITY, Buffer.alloc(0), AFFINITY.RESET);
  plan.add(Op.BIND_START_SOCKET, o.stateDirFd, "start.sock");
  const trees = treeOps(plan, o);

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
  // linux.rootfsPropagation as runc (1.4) applies it: on "/" of the new mount namespace first (the default
  // rslave), the rootfs's parent mount made slave (slave, rslave) or private (anything else) so the bind
  // below neither leaks to the host nor blocks pivot_root, and shared/unbindable once more on the
  // container's own root after pivot_root.
  // No mount namespace (validateSpec then refuses mounts, root.readonly, masked and read-only paths): the
  // host's mount table is left alone and the root is entered by chroot.
  const mountns = hasNamespace(spec, "mount");
  const rootProp = linux.rootfsPropagation ? PROPAGATION[linux.rootfsPropagation]! : 0;
  if (mountns) {
    plan.add(Op.ROOT_PROPAGATION, rootProp || MS.SLAVE | MS.REC);
    plan.add(Op.ROOTFS, o.rootfs, rootProp & MS.SLAVE ? MS.SLAVE : MS.PRIVATE);
  } else {
    plan.add(Op.ROOT_DIR, o.rootfs);
  }
  if (ns.create.includes("network")) plan.add(Op.LOOPBACK_UP);

  const mounts = spec.mounts ?? [];
  const readOnlyLater = mounts.flatMap((m, i) => mountOps(plan, o, m, i, trees.get(i)) ?? []);

  // /dev: unless the host's /dev is bound in, make the default nodes, the configured devices, links.
  const devBound = mounts.some((m) => path.posix.normalize(`/${m.destination}`) === "/dev" && parseMountOptions(m.options, m.type, "").bind);
  if (!devBound) {
    // (runc's createDevices: bound from the host in a user namespace, the container's or tsrun's own)
    const bindDevices = userns || o.host.inUserNamespace === true;
    const seen = new Set<string>();
    const configured = linux.devices ?? [];
    for (const d of configured) seen.add(path.posix.normalize(d.path));
    for (const d of DEFAULT_DEVICES) {
      if (seen.has(d.path)) continue;
      plan.add(Op.DEVICE, d.path, S_IFCHR, 0o666, d.major, d.minor, 0, 0, bindDevices ? 1 : 0);
    }
    configured.forEach((d, i) => {
      const p = containerPath(d.path, `config.json: linux.devices[${i}]`);
      plan.add(Op.DEVICE, p, deviceType(d), d.fileMode ?? 0o666, d.major ?? 0, d.minor ?? 0, d.uid ?? 0, d.gid ?? 0, bindDevices ? 1 : 0);
    });
    const links: [string, string][] = [
      ["/proc/self/fd", "/dev/fd"],
      ["/proc/self/fd/0", "/dev/stdin"],
      ["/proc/self/fd/1", "/dev/stdout"],
      ["/proc/self/fd/2", "/dev/stderr"],
      ["pts/ptmx", "/dev/ptmx"],
    ];
    if (o.host.hasKcore) links.push(["/proc/kcore", "/dev/core"]);
    for (const [target, link] of links) plan.add(Op.SYMLINK, target, link);
  }

  const hooks = spec.hooks ?? {};
  // linux.netDevices are moved into the init's network namespace by tsrun at this sync too, before the
  // hooks (runc's setupNetworkDevices, before its prestart/createRuntime hooks)
  const netDevices = Object.keys(linux.netDevices ?? {}).length > 0;
  if ((hooks.prestart?.length ?? 0) + (hooks.createRuntime?.length ?? 0) > 0 || netDevices) plan.add(Op.SYNC_HOOKS);
  for (const h of hooks.createContainer ?? []) hookOp(plan, "createContainer", h);

  plan.add(Op.MKDIR, containerPath(proc.cwd, "config.json: process.cwd"));
  plan.add(!mountns ? Op.CHROOT : o.noPivot ? Op.MOVE_ROOT : Op.PIVOT_ROOT);
  if (mountns && rootProp && !(rootProp & (MS.PRIVATE | MS.SLAVE))) plan.add(Op.ROOT_PROPAGATION, rootProp);

  // ---- the init, after pivot_root
  consoleOps(plan, proc, o.consoleFd, mountns); // (no /dev/console bind without a mount namespace)
  for (const dest of readOnlyLater) plan.add(Op.REMOUNT_RO, dest);
  if (spec.root?.readonly) plan.add(Op.REMOUNT_RO, "/");
  if (spec.hostname) plan.add(Op.HOSTNAME, spec.hostname);
  if (spec.domainname) plan.add(Op.DOMAINNAME, spec.domainname);
  for (const [key, value] of Object.entries(linux.sysctl ?? {})) plan.add(Op.SYSCTL, sysctlFile(key), value);
  for (const p of linux.readonlyPaths ?? []) plan.add(Op.READONLY_PATH, p);
  if (linux.mountLabel && (linux.maskedPaths?.length ?? 0) > 0) plan.add(Op.MASK_TMPFS_DATA, formatMountLabel("", linux.mountLabel));
  for (const p of linux.maskedPaths ?? []) plan.add(Op.MASK_PATH, p);
  if (!o.noNewKeyring) keyringOps(plan, `_ses.${o.id}`, proc);
  if (linux.personality) plan.add(Op.PERSONALITY, PERSONALITY[linux.personality.domain]!);
  memoryPolicyOps(plan, spec);
  const env = processEnv(proc, o.host);
  const dropAfterSeccomp = credentialOps(plan, proc, env, userns, o.host, o.warn, o.seccomp, cpusetOf(spec));
  // (before READY: the helper's procfs is closed while the init waits for start)
  lsmExecOps(plan, proc, o.host.lsm);

  // ---- wait for `tsrun start`, then exec (READY clears the parent-death signal once tsrun has recorded the
  // container: see op_ready)
  plan.add(Op.READY);
  // startContainer hooks run under the container's filter, as in runc (standard_init_linux.go loads it
  // before they run), with the process's environment unless they have one of their own (runc's
  // SetDefaultEnv).
  // So does --init's reaper, like Docker's tini inside the container: the filter is loaded before it forks.
  const startHooks = hooks.startContainer ?? [];
  const filterFirst = o.seccomp !== undefined && (startHooks.length > 0 || o.init);
  if (filterFirst) seccompOps(plan, o.seccomp!, dropAfterSeccomp);
  for (const h of startHooks) hookOp(plan, "startContainer", h.env === undefined ? { ...h, env: env.slice() } : h);
  if (o.init) plan.add(Op.INIT_REAPER);
  execOps(plan, proc, env, o.extraFds, filterFirst ? undefined : o.seccomp, dropAfterSeccomp);
  return plan;
}

// The user process's identity, in runc's order (finalizeNamespace): cwd as root, umask, scheduler and I/O
// priority, bounding set, keep capabilities across the uid change, groups/gid/uid, cwd again as the user if
// root was refused it, the capability sets, the executable looked up (so a missing one fails now),
// no_new_privs.
export function credentialOps(plan: Plan, proc: Process, env: readonly string[], userns: boolean, host: ProcessFacts, warn: (m: string) => void, seccomp?: SeccompPlan, cpuset = false): CapSets | undefined {
  const uid = proc.user?.uid ?? 0;
  const gid = proc.user?.gid ?? 0;
  plan.add(Op.CHDIR, proc.cwd, CHDIR_AS_ROOT);
  plan.add(Op.UMASK, proc.user?.umask ?? 0o022);
  // as root, before the user is set (runc: setupScheduler, setupIOPriority)
  const sc = proc.scheduler;
  if (sc) {
    const flags = (sc.flags ?? []).reduce((f, n) => f | SCHED_FLAGS[n]!, 0);
    plan.add(Op.SCHED_ATTR, SCHED_POLICIES[sc.policy]!, flags, sc.nice ?? 0, sc.priority ?? 0, sc.runtime ?? 0, sc.deadline ?? 0, sc.period ?? 0, cpuset ? 1 : 0);
  }
  if (proc.ioPriority) plan.add(Op.IOPRIO, (IOPRIO_CLASSES[proc.ioPriority.class]! << 13) | (proc.ioPriority.priority ?? 0));
  const warnCap = (n: string) => warn(`unknown capability ${n} ignored`);
  const caps = proc.capabilities ?? {};
  plan.add(Op.CAPS_BOUNDING, ...splitMask(capMask(caps.bounding, warnCap)));
  plan.add(Op.KEEPCAPS, 1);
  // setgroups is refused in a user namespace whose setgroups file says "deny" (rootless maps).
  const groups = proc.user?.additionalGids ?? [];
  const setgroupsDenied = userns && host.uid !== 0;
  plan.add(Op.SET_USER, uid, gid, ...(setgroupsDenied ? [-1] : Plan.list(groups)));
  plan.add(Op.CHDIR, proc.cwd, CHDIR_AS_USER);
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

// linux.memoryPolicy: set_mempolicy(2) after the personality, in the init and in every exec (runc's
// setupMemoryPolicy in standard_init and setns_init), inherited by what the process execs.
function memoryPolicyOps(plan: Plan, spec: Spec): void {
  const mp = spec.linux?.memoryPolicy;
  if (!mp) return;
  const mode = (mp.flags ?? []).reduce((m, f) => m | MPOL_FLAGS[f]!, MPOL_MODES[mp.mode]!);
  plan.add(Op.MEMPOLICY, mode, cpuListMask(mp.nodes) ?? Buffer.alloc(0));
}

export interface SeccompPlan {
  program: Buffer;
  flags: number;
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
  if (seccomp) seccompOps(plan, seccomp, dropAfterSeccomp);
  plan.add(Op.EXEC, ...Plan.list(proc.args), ...Plan.list(env));
}

function seccompOps(plan: Plan, seccomp: SeccompPlan, dropAfterSeccomp?: CapSets): void {
  plan.add(Op.SECCOMP, seccomp.program, seccomp.flags);
  // the capabilities credentialOps kept for loading the filter (CAP_SYS_ADMIN without no_new_privs)
  if (dropAfterSeccomp) plan.add(Op.CAPSET, ...splitMask(dropAfterSeccomp.effective), ...splitMask(dropAfterSeccomp.permitted), ...splitMask(dropAfterSeccomp.inheritable));
}

export function idMapText(maps: readonly { containerID: number; hostID: number; size: number }[]): string {
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}`).join("\n") + "\n";
}

export interface ExecBuildOptions {
  spec: Spec; // the container's config
  proc: Process; // the process to start
  host: ProcessFacts; // processFacts(rootfs, proc)
  // fds in the helper: 0-2 stdio, 3..3+extraFds-1 passed through, then these
  extraFds: number;
  syncFd: number;
  pidFd: number; // pidfd of the container's init
  rootFd: number; // the init's root directory (/proc/PID/root)
  consoleFd?: number;
  nsFlags: number; // CLONE_NEW* of the namespaces to join (those that differ from tsrun's own)
  cgroupProcs: string[];
  seccomp?: SeccompPlan;
  warn: (msg: string) => void;
}

// exec: join the init's cgroups and namespaces (all at once, through its pidfd), fork so the new pid
// namespace applies, enter its root, then the same identity and exec steps as the init.
export function buildExecPlan(o: ExecBuildOptions): Plan {
  const plan = new Plan();
  const { proc } = o;
  plan.add(Op.CLOSE_FROM, Math.max(o.syncFd, o.pidFd, o.rootFd, o.consoleFd ?? 0) + 1);
  lsmHostOps(plan, o.host.lsm);
  // tsrun's own procfs, before the container's namespaces are joined (the pty, the LSM attributes)
  if (proc.terminal || needsLsmAttrs(proc)) plan.add(Op.OPEN_PROC);
  if (proc.oomScoreAdj !== undefined) plan.add(Op.WRITE_FILE, "/proc/self/oom_score_adj", String(proc.oomScoreAdj), 0);
  // execCPUAffinity (process.json's, else the container's), runc 1.2+: started on `initial`, moved to
  // `final` once in the container's cgroup; with neither, reset to every CPU.
  const affinity = proc.execCPUAffinity ?? o.spec.process?.execCPUAffinity;
  const initial = cpuListMask(affinity?.initial);
  const final = cpuListMask(affinity?.final);
  if (initial) plan.add(Op.CPU_AFFINITY, initial, AFFINITY.INITIAL);
  for (const f of o.cgroupProcs) plan.add(Op.CGROUP_JOIN, f);
  if (final) plan.add(Op.CPU_AFFINITY, final, AFFINITY.FINAL);
  else if (!initial) plan.add(Op.CPU_AFFINITY, Buffer.alloc(0), AFFINITY.RESET);
  rlimitOps(plan, proc);
  if (o.nsFlags) plan.add(Op.SETNS_FD, o.pidFd, o.nsFlags);
  const userns = (o.nsFlags & CLONE.NEWUSER) !== 0;
  if (userns) plan.add(Op.BECOME_ROOT);
  plan.add(Op.CLONE_INIT);
  plan.add(Op.ENTER_ROOT, o.rootFd);
  consoleOps(plan, proc, o.consoleFd, false);
  const env = processEnv(proc, o.host);
  // the container's scheduler and I/O priority unless process.json has its own (runc)
  const sched: Process = { ...proc };
  const scheduler = proc.scheduler ?? o.spec.process?.scheduler;
  const ioPriority = proc.ioPriority ?? o.spec.process?.ioPriority;
  if (scheduler) sched.scheduler = scheduler;
  if (ioPriority) sched.ioPriority = ioPriority;
  const dropAfterSeccomp = credentialOps(plan, sched, env, userns || hasNamespace(o.spec, "user"), o.host, o.warn, o.seccomp, cpusetOf(o.spec));
  if (o.spec.linux?.personality) plan.add(Op.PERSONALITY, PERSONALITY[o.spec.linux.personality.domain]!);
  memoryPolicyOps(plan, o.spec);
  plan.add(Op.PDEATHSIG, 0);
  lsmExecOps(plan, proc, o.host.lsm);
  execOps(plan, proc, env, o.extraFds, o.seccomp, dropAfterSeccomp);
  return plan;
}

// ---- AppArmor and SELinux, as runc applies them (apparmor.ApplyProfile, go-selinux's SetExecLabel and
// SetKeyLabel, label.FormatMountLabel and SetFileLabel). The helper writes each attribute of the container
// process through its own procfs (native/helper/lsm.cc).

// linux.mountLabel added to a mount's data as runc's label.FormatMountLabel writes it: the other options,
// then context="<label>" (Go's %q). runc adds it whether SELinux is enabled or not (a kernel without
// SELinux then refuses the mount, as it refuses runc's).
export function formatMountLabel(data: string, label: string | undefined): string {
  if (!label) return data;
  const opt = `context=${JSON.stringify(label)}`;
  return data ? `${data},${opt}` : opt;
}

// The mounts runc labels (mountToRootfs): a new filesystem of any type but proc, sysfs and mqueue (mqueue
// gets the label as an attribute of its root instead, below); a bind takes no mount data (open_tree).
function mountLabelData(type: string | undefined, bind: boolean, data: string, label: string | undefined): string {
  if (bind || type === "proc" || type === "sysfs" || type === "mqueue") return data;
  return formatMountLabel(data, label);
}

// An mqueue mount's root labelled after the mount (runc: label.SetFileLabel, which does nothing when
// SELinux is disabled).
function mqueueLabelOps(plan: Plan, type: string | undefined, bind: boolean, dest: string, label: string | undefined, lsm: LsmFacts | undefined): void {
  if (type === "mqueue" && !bind && label && lsm?.selinux) plan.add(Op.FILE_LABEL, dest, label);
}

// Tests only: the attributes go to files of a host directory (HostFacts.lsm.attrDir), opened now.
function lsmHostOps(plan: Plan, lsm: LsmFacts | undefined): void {
  if (lsm?.attrDir) plan.add(Op.LSM_ATTR_DIR, lsm.attrDir);
}

function needsLsmAttrs(proc: Process): boolean {
  return !!proc.apparmorProfile || !!proc.selinuxLabel;
}

// The session keyring created under the process's SELinux label (runc: SetKeyLabel before joining it, reset
// after).
function keyringOps(plan: Plan, name: string, proc: Process): void {
  const label = proc.selinuxLabel;
  if (label) plan.add(Op.LSM_ATTR, "keycreate", label, "set keyring label");
  plan.add(Op.KEYRING, name);
  if (label) plan.add(Op.LSM_ATTR, "keycreate", "", "reset keyring label");
}

// The profile and the label the process gets at execve: written once everything that needs privileges is
// done (the user, the capabilities, no_new_privs), before the filter (which may refuse the writes) and
// before the wait for start (create) or exec. AppArmor's "exec <profile>" is aa_change_onexec's; an empty
// profile is no profile (runc).
function lsmExecOps(plan: Plan, proc: Process, lsm: LsmFacts | undefined): void {
  const profile = proc.apparmorProfile;
  if (profile) plan.add(Op.LSM_ATTR, lsm?.apparmorAttr ?? "apparmor/exec", `exec ${profile}`, `unable to apply apparmor profile ${profile}`);
  const label = proc.selinuxLabel;
  if (label) plan.add(Op.LSM_ATTR, "exec", label, "can't set process label");
}
