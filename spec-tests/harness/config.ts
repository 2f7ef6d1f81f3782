// The OCI config.json as the harness writes it: types for the fields cases touch (runtime-spec v1.2), and the
// base config every case starts from. Written here, not imported from tsrun: the harness sees runtimes only
// through their command line.

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface Mount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
}

export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export type HookName = "prestart" | "createRuntime" | "createContainer" | "startContainer" | "poststart" | "poststop";
export type Hooks = Partial<Record<HookName, Hook[]>>;

export interface Rlimit {
  type: string;
  soft: number;
  hard: number;
}

export interface Capabilities {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

export interface User {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
}

export interface Process {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user?: User;
  args: string[];
  env?: string[];
  cwd: string;
  capabilities?: Capabilities;
  rlimits?: Rlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  selinuxLabel?: string;
  oomScoreAdj?: number;
  scheduler?: { policy: string; nice?: number; priority?: number; flags?: string[]; runtime?: number; deadline?: number; period?: number };
  ioPriority?: { class: string; priority: number };
  execCPUAffinity?: { initial?: string; final?: string };
}

export interface Namespace {
  type: string;
  path?: string;
}

export interface Device {
  type: string;
  path: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface DeviceRule {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}

export interface BlockIODevice {
  major: number;
  minor: number;
}

export interface Resources {
  devices?: DeviceRule[];
  memory?: { limit?: number; reservation?: number; swap?: number; kernel?: number; kernelTCP?: number; swappiness?: number; disableOOMKiller?: boolean; useHierarchy?: boolean; checkBeforeUpdate?: boolean };
  cpu?: { shares?: number; quota?: number; burst?: number; period?: number; realtimeRuntime?: number; realtimePeriod?: number; cpus?: string; mems?: string; idle?: number };
  blockIO?: {
    weight?: number;
    leafWeight?: number;
    weightDevice?: (BlockIODevice & { weight?: number; leafWeight?: number })[];
    throttleReadBpsDevice?: (BlockIODevice & { rate: number })[];
    throttleWriteBpsDevice?: (BlockIODevice & { rate: number })[];
    throttleReadIOPSDevice?: (BlockIODevice & { rate: number })[];
    throttleWriteIOPSDevice?: (BlockIODevice & { rate: number })[];
  };
  hugepageLimits?: { pageSize: string; limit: number }[];
  network?: { classID?: number; priorities?: { name: string; priority: number }[] };
  pids?: { limit: number };
  rdma?: Record<string, { hcaHandles?: number; hcaObjects?: number }>;
  unified?: Record<string, string>;
}

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface SeccompSyscall {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: SeccompArg[];
}

export interface Seccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: SeccompSyscall[];
}

export interface Linux {
  namespaces?: Namespace[];
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  timeOffsets?: Record<string, { secs?: number; nanosecs?: number }>;
  devices?: Device[];
  cgroupsPath?: string;
  resources?: Resources;
  intelRdt?: { closID?: string; l3CacheSchema?: string; memBwSchema?: string; enableCMT?: boolean; enableMBM?: boolean };
  sysctl?: Record<string, string>;
  seccomp?: Seccomp;
  rootfsPropagation?: string;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  personality?: { domain: string; flags?: string[] };
}

export interface Config {
  ociVersion: string;
  process?: Process;
  root?: { path: string; readonly?: boolean };
  hostname?: string;
  domainname?: string;
  mounts?: Mount[];
  hooks?: Hooks;
  annotations?: Record<string, string>;
  linux?: Linux;
}

// The ociVersion of the base config: runc 1.1's `runc spec` writes 1.0.2-dev, and crun 1.8 refuses 1.2.0. Cases
// on fields added later declare the version that introduced them (Case.since).
export const BASE_OCI_VERSION = "1.0.2";

// `runc spec`'s config.json, made for tests: no terminal, the process is the probe, the root is writable (cases
// that test readonly say so), and the linux.resources device rule (deny all) is left out: crun 1.8 on cgroup v2
// raises RLIMIT_MEMLOCK to load a device filter, which fails on hosts that withhold CAP_SYS_RESOURCE, and would
// make every crun case fail for that one reason. The device cgroup has cases of its own.
export function baseConfig(probeArgs: string[], cgroupsPath: string): Config {
  const caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
  return {
    ociVersion: BASE_OCI_VERSION,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ["/probe", ...probeArgs],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      cwd: "/",
      capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: false },
    hostname: "runc",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] },
    ],
    linux: {
      cgroupsPath,
      namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
      maskedPaths: [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}

// For invalid configs: sets a property to a value its type does not allow.
export function setRaw(target: object, key: string, value: unknown): void {
  (target as Record<string, unknown>)[key] = value;
}

export function deleteRaw(target: object, key: string): void {
  delete (target as Record<string, unknown>)[key];
}
