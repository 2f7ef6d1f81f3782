// The protocol between tsrun and tsrun-init, declared once: message types, plan ops with their argument
// signatures and the phase of the helper each belongs to, and the flag values both sides use.
// native/helper/protocol.h is generated from this file (scripts/gen-protocol.js; test/plan.test.ts fails
// when the committed header differs). The helper checks every op against its signature and phase before it
// runs it.
//
// Framing on the sync socket and on the start socket:   u32 length | u32 type | payload (length = 4 + |payload|)
// A plan payload:   u32 op count, then per op:  u16 code | u16 argc | args
// An arg:           u8 tag; tag 0: i64 (little-endian); tag 1: u32 length + bytes

export const MESSAGES = {
  PLAN: { code: 1, doc: "tsrun -> init: the plan" },
  ERROR: { code: 2, doc: "init -> tsrun: one-line error, then the sender exits" },
  LOG: { code: 3, doc: "init -> tsrun: debug line" },
  USERMAP_REQ: { code: 4, doc: "init -> tsrun: write my uid_map/gid_map (payload: i32 pid)" },
  ACK: { code: 5, doc: "tsrun -> init: go on (payload: state JSON, may be empty); init -> tsrun after READY's ack: parent-death signal cleared, tsrun may exit" },
  PID: { code: 6, doc: "init -> tsrun: i32 pid of the container init in tsrun's pid namespace" },
  HOOKS_REQ: { code: 7, doc: "init -> tsrun: run prestart/createRuntime hooks now" },
  READY: { code: 8, doc: "init -> tsrun: set-up done, waiting for start" },
  START: { code: 9, doc: "tsrun start -> init: go (payload: state JSON for startContainer hooks)" },
  ABORT: { code: 10, doc: "tsrun -> init: give up and exit" },
  HOOK_ERROR: { code: 11, doc: "init -> tsrun: a createContainer or startContainer hook failed (one-line error), then the sender exits" },
  SECCOMP_FD: { code: 12, doc: "init -> tsrun: the seccomp notify fd (SCM_RIGHTS, no payload); tsrun sends it to the listener and answers ACK (or ABORT)" },
  SHIM_SPAWN: { code: 20, doc: "tsrun -> shim: start a helper as the shim's child (see shim.cc)" },
  SHIM_SPAWNED: { code: 21, doc: "shim -> tsrun: i32 pid" },
  SHIM_INIT: { code: 22, doc: "tsrun -> shim: i32 pid of the container's init" },
} as const;

// Where the helper is when it runs an op. The phases follow each other in this order; an op names the
// phases it may run in, and a few ops move the helper on to the next one.
export const PHASES = {
  HOST: { bit: 1, doc: "the set-up helper (host context)", enteredBy: "" },
  PRE_PIVOT: { bit: 2, doc: "the container process before pivot_root", enteredBy: "OP_CLONE_INIT" },
  ROOTED: { bit: 4, doc: "the container process in its root, before its credentials", enteredBy: "OP_PIVOT_ROOT, OP_MOVE_ROOT or OP_ENTER_ROOT" },
  CREDS: { bit: 8, doc: "the container process with its credentials, until exec", enteredBy: "OP_CAPS" },
  STARTED: { bit: 16, doc: "the container's init after `tsrun start`", enteredBy: "OP_READY" },
} as const;
export type PhaseName = keyof typeof PHASES;

// Argument kinds: i an integer, s a string (or bytes), S a counted list of strings (count, then items),
// I a counted list of integers whose count may be -1 (no list).
export type ArgKind = "i" | "s" | "S" | "I";
interface ArgSpec {
  readonly name: string;
  readonly kind: ArgKind;
}
interface OpSpec {
  readonly code: number;
  readonly phases: readonly PhaseName[];
  readonly enters?: PhaseName; // the phase the helper is in after this op
  readonly args: readonly ArgSpec[];
  readonly doc: string;
}

const i = <N extends string>(name: N) => ({ name, kind: "i" }) as const;
const s = <N extends string>(name: N) => ({ name, kind: "s" }) as const;
const S = <N extends string>(name: N) => ({ name, kind: "S" }) as const;
const I = <N extends string>(name: N) => ({ name, kind: "I" }) as const;

const FINAL = ["CREDS", "STARTED"] as const;

export const OPS = {
  // --- set-up helper, host context
  CLOSE_FROM: { code: 1, phases: ["HOST"], args: [i("first")], doc: "close every fd >= first (fds the plan does not name)" },
  CGROUP_JOIN: { code: 2, phases: ["HOST"], args: [s("procs")], doc: "move this process into the cgroup whose cgroup.procs file this is" },
  OPEN_NS: { code: 3, phases: ["HOST"], args: [i("flag"), s("path")], doc: "open a namespace (CLONE_NEW* flag) to join later" },
  SETNS: { code: 4, phases: ["HOST"], args: [i("flag")], doc: "join the namespace opened for this CLONE_NEW* flag" },
  UNSHARE: { code: 5, phases: ["HOST"], args: [i("flags")], doc: "unshare(2)" },
  USERMAP_SYNC: { code: 6, phases: ["HOST"], args: [], doc: "ask tsrun to write uid/gid maps for this process, wait for the ack" },
  BECOME_ROOT: { code: 7, phases: ["HOST"], args: [], doc: "setresgid/setresuid(0) inside a new or joined user namespace" },
  WRITE_FILE: { code: 8, phases: ["HOST"], args: [s("path"), s("content"), i("flags")], doc: "write a file (flags: WRITE_FILE_*)" },
  RLIMIT: { code: 9, phases: ["HOST"], args: [i("resource"), i("soft"), i("hard"), s("name")], doc: "setrlimit (-1 = infinity)" },
  CLONE_INIT: { code: 10, phases: ["HOST"], enters: "PRE_PIVOT", args: [], doc: "fork the container init (CLONE_PARENT); the helper reports its pid and exits" },
  BIND_START_SOCKET: { code: 11, phases: ["HOST"], args: [i("dirfd"), s("name")], doc: "listening socket `start` connects to" },
  PDEATHSIG: { code: 12, phases: ["HOST", "ROOTED", "CREDS"], args: [i("signal")], doc: "parent-death signal (0 clears)" },
  SETNS_FD: { code: 13, phases: ["HOST"], args: [i("fd"), i("flags")], doc: "join the namespaces of a pidfd or nsfs fd at once" },
  ENTER_ROOT: { code: 14, phases: ["PRE_PIVOT"], enters: "ROOTED", args: [i("fd")], doc: "fchdir + chroot into the container's root directory (exec)" },
  OPEN_TREE: {
    code: 16,
    phases: ["HOST"],
    args: [s("source"), i("slot"), i("recursive"), i("flags"), i("recSet"), i("recClr"), i("idmap"), s("uidMap"), s("gidMap"), s("userns")],
    doc: "a detached bind of source made on the host (open_tree), its MS_* flags and recursive attributes set, id-mapped (idmap: OPEN_TREE_IDMAP_*) through a user namespace with these maps (or the one at path userns); kept for OP_MOUNT's tree slot",
  },
  OPEN_PROC: { code: 15, phases: ["HOST", "PRE_PIVOT"], args: [], doc: "open a procfs of the helper's own (fsopen, else the current /proc, checked) for writes and fd reopens" },
  // --- container init, before pivot_root
  MOUNT: {
    code: 20,
    phases: ["PRE_PIVOT"],
    args: [s("source"), s("dest"), s("fstype"), i("flags"), s("data"), i("propagation"), i("kind"), i("opts"), i("recSet"), i("recClr"), i("tree")],
    doc: "mount on dest in the rootfs (kind: MOUNT_KIND_*, opts: MOUNT_OPT_*; a bind gets the MOUNT_ATTR_* recSet/recClr on its whole tree; tree >= 0: attach the bind OP_OPEN_TREE prepared in that slot)",
  },
  ROOT_PROPAGATION: {
    code: 21,
    phases: ["PRE_PIVOT", "ROOTED"],
    args: [i("flags")],
    doc: 'propagation of "/": of the new mount namespace before the rootfs is bound (MS_SLAVE|MS_REC by default), of the container\'s root after pivot_root (shared, unbindable)',
  },
  ROOTFS: { code: 22, phases: ["PRE_PIVOT"], args: [s("rootfs"), i("parent")], doc: "make its parent mount MS_PRIVATE or MS_SLAVE (parent), bind it on itself, remember it as the root" },
  DEVICE: {
    code: 23,
    phases: ["PRE_PIVOT"],
    args: [s("path"), i("type"), i("mode"), i("major"), i("minor"), i("uid"), i("gid"), i("how")],
    doc: "a device node in the rootfs (type: S_IF*, how: DEVICE_*)",
  },
  SYMLINK: { code: 24, phases: ["PRE_PIVOT"], args: [s("target"), s("link")], doc: "symlink in the rootfs" },
  SYNC_HOOKS: { code: 25, phases: ["PRE_PIVOT"], args: [], doc: "ask tsrun to run prestart/createRuntime hooks, wait for ack (state JSON)" },
  HOOK: { code: 26, phases: ["PRE_PIVOT", "STARTED"], args: [s("kind"), s("path"), S("args"), S("env"), i("timeout")], doc: "run a hook with the state on stdin (timeout in seconds, 0 none)" },
  PIVOT_ROOT: { code: 27, phases: ["PRE_PIVOT"], enters: "ROOTED", args: [], doc: "pivot_root into the root, detach the old one" },
  MOVE_ROOT: { code: 28, phases: ["PRE_PIVOT"], enters: "ROOTED", args: [], doc: "--no-pivot: MS_MOVE the root onto / and chroot" },
  LOOPBACK_UP: { code: 29, phases: ["PRE_PIVOT"], args: [], doc: 'bring "lo" up in a new network namespace' },
  ROOT_DIR: { code: 31, phases: ["PRE_PIVOT"], args: [s("rootfs")], doc: "no mount namespace: remember the rootfs as the root, no mount made (no bind, no propagation change)" },
  CHROOT: { code: 32, phases: ["PRE_PIVOT"], enters: "ROOTED", args: [], doc: "no mount namespace: chroot into the root (runc's chroot())" },
  MKDIR: { code: 30, phases: ["PRE_PIVOT"], args: [s("path")], doc: "mkdir -p in the rootfs (the process cwd, as runc makes it)" },
  // --- container init, after pivot_root
  MASK_PATH: { code: 40, phases: ["ROOTED"], args: [s("path")], doc: "cover with /dev/null or a read-only tmpfs" },
  READONLY_PATH: { code: 41, phases: ["ROOTED"], args: [s("path")], doc: "bind read-only on itself" },
  REMOUNT_RO: { code: 42, phases: ["ROOTED"], args: [s("path")], doc: 'remount read-only ("/" for root.readonly)' },
  HOSTNAME: { code: 43, phases: ["ROOTED"], args: [s("name")], doc: "sethostname" },
  DOMAINNAME: { code: 44, phases: ["ROOTED"], args: [s("name")], doc: "setdomainname" },
  CONSOLE: {
    code: 45,
    phases: ["ROOTED"],
    args: [i("socket"), i("rows"), i("cols"), i("uid"), i("bind")],
    doc: "pty master to the console socket; the pty's owner (not its group) becomes uid (bind: CONSOLE_BIND_* for /dev/console)",
  },
  KEYRING: { code: 46, phases: ["ROOTED"], args: [s("name")], doc: "join a new session keyring" },
  PERSONALITY: { code: 47, phases: ["ROOTED", "CREDS"], args: [i("persona")], doc: "personality(2)" },
  UMASK: { code: 48, phases: ["ROOTED"], args: [i("mask")], doc: "umask" },
  CAPS_BOUNDING: { code: 49, phases: ["ROOTED"], args: [i("lo"), i("hi")], doc: "drop every bounding capability not in the mask" },
  KEEPCAPS: { code: 50, phases: ["ROOTED"], args: [i("on")], doc: "PR_SET_KEEPCAPS 0/1" },
  SET_USER: { code: 51, phases: ["ROOTED"], args: [i("uid"), i("gid"), I("groups")], doc: "groups (count -1: leave them alone), gid, uid" },
  CAPS: {
    code: 52,
    phases: ["ROOTED"],
    enters: "CREDS",
    args: [i("effLo"), i("effHi"), i("permLo"), i("permHi"), i("inhLo"), i("inhHi"), i("ambLo"), i("ambHi")],
    doc: "the capability sets and the ambient set",
  },
  CHDIR: { code: 53, phases: ["ROOTED"], args: [s("cwd"), i("when")], doc: "chdir and check it is inside the root (when: CHDIR_AS_*)" },
  NO_NEW_PRIVS: { code: 54, phases: ["CREDS"], args: [], doc: "PR_SET_NO_NEW_PRIVS" },
  LOOKUP_EXEC: { code: 55, phases: ["CREDS"], args: [s("argv0"), s("path")], doc: "resolve the executable now so create fails early" },
  READY: {
    code: 56,
    phases: ["CREDS"],
    enters: "STARTED",
    args: [],
    doc: "tell tsrun set-up is done, wait for its ack, clear the parent-death signal, ack back, close the sync socket, wait for start",
  },
  SECCOMP: {
    code: 57,
    phases: FINAL,
    args: [s("program"), i("flags")],
    doc: "load the filter (struct sock_filter[]); with SECCOMP_FILTER_FLAG_NEW_LISTENER hand the notify fd to tsrun (MSG_SECCOMP_FD) and wait for its ack",
  },
  CLOEXEC_FROM: { code: 58, phases: FINAL, args: [i("first")], doc: "mark every fd >= first close-on-exec" },
  RESET_SIGNALS: { code: 59, phases: FINAL, args: [], doc: "default dispositions, empty mask" },
  EXEC: { code: 60, phases: FINAL, args: [S("argv"), S("env")], doc: "execve" },
  CLEAR_NONBLOCK: { code: 61, phases: FINAL, args: [i("fd")], doc: "stdio must be blocking for the user process" },
  INIT_REAPER: { code: 62, phases: ["STARTED"], args: [], doc: "--init: stay as a reaping PID 1 that forwards signals; the child goes on to exec" },
  CAPSET: { code: 63, phases: FINAL, args: [i("effLo"), i("effHi"), i("permLo"), i("permHi"), i("inhLo"), i("inhHi")], doc: "capset(2) only, ambient set left as it is" },
  CPU_AFFINITY: {
    code: 66,
    phases: ["HOST"],
    args: [s("mask"), i("which")],
    doc: "sched_setaffinity(0) to a cpu_set_t mask (empty: every CPU); which: AFFINITY_* (RESET only warns on failure)",
  },
  SCHED_ATTR: {
    code: 67,
    phases: ["ROOTED"],
    args: [i("policy"), i("flags"), i("nice"), i("priority"), i("runtime"), i("deadline"), i("period"), i("cpuset")],
    doc: "sched_setattr(0) (process.scheduler); cpuset: the container has cpu.cpus (names runc's EPERM error)",
  },
  IOPRIO: { code: 68, phases: ["ROOTED"], args: [i("prio")], doc: "ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level) (process.ioPriority)" },
  MEMPOLICY: {
    code: 69,
    phases: ["ROOTED", "CREDS"],
    args: [i("mode"), s("nodes")],
    doc: "set_mempolicy(2) (linux.memoryPolicy): mode with its MPOL_F_* flags, nodes a nodemask of u64 words (empty: none)",
  },
  SYSCTL: { code: 65, phases: ["ROOTED"], args: [s("file"), s("value")], doc: 'write a file under the helper\'s procfs ("sys/net/ipv4/ip_forward"): no symlinks, no other mount' },
  // --- AppArmor and SELinux (src/plan/build.ts lsm*Ops, native/helper/lsm.cc)
  LSM_ATTR_DIR: {
    code: 80,
    phases: ["HOST"],
    args: [s("dir")],
    doc: "tests only (TSRUN_TEST_LSM_ATTR_DIR): a host directory, opened now (before any namespace or root is entered), whose files OP_LSM_ATTR writes instead of the procfs's",
  },
  LSM_ATTR: {
    code: 81,
    phases: ["ROOTED", "CREDS"],
    args: [s("attr"), s("value"), s("what")],
    doc: "write value to attr/<attr> (apparmor/exec, exec, keycreate) of this thread, reached through the helper's own procfs (OP_OPEN_PROC), never the container's /proc; what names the step in an error",
  },
  FILE_LABEL: { code: 82, phases: ["PRE_PIVOT"], args: [s("path"), s("label")], doc: "set the security.selinux attribute of a path in the rootfs (runc's label.SetFileLabel on an mqueue mount)" },
  MASK_TMPFS_DATA: { code: 83, phases: ["ROOTED"], args: [s("data")], doc: "the data of the read-only tmpfs OP_MASK_PATH puts over a directory (linux.mountLabel's context=)" },
} as const satisfies Record<string, OpSpec>;

// Flag values carried in op arguments and messages.
export const FLAGS = {
  MOUNT_KIND: { doc: "OP_MOUNT kind: what the mount point is", values: { DIR: 0, FILE: 1, BY_SOURCE: 2 } },
  MOUNT_OPT: {
    doc: "OP_MOUNT opts bits: recursive bind; tmpcopyup; ordinary directory (procfs/sysfs: the destination must not be a symlink and must show the new filesystem afterwards); the tree is a fallback for a bind source the container's root cannot reach",
    values: { RECURSIVE: 2, TMPCOPYUP: 4, ORDINARY: 8, HOST_FALLBACK: 16 },
  },
  WRITE_FILE: { doc: "OP_WRITE_FILE flags", values: { ENOENT_OK: 1 } },
  OPEN_TREE_IDMAP: { doc: "OP_OPEN_TREE idmap: none, the top mount (idmap), every mount of the tree (ridmap)", values: { NONE: 0, TOP: 1, RECURSIVE: 2 } },
  DEVICE: { doc: "OP_DEVICE how: make the node, or bind the host's node (in a user namespace)", values: { MKNOD: 0, BIND: 1 } },
  CHDIR: {
    doc: "OP_CHDIR when: as root before SET_USER (a permission error is left for AS_USER), or after SET_USER if that one was refused",
    values: { AS_ROOT: 1, AS_USER: 2 },
  },
  AFFINITY: { doc: "OP_CPU_AFFINITY which: runc's reset to every CPU, execCPUAffinity.initial, execCPUAffinity.final", values: { RESET: 0, INITIAL: 1, FINAL: 2 } },
  CONSOLE_BIND: { doc: "OP_CONSOLE bind: the pty slave on /dev/console (the init) or not (exec)", values: { NONE: 0, DEV_CONSOLE: 1 } },
  SHIM_SPAWN: {
    doc: "MSG_SHIM_SPAWN flags: stdio to the log (fds 0-2 replaced); the fd at the console index replaced by a socket whose peer receives the pty master",
    values: { LOGS: 1, CONSOLE: 2 },
  },
} as const;

export type OpName = keyof typeof OPS;
export type OpCode = (typeof OPS)[OpName]["code"];
export type MsgName = keyof typeof MESSAGES;

export const Op = Object.fromEntries(Object.entries(OPS).map(([k, v]) => [k, v.code])) as { readonly [K in OpName]: (typeof OPS)[K]["code"] };
export const Msg = Object.fromEntries(Object.entries(MESSAGES).map(([k, v]) => [k, v.code])) as { readonly [K in MsgName]: (typeof MESSAGES)[K]["code"] };

// ---- TypeScript types of an op's arguments, from its signature

export type PlanArg = number | bigint | string | Buffer;
type KindType<K extends ArgKind> = K extends "i" ? number | bigint : K extends "s" ? string | Buffer : never;
// Fixed arguments up to the first counted list; after a list anything (Plan.list spreads are checked by the helper).
type ArgTuple<A extends readonly ArgSpec[]> = A extends readonly [infer H extends ArgSpec, ...infer T extends readonly ArgSpec[]]
  ? H["kind"] extends "S" | "I"
    ? PlanArg[]
    : [KindType<H["kind"]>, ...ArgTuple<T>]
  : [];
type CodeToName = { [K in OpName as (typeof OPS)[K]["code"]]: K };
export type OpArgs<C extends OpCode> = C extends keyof CodeToName ? ArgTuple<(typeof OPS)[CodeToName[C]]["args"]> : never;

const names = new Map<number, string>(Object.entries(OPS).map(([k, v]) => [v.code, k]));
export function opName(code: number): string {
  return names.get(code) ?? `OP_${code}`;
}

// ---- native/helper/protocol.h

const PHASE_ORDER = Object.keys(PHASES) as PhaseName[];

export function renderHeader(): string {
  const out: string[] = [];
  out.push("// GENERATED from src/plan/protocol.ts by scripts/gen-protocol.js: do not edit (test/plan.test.ts checks it).");
  out.push("//");
  out.push("// Framing on the sync socket and on the start socket:   u32 length | u32 type | payload (length = 4 + |payload|)");
  out.push("// A plan payload:   u32 op count, then per op:  u16 code | u16 argc | args");
  out.push("// An arg:           u8 tag; tag 0: i64 (little-endian); tag 1: u32 length + bytes");
  out.push("#pragma once");
  out.push("#include <stdint.h>");
  out.push("");
  out.push("enum TsrunMessage : uint32_t {");
  for (const [k, v] of Object.entries(MESSAGES)) out.push(`  MSG_${k} = ${v.code},  // ${v.doc}`);
  out.push("};");
  out.push("");
  out.push("enum TsrunOp : uint16_t {");
  for (const [k, v] of Object.entries(OPS)) out.push(`  OP_${k} = ${v.code},  // ${v.args.map((a) => `${a.kind}:${a.name}`).join(" ") || "-"} — ${v.doc}`);
  out.push("};");
  out.push("");
  out.push("// Phases of the helper, in order (bits).");
  out.push("enum TsrunPhase : unsigned {");
  for (const [k, v] of Object.entries(PHASES)) out.push(`  PHASE_${k} = ${v.bit},  // ${v.doc}`);
  out.push("};");
  out.push("");
  for (const [group, g] of Object.entries(FLAGS)) {
    out.push(`// ${g.doc}`);
    for (const [k, v] of Object.entries(g.values)) out.push(`constexpr int64_t ${group}_${k} = ${v};`);
  }
  out.push("");
  out.push("struct TsrunPhaseSpec {");
  out.push("  unsigned bit;");
  out.push("  const char* doc;");
  out.push("  const char* entered_by;");
  out.push("};");
  out.push("static const TsrunPhaseSpec kTsrunPhases[] = {");
  for (const k of PHASE_ORDER) out.push(`    {PHASE_${k}, ${JSON.stringify(PHASES[k].doc)}, ${JSON.stringify(PHASES[k].enteredBy)}},`);
  out.push("};");
  out.push("");
  out.push("// Argument kinds: i int, s string/bytes, S counted list of strings, I counted list of ints (count -1: none).");
  out.push("struct TsrunOpSpec {");
  out.push("  uint16_t code;");
  out.push("  const char* name;");
  out.push("  const char* sig;");
  out.push("  unsigned phases;  // PHASE_* bits it may run in");
  out.push("  unsigned enters;  // the phase after it (0: unchanged)");
  out.push("};");
  out.push("static const TsrunOpSpec kTsrunOps[] = {");
  for (const [k, v] of Object.entries(OPS) as [OpName, OpSpec][]) {
    const phases = v.phases.map((p) => `PHASE_${p}`).join(" | ");
    out.push(`    {OP_${k}, "OP_${k}", "${v.args.map((a) => a.kind).join("")}", ${phases}, ${v.enters ? `PHASE_${v.enters}` : "0"}},`);
  }
  out.push("};");
  return out.join("\n") + "\n";
}
