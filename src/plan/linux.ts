// Linux constants the plan is built from (x86_64 and the generic ABI agree on all of these).

export const CLONE = {
  NEWTIME: 0x00000080,
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

// runtime-spec namespace type -> clone flag and /proc/PID/ns name.
export const NAMESPACES = {
  user: { flag: CLONE.NEWUSER, proc: "user" },
  pid: { flag: CLONE.NEWPID, proc: "pid" },
  network: { flag: CLONE.NEWNET, proc: "net" },
  mount: { flag: CLONE.NEWNS, proc: "mnt" },
  ipc: { flag: CLONE.NEWIPC, proc: "ipc" },
  uts: { flag: CLONE.NEWUTS, proc: "uts" },
  cgroup: { flag: CLONE.NEWCGROUP, proc: "cgroup" },
  time: { flag: CLONE.NEWTIME, proc: "time" },
} as const;
export type NamespaceKind = keyof typeof NAMESPACES;

export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  SYNCHRONOUS: 16,
  REMOUNT: 32,
  MANDLOCK: 64,
  DIRSYNC: 128,
  NOSYMFOLLOW: 256,
  NOATIME: 1024,
  NODIRATIME: 2048,
  BIND: 4096,
  MOVE: 8192,
  REC: 16384,
  SILENT: 32768,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: 1 << 21,
  I_VERSION: 1 << 23,
  STRICTATIME: 1 << 24,
  LAZYTIME: 1 << 25,
} as const;

export const CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
] as const;

export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

export const PERSONALITY: Record<string, number> = { LINUX: 0x0000, LINUX32: 0x0008 };

// linux.memoryPolicy (runtime-spec 1.3) as set_mempolicy(2) numbers them (<linux/mempolicy.h>).
export const MPOL_MODES: Record<string, number> = {
  MPOL_DEFAULT: 0,
  MPOL_PREFERRED: 1,
  MPOL_BIND: 2,
  MPOL_INTERLEAVE: 3,
  MPOL_LOCAL: 4,
  MPOL_PREFERRED_MANY: 5,
  MPOL_WEIGHTED_INTERLEAVE: 6,
};
export const MPOL_FLAGS: Record<string, number> = {
  MPOL_F_NUMA_BALANCING: 1 << 13,
  MPOL_F_RELATIVE_NODES: 1 << 14,
  MPOL_F_STATIC_NODES: 1 << 15,
};

export const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGIOT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPOLL: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};
export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

// "KILL", "SIGKILL", "9", "RTMIN+3" -> number; throws on anything else.
export function parseSignal(text: string): number {
  const t = text.trim().toUpperCase();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n >= 1 && n <= SIGRTMAX) return n;
    throw new Error(`invalid signal number: ${text}`);
  }
  const name = t.startsWith("SIG") ? t : `SIG${t}`;
  if (name in SIGNALS) return SIGNALS[name]!;
  const rt = /^SIGRT(MIN|MAX)([+-]\d+)?$/.exec(name);
  if (rt) {
    const n = (rt[1] === "MIN" ? SIGRTMIN : SIGRTMAX) + Number(rt[2] ?? 0);
    if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
  }
  throw new Error(`unknown signal "${text}"`);
}

// Capability names -> bitmask; unknown names are reported through `unknown` (runc warns and skips them).
export function capMask(names: readonly string[] | undefined, unknown: (name: string) => void): bigint {
  let mask = 0n;
  for (const n of names ?? []) {
    const i = (CAPABILITIES as readonly string[]).indexOf(n.toUpperCase());
    if (i < 0) unknown(n);
    else mask |= 1n << BigInt(i);
  }
  return mask;
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
