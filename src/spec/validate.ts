// The one validation step: every rule of a config.json (create) or a process (exec) that the schema
// cannot check field by field, run before anything exists on the host (no state directory, cgroup,
// socket or process). Each refusal is one line, a TsrunError, worded as runc words it where runc has
// the rule. What it needs to know of the host comes in as HostFacts (src/plan/host.ts); it reads nothing.
// buildPlan assumes a config that passed: what it still throws is an internal invariant.
import * as path from "path";
import { TsrunError, messageOf } from "../errors";
import type { HostFacts, LsmFacts } from "../plan/host";
import { MPOL_FLAGS, MPOL_MODES, type NamespaceKind, sysctlDotted, sysctlFile } from "../plan/linux";
import { cpuListMask } from "../plan/build";
import { containerPath, idmapOf, mountPoint, parseMountOptions } from "../plan/mounts";
import type { Mount, Process, Spec } from "./schema";

// How the pty master of a process with process.terminal gets out.
export interface ConsoleRoute {
  socket: boolean; // --console-socket was given
  receiver: boolean; // tsrun takes the master itself: run in the foreground, exec without -d, the shim
}

// create: config.json as a whole. Throws the first rule broken.
export function validateSpec(spec: Spec, host: HostFacts, console: ConsoleRoute): void {
  oneLine(() => {
    specRules(spec, host);
    if (host.uid !== 0) rootlessRules(spec);
    consoleRules(spec.process!, console);
  });
}

// exec: the process to start in a running container.
export function validateProcess(proc: Process, console: ConsoleRoute, lsm?: LsmFacts): void {
  oneLine(() => {
    processRules(proc, "exec", lsm);
    consoleRules(proc, console);
  });
}

function oneLine(f: () => void): void {
  try {
    f();
  } catch (e) {
    throw e instanceof TsrunError ? e : new TsrunError(messageOf(e), "INVALID_CONFIG"); // the mount parsers throw Error
  }
}

function fail(message: string, code: "INVALID_CONFIG" | "INVALID_ARGUMENT" = "INVALID_CONFIG"): never {
  throw new TsrunError(message, code);
}

function hasNamespace(spec: Spec, kind: NamespaceKind): boolean {
  return (spec.linux?.namespaces ?? []).some((n) => n.type === kind);
}

function hasNewNamespace(spec: Spec, kind: NamespaceKind): boolean {
  return (spec.linux?.namespaces ?? []).some((n) => n.type === kind && !n.path);
}

function specRules(spec: Spec, host: HostFacts): void {
  if (!spec.process) fail("config.json: process is required to create a container");
  // runc (configs/validate: uts()): a uts namespace in the config, new or joined by a path, where the names
  // are then set. One joined by a path that is tsrun's own (HostFacts.sharedNamespaces) would rename the
  // host: refused in the same words.
  const ownUts = hasNamespace(spec, "uts") && !(host.sharedNamespaces.includes("uts") && !hasNewNamespace(spec, "uts"));
  if (spec.hostname && !ownUts) fail("config.json: unable to set hostname without a private UTS namespace");
  if (spec.domainname && !ownUts) fail("config.json: unable to set domainname without a private UTS namespace");
  const linux = spec.linux;
  if (linux?.timeOffsets && Object.keys(linux.timeOffsets).length > 0 && !hasNewNamespace(spec, "time"))
    fail("config.json: linux.timeOffsets is set but the container has no new time namespace");
  const userns = hasNamespace(spec, "user");
  if (hasNewNamespace(spec, "user") && !(linux?.uidMappings?.length && linux?.gidMappings?.length))
    fail("config.json: a new user namespace needs linux.uidMappings and linux.gidMappings");
  if (!userns && (linux?.uidMappings?.length || linux?.gidMappings?.length)) fail("config.json: linux.uidMappings are set but there is no user namespace");
  for (const key of Object.keys(linux?.sysctl ?? {})) {
    const why = sysctlRefusal(spec, key, host.sharedNamespaces);
    if (why) fail(`config.json: linux.sysctl: ${why}`);
  }
  processRules(spec.process, "config.json", host.lsm);
  // runc warns and ignores the flags; runtime-spec defines none and says an unsupported value MUST be an
  // error (spec-tests config.linux.personality.flags): refused
  if (linux?.personality?.flags && linux.personality.flags.length > 0) fail("config.json: linux.personality.flags: no personality flag is defined (runtime-spec), so none can be applied");
  if (linux?.intelRdt) fail("config.json: linux.intelRdt is not supported by tsrun");
  memoryPolicyRules(spec);
  netDeviceRules(spec, host);
  const mounts = spec.mounts ?? [];
  mounts.forEach((m, i) => {
    idmapRules(spec, m, `config.json: mounts[${i}]`, host);
    // (parses the options and the destination: an unknown r* option, tmpcopyup on a non-tmpfs and a
    // destination above the root are refused here)
    const why = procMountRefusal(m, `config.json: mounts[${i}]`, host.bindSources[m.source ?? ""]?.procfs === true);
    if (why) fail(`config.json: mounts[${i}]: check proc-safety of ${m.destination} mount: ${why}`);
  });
  if (!hasNamespace(spec, "mount")) noMountNamespaceRules(spec);
  mounts.forEach((m, i) => {
    if (m.type === "cgroup" || m.type === "cgroup2") return; // made by tsrun from the container's cgroups
    const where = `config.json: mounts[${i}]`;
    if (!parseMountOptions(m.options, m.type, where).bind) return;
    if (!m.source) fail(`${where}: a bind mount needs a source`);
    const source = host.bindSources[m.source];
    if (!source?.exists) fail(`${where}: bind source ${source?.path ?? m.source} does not exist`);
  });
  // The configured devices are made unless the host's /dev is bound in.
  const devBound = mounts.some((m) => path.posix.normalize(`/${m.destination}`) === "/dev" && parseMountOptions(m.options, m.type, "").bind);
  if (!devBound) {
    (linux?.devices ?? []).forEach((d, i) => {
      const p = containerPath(d.path, `config.json: linux.devices[${i}]`);
      if (!p.startsWith("/dev/")) fail(`config.json: linux.devices[${i}]: path ${d.path} is not under /dev`);
    });
  }
  containerPath(spec.process.cwd, "config.json: process.cwd");
}

// linux.memoryPolicy (runtime-spec 1.3), in runc's words: specconv (an unknown mode or flag, a bad node
// list) and configs/validate memoryPolicy() (how many nodes each mode takes).
function memoryPolicyRules(spec: Spec): void {
  const mp = spec.linux?.memoryPolicy;
  if (!mp) return;
  if (MPOL_MODES[mp.mode] === undefined) fail(`config.json: invalid memory policy mode ${JSON.stringify(mp.mode)}`);
  let nodes: Buffer | undefined;
  try {
    nodes = cpuListMask(mp.nodes);
  } catch (e) {
    fail(`config.json: invalid memory policy nodes ${JSON.stringify(mp.nodes)}: ${messageOf(e)}`);
  }
  for (const f of mp.flags ?? []) if (MPOL_FLAGS[f] === undefined) fail(`config.json: invalid memory policy flag ${JSON.stringify(f)}`);
  const count = nodes ? [...nodes].reduce((n, byte) => n + popcount(byte), 0) : 0;
  switch (mp.mode) {
    case "MPOL_DEFAULT":
    case "MPOL_LOCAL":
      if (count !== 0) fail(`config.json: memory policy mode requires 0 nodes but got ${count}`);
      break;
    case "MPOL_PREFERRED":
      break; // zero or more nodes
    default:
      if (count === 0) fail("config.json: memory policy mode requires at least one node but got 0");
  }
}

function popcount(byte: number): number {
  let n = 0;
  for (let b = byte; b; b >>= 1) n += b & 1;
  return n;
}

// The kernel's dev_valid_name() as runc checks it (configs/validate: devValidName).
const IFNAMSIZ = 16;
function netDeviceName(name: string): boolean {
  return name.length > 0 && name.length <= IFNAMSIZ && name !== "." && name !== ".." && !/[/: ]/.test(name);
}

// linux.netDevices (runtime-spec 1.3), runc's configs/validate netdevices(): a network namespace of the
// container's (new or joined by a path), not rootless, valid names on both sides. A network namespace
// joined by a path that is tsrun's own (HostFacts.sharedNamespaces) is the host's: refused in the same
// words. Two devices given the same name in the container are refused here rather than half moved.
function netDeviceRules(spec: Spec, host: HostFacts): void {
  const devices = spec.linux?.netDevices ?? {};
  const names = Object.keys(devices);
  if (names.length === 0) return;
  const own = (spec.linux?.namespaces ?? []).some((n) => n.type === "network" && (!n.path || !host.sharedNamespaces.includes("network")));
  if (!own) fail("config.json: unable to move network devices without a NET namespace");
  if (host.uid !== 0) fail("config.json: network devices are not supported for rootless containers");
  const targets = new Map<string, string>();
  for (const name of names) {
    if (!netDeviceName(name)) fail(`config.json: invalid network device name ${JSON.stringify(name)}`);
    const to = devices[name]!.name ?? "";
    if (to !== "" && !netDeviceName(to)) fail(`config.json: invalid network device name ${JSON.stringify(to)}`);
    const target = to || name;
    const other = targets.get(target);
    if (other !== undefined) fail(`config.json: linux.netDevices: ${JSON.stringify(other)} and ${JSON.stringify(name)} would both be named ${JSON.stringify(target)} in the container`);
    targets.set(target, name);
  }
}

// Without a mount namespace the container shares tsrun's (runtime-spec), as runc and crun run it. runc then
// makes its mounts (and changes the propagation of "/") in the host's mount table, where they stay after
// the container is gone; tsrun makes no mount at all and refuses what would need one. The masked and
// read-only paths are refused in runc's words (configs/validate: security()).
function noMountNamespaceRules(spec: Spec): void {
  const linux = spec.linux;
  if ((linux?.maskedPaths?.length ?? 0) > 0 || (linux?.readonlyPaths?.length ?? 0) > 0) fail("config.json: unable to restrict sys entries without a private MNT namespace");
  if ((spec.mounts?.length ?? 0) > 0) fail("config.json: mounts need a mount namespace: without one tsrun mounts nothing (the mounts would be made in the host's mount namespace and outlive the container)");
  if (spec.root?.readonly) fail("config.json: root.readonly needs a mount namespace (the remount would change the host's mount)");
  if (linux?.rootfsPropagation) fail("config.json: linux.rootfsPropagation needs a mount namespace (it would change the host's mounts)");
}

// An SELinux label on a host without SELinux is refused, as runc's configs/validate security() refuses it.
// An AppArmor profile is not (runc 1.4 has no such rule): on a host without AppArmor the kernel refuses the
// helper's write of the profile, and the container fails to start, as runc's does.
function lsmRules(proc: Process, where: "config.json" | "exec", lsm: LsmFacts | undefined): void {
  if (proc.selinuxLabel && !lsm?.selinux) fail(`${where}: process.selinuxLabel is set but SELinux is not enabled on this host`);
}

// Windows-only process fields (runtime-spec config.md): a Linux container has no use for them, and runc
// drops them without a word; refused here rather than ignored.
const WINDOWS_PROCESS_FIELDS = [
  ["commandLine", (p: Process) => p.commandLine],
  ["user.username", (p: Process) => p.user?.username],
] as const;

function processRules(proc: Process, where: "config.json" | "exec", lsm: LsmFacts | undefined): void {
  lsmRules(proc, where, lsm);
  for (const [field, get] of WINDOWS_PROCESS_FIELDS) {
    if ((get(proc) ?? "") !== "") fail(`${where}: process.${field} is for Windows containers only; tsrun does not apply it`);
  }
  schedulerRules(proc, where);
  for (const k of ["initial", "final"] as const) {
    try {
      cpuListMask(proc.execCPUAffinity?.[k]);
    } catch (e) {
      fail(`${where}: bad CPUAffinity.${k === "initial" ? "Initial" : "Final"}: ${messageOf(e)}`);
    }
  }
}

// runc's configs/validate scheduler(), in its words (sched_setattr(2)).
function schedulerRules(proc: Process, where: string): void {
  const s = proc.scheduler;
  if (!s) return;
  const nice = s.nice ?? 0;
  if ((s.policy === "SCHED_OTHER" || s.policy === "SCHED_BATCH") && (nice < -20 || nice > 19)) fail(`${where}: invalid scheduler.nice: ${nice} when scheduler.policy is ${s.policy}`);
  if ((s.priority ?? 0) !== 0 && s.policy !== "SCHED_FIFO" && s.policy !== "SCHED_RR") fail(`${where}: scheduler.priority can only be specified for SchedFIFO or SchedRR policy`);
  if (s.policy !== "SCHED_DEADLINE" && ((s.runtime ?? 0) !== 0 || (s.deadline ?? 0) !== 0 || (s.period ?? 0) !== 0))
    fail(`${where}: scheduler runtime/deadline/period can only be specified for SchedDeadline policy`);
}

// runc's words (utils_linux.go, exec.go): a terminal needs somewhere to send the pty master, and a
// console socket is for a terminal only.
function consoleRules(proc: Process, console: ConsoleRoute): void {
  if (proc.terminal && !console.socket && !console.receiver) fail("cannot allocate tty if runc will detach without setting console socket", "INVALID_ARGUMENT");
  if (!proc.terminal && console.socket) fail("cannot use console socket if runc will not detach or allocate tty", "INVALID_ARGUMENT");
}

// The sysctls runc accepts (libcontainer/configs/validate: sysctl()): only those in a kernel namespace the
// container has its own of, so a write never reaches the host. The reason for a refusal, in runc's words.
// `shared`: the namespaces joined by a path that are tsrun's own (HostFacts.sharedNamespaces).
const IPC_SYSCTLS = new Set(["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"]);

export function sysctlRefusal(spec: Spec, rawKey: string, shared: readonly NamespaceKind[]): string | undefined {
  const key = sysctlDotted(rawKey);
  if (sysctlFile(rawKey).split("/").some((p) => p === "" || p === "." || p === ".."))
    return `sysctl ${JSON.stringify(rawKey)} is not a valid sysctl name`;
  // A namespace of the container's own: a new one, or one joined by a path that is not tsrun's own (runc
  // compares a joined network namespace with the current process's).
  const own = (kind: NamespaceKind) => (spec.linux?.namespaces ?? []).some((n) => n.type === kind && (!n.path || !shared.includes(kind)));
  if (IPC_SYSCTLS.has(key) || key.startsWith("fs.mqueue.")) {
    return own("ipc") ? undefined : `sysctl ${JSON.stringify(key)} is not allowed in the hosts ipc namespace`;
  }
  if (key.startsWith("net.")) {
    return own("network") ? undefined : `sysctl ${JSON.stringify(key)} not allowed in host network namespace`;
  }
  if (hasNamespace(spec, "uts")) {
    if (key === "kernel.domainname") return undefined;
    if (key === "kernel.hostname") return `sysctl ${JSON.stringify(key)} is not allowed as it conflicts with the OCI "hostname" field`;
  }
  if (key.startsWith("user.")) return hasNamespace(spec, "user") ? undefined : `setting ucounts without a user namespace not allowed: ${key}`;
  return `sysctl ${JSON.stringify(key)} is not in a separate kernel namespace`;
}

// runc's rootlessEUIDCheck (tsrun runs as a non-root user): the container needs a user namespace with both
// maps (unless it joins one), every uid=/gid= mount option must name a mapped id, and the process can get no
// supplementary groups (setgroups is denied in such a namespace).
function rootlessRules(spec: Spec): void {
  const linux = spec.linux ?? {};
  if (!hasNamespace(spec, "user")) fail("config.json: rootless container requires user namespaces");
  if (hasNewNamespace(spec, "user")) {
    if (!linux.uidMappings?.length) fail("config.json: rootless containers requires at least one UID mapping");
    if (!linux.gidMappings?.length) fail("config.json: rootless containers requires at least one GID mapping");
    for (const [i, m] of (spec.mounts ?? []).entries()) {
      for (const opt of m.options ?? []) {
        const id = /^(uid|gid)=(\d+)$/.exec(opt);
        if (!id) continue;
        const maps = id[1] === "uid" ? linux.uidMappings : linux.gidMappings;
        const n = Number(id[2]);
        if (!maps.some((x) => n >= x.containerID && n < x.containerID + x.size))
          fail(`config.json: mounts[${i}]: cannot specify ${opt} mount option for rootless container: user namespace has no mapping for ${id[1]} ${n}`);
      }
    }
  }
  if (spec.process?.user?.additionalGids?.length) fail("config.json: cannot set any additional groups in a rootless container");
}

// runc's checkIDMapMounts: an idmapped mount is a bind, made by root, with both maps (its own, the
// container's, or the user namespace it joins).
function idmapRules(spec: Spec, m: Mount, where: string, host: HostFacts): void {
  const parsed = parseMountOptions(m.options, m.type, where);
  const idmap = idmapOf(spec, m, parsed.idmap);
  if (!idmap) return;
  const invalid = (why: string) => fail(`${where}: invalid mount ${m.destination}: ${why}`);
  if (!parsed.bind) invalid("id-mapped mounts are only supported for bind-mounts");
  if (host.uid !== 0) invalid("id-mapped mounts are not supported for rootless containers");
  if (!idmap.userns && (!idmap.uid.trim() || !idmap.gid.trim())) invalid("id-mapped mounts must have both uid and gid mappings specified");
}

// The files runc lets a mount cover inside /proc (the ones lxcfs emulates).
const PROC_MOUNT_ALLOWED = ["/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled"];

// runc's checkProcMount, on the destination as written (the helper repeats the check on the destination
// as it resolves in the rootfs): a proc-type mount may go on /proc, a bind only when its source is a
// procfs (`sourceIsProcfs`, from HostFacts.bindSources); nothing goes inside /proc but the files above;
// and a "proc" mount goes nowhere else.
export function procMountRefusal(m: Mount, where: string, sourceIsProcfs: boolean): string | undefined {
  const dest = mountPoint(m.destination, where);
  const bind = parseMountOptions(m.options, m.type, where).bind;
  if (!bind && m.type === "proc" && dest !== "/proc") return `${JSON.stringify(dest)} cannot be mounted because it is not on /proc (a proc-type mount goes only on /proc)`;
  if (dest === "/proc") {
    if (bind) return sourceIsProcfs ? undefined : `${JSON.stringify(dest)} cannot be mounted because it is not of type proc`;
    return m.type === "proc" ? undefined : `${JSON.stringify(dest)} cannot be mounted because it is not of type proc`;
  }
  if (!dest.startsWith("/proc/")) return undefined;
  if (PROC_MOUNT_ALLOWED.includes(dest)) return undefined;
  return `${JSON.stringify(dest)} cannot be mounted because it is inside /proc`;
}
