// GENERATED from src/plan/protocol.ts by scripts/gen-protocol.js: do not edit (test/plan.test.ts checks it).
//
// Framing on the sync socket and on the start socket:   u32 length | u32 type | payload (length = 4 + |payload|)
// A plan payload:   u32 op count, then per op:  u16 code | u16 argc | args
// An arg:           u8 tag; tag 0: i64 (little-endian); tag 1: u32 length + bytes
#pragma once
#include <stdint.h>

enum TsrunMessage : uint32_t {
  MSG_PLAN = 1,  // tsrun -> init: the plan
  MSG_ERROR = 2,  // init -> tsrun: one-line error, then the sender exits
  MSG_LOG = 3,  // init -> tsrun: debug line
  MSG_USERMAP_REQ = 4,  // init -> tsrun: write my uid_map/gid_map (payload: i32 pid)
  MSG_ACK = 5,  // tsrun -> init: go on (payload: state JSON, may be empty); init -> tsrun after READY's ack: parent-death signal cleared, tsrun may exit
  MSG_PID = 6,  // init -> tsrun: i32 pid of the container init in tsrun's pid namespace
  MSG_HOOKS_REQ = 7,  // init -> tsrun: run prestart/createRuntime hooks now
  MSG_READY = 8,  // init -> tsrun: set-up done, waiting for start
  MSG_START = 9,  // tsrun start -> init: go (payload: state JSON for startContainer hooks)
  MSG_ABORT = 10,  // tsrun -> init: give up and exit
  MSG_HOOK_ERROR = 11,  // init -> tsrun: a createContainer or startContainer hook failed (one-line error), then the sender exits
  MSG_SECCOMP_FD = 12,  // init -> tsrun: the seccomp notify fd (SCM_RIGHTS, no payload); tsrun sends it to the listener and answers ACK (or ABORT)
  MSG_SHIM_SPAWN = 20,  // tsrun -> shim: start a helper as the shim's child (see shim.cc)
  MSG_SHIM_SPAWNED = 21,  // shim -> tsrun: i32 pid
  MSG_SHIM_INIT = 22,  // tsrun -> shim: i32 pid of the container's init
};

enum TsrunOp : uint16_t {
  OP_CLOSE_FROM = 1,  // i:first — close every fd >= first (fds the plan does not name)
  OP_CGROUP_JOIN = 2,  // s:procs — move this process into the cgroup whose cgroup.procs file this is
  OP_OPEN_NS = 3,  // i:flag s:path — open a namespace (CLONE_NEW* flag) to join later
  OP_SETNS = 4,  // i:flag — join the namespace opened for this CLONE_NEW* flag
  OP_UNSHARE = 5,  // i:flags — unshare(2)
  OP_USERMAP_SYNC = 6,  // - — ask tsrun to write uid/gid maps for this process, wait for the ack
  OP_BECOME_ROOT = 7,  // - — setresgid/setresuid(0) inside a new or joined user namespace
  OP_WRITE_FILE = 8,  // s:path s:content i:flags — write a file (flags: WRITE_FILE_*)
  OP_RLIMIT = 9,  // i:resource i:soft i:hard s:name — setrlimit (-1 = infinity)
  OP_CLONE_INIT = 10,  // - — fork the container init (CLONE_PARENT); the helper reports its pid and exits
  OP_BIND_START_SOCKET = 11,  // i:dirfd s:name — listening socket `start` connects to
  OP_PDEATHSIG = 12,  // i:signal — parent-death signal (0 clears)
  OP_SETNS_FD = 13,  // i:fd i:flags — join the namespaces of a pidfd or nsfs fd at once
  OP_ENTER_ROOT = 14,  // i:fd — fchdir + chroot into the container's root directory (exec)
  OP_OPEN_TREE = 16,  // s:source i:slot i:recursive i:flags i:recSet i:recClr i:idmap s:uidMap s:gidMap s:userns — a detached bind of source made on the host (open_tree), its MS_* flags and recursive attributes set, id-mapped (idmap: OPEN_TREE_IDMAP_*) through a user namespace with these maps (or the one at path userns); kept for OP_MOUNT's tree slot
  OP_OPEN_PROC = 15,  // - — open a procfs of the helper's own (fsopen, else the current /proc, checked) for writes and fd reopens
  OP_MOUNT = 20,  // s:source s:dest s:fstype i:flags s:data i:propagation i:kind i:opts i:recSet i:recClr i:tree — mount on dest in the rootfs (kind: MOUNT_KIND_*, opts: MOUNT_OPT_*; a bind gets the MOUNT_ATTR_* recSet/recClr on its whole tree; tree >= 0: attach the bind OP_OPEN_TREE prepared in that slot)
  OP_ROOT_PROPAGATION = 21,  // i:flags — propagation of "/": of the new mount namespace before the rootfs is bound (MS_SLAVE|MS_REC by default), of the container's root after pivot_root (shared, unbindable)
  OP_ROOTFS = 22,  // s:rootfs i:parent — make its parent mount MS_PRIVATE or MS_SLAVE (parent), bind it on itself, remember it as the root
  OP_DEVICE = 23,  // s:path i:type i:mode i:major i:minor i:uid i:gid i:how — a device node in the rootfs (type: S_IF*, how: DEVICE_*)
  OP_SYMLINK = 24,  // s:target s:link — symlink in the rootfs
  OP_SYNC_HOOKS = 25,  // - — ask tsrun to run prestart/createRuntime hooks, wait for ack (state JSON)
  OP_HOOK = 26,  // s:kind s:path S:args S:env i:timeout — run a hook with the state on stdin (timeout in seconds, 0 none)
  OP_PIVOT_ROOT = 27,  // - — pivot_root into the root, detach the old one
  OP_MOVE_ROOT = 28,  // - — --no-pivot: MS_MOVE the root onto / and chroot
  OP_LOOPBACK_UP = 29,  // - — bring "lo" up in a new network namespace
  OP_ROOT_DIR = 31,  // s:rootfs — no mount namespace: remember the rootfs as the root, no mount made (no bind, no propagation change)
  OP_CHROOT = 32,  // - — no mount namespace: chroot into the root (runc's chroot())
  OP_MKDIR = 30,  // s:path — mkdir -p in the rootfs (the process cwd, as runc makes it)
  OP_MASK_PATH = 40,  // s:path — cover with /dev/null or a read-only tmpfs
  OP_READONLY_PATH = 41,  // s:path — bind read-only on itself
  OP_REMOUNT_RO = 42,  // s:path — remount read-only ("/" for root.readonly)
  OP_HOSTNAME = 43,  // s:name — sethostname
  OP_DOMAINNAME = 44,  // s:name — setdomainname
  OP_CONSOLE = 45,  // i:socket i:rows i:cols i:uid i:bind — pty master to the console socket; the pty's owner (not its group) becomes uid (bind: CONSOLE_BIND_* for /dev/console)
  OP_KEYRING = 46,  // s:name — join a new session keyring
  OP_PERSONALITY = 47,  // i:persona — personality(2)
  OP_UMASK = 48,  // i:mask — umask
  OP_CAPS_BOUNDING = 49,  // i:lo i:hi — drop every bounding capability not in the mask
  OP_KEEPCAPS = 50,  // i:on — PR_SET_KEEPCAPS 0/1
  OP_SET_USER = 51,  // i:uid i:gid I:groups — groups (count -1: leave them alone), gid, uid
  OP_CAPS = 52,  // i:effLo i:effHi i:permLo i:permHi i:inhLo i:inhHi i:ambLo i:ambHi — the capability sets and the ambient set
  OP_CHDIR = 53,  // s:cwd i:when — chdir and check it is inside the root (when: CHDIR_AS_*)
  OP_NO_NEW_PRIVS = 54,  // - — PR_SET_NO_NEW_PRIVS
  OP_LOOKUP_EXEC = 55,  // s:argv0 s:path — resolve the executable now so create fails early
  OP_READY = 56,  // - — tell tsrun set-up is done, wait for its ack, clear the parent-death signal, ack back, close the sync socket, wait for start
  OP_SECCOMP = 57,  // s:program i:flags — load the filter (struct sock_filter[]); with SECCOMP_FILTER_FLAG_NEW_LISTENER hand the notify fd to tsrun (MSG_SECCOMP_FD) and wait for its ack
  OP_CLOEXEC_FROM = 58,  // i:first — mark every fd >= first close-on-exec
  OP_RESET_SIGNALS = 59,  // - — default dispositions, empty mask
  OP_EXEC = 60,  // S:argv S:env — execve
  OP_CLEAR_NONBLOCK = 61,  // i:fd — stdio must be blocking for the user process
  OP_INIT_REAPER = 62,  // - — --init: stay as a reaping PID 1 that forwards signals; the child goes on to exec
  OP_CAPSET = 63,  // i:effLo i:effHi i:permLo i:permHi i:inhLo i:inhHi — capset(2) only, ambient set left as it is
  OP_CPU_AFFINITY = 66,  // s:mask i:which — sched_setaffinity(0) to a cpu_set_t mask (empty: every CPU); which: AFFINITY_* (RESET only warns on failure)
  OP_SCHED_ATTR = 67,  // i:policy i:flags i:nice i:priority i:runtime i:deadline i:period i:cpuset — sched_setattr(0) (process.scheduler); cpuset: the container has cpu.cpus (names runc's EPERM error)
  OP_IOPRIO = 68,  // i:prio — ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level) (process.ioPriority)
  OP_MEMPOLICY = 69,  // i:mode s:nodes — set_mempolicy(2) (linux.memoryPolicy): mode with its MPOL_F_* flags, nodes a nodemask of u64 words (empty: none)
  OP_SYSCTL = 65,  // s:file s:value — write a file under the helper's procfs ("sys/net/ipv4/ip_forward"): no symlinks, no other mount
  OP_LSM_ATTR_DIR = 80,  // s:dir — tests only (TSRUN_TEST_LSM_ATTR_DIR): a host directory, opened now (before any namespace or root is entered), whose files OP_LSM_ATTR writes instead of the procfs's
  OP_LSM_ATTR = 81,  // s:attr s:value s:what — write value to attr/<attr> (apparmor/exec, exec, keycreate) of this thread, reached through the helper's own procfs (OP_OPEN_PROC), never the container's /proc; what names the step in an error
  OP_FILE_LABEL = 82,  // s:path s:label — set the security.selinux attribute of a path in the rootfs (runc's label.SetFileLabel on an mqueue mount)
  OP_MASK_TMPFS_DATA = 83,  // s:data — the data of the read-only tmpfs OP_MASK_PATH puts over a directory (linux.mountLabel's context=)
};

// Phases of the helper, in order (bits).
enum TsrunPhase : unsigned {
  PHASE_HOST = 1,  // the set-up helper (host context)
  PHASE_PRE_PIVOT = 2,  // the container process before pivot_root
  PHASE_ROOTED = 4,  // the container process in its root, before its credentials
  PHASE_CREDS = 8,  // the container process with its credentials, until exec
  PHASE_STARTED = 16,  // the container's init after `tsrun start`
};

// OP_MOUNT kind: what the mount point is
constexpr int64_t MOUNT_KIND_DIR = 0;
constexpr int64_t MOUNT_KIND_FILE = 1;
constexpr int64_t MOUNT_KIND_BY_SOURCE = 2;
// OP_MOUNT opts bits: recursive bind; tmpcopyup; ordinary directory (procfs/sysfs: the destination must not be a symlink and must show the new filesystem afterwards); the tree is a fallback for a bind source the container's root cannot reach
constexpr int64_t MOUNT_OPT_RECURSIVE = 2;
constexpr int64_t MOUNT_OPT_TMPCOPYUP = 4;
constexpr int64_t MOUNT_OPT_ORDINARY = 8;
constexpr int64_t MOUNT_OPT_HOST_FALLBACK = 16;
// OP_WRITE_FILE flags
constexpr int64_t WRITE_FILE_ENOENT_OK = 1;
// OP_OPEN_TREE idmap: none, the top mount (idmap), every mount of the tree (ridmap)
constexpr int64_t OPEN_TREE_IDMAP_NONE = 0;
constexpr int64_t OPEN_TREE_IDMAP_TOP = 1;
constexpr int64_t OPEN_TREE_IDMAP_RECURSIVE = 2;
// OP_DEVICE how: make the node, or bind the host's node (in a user namespace)
constexpr int64_t DEVICE_MKNOD = 0;
constexpr int64_t DEVICE_BIND = 1;
// OP_CHDIR when: as root before SET_USER (a permission error is left for AS_USER), or after SET_USER if that one was refused
constexpr int64_t CHDIR_AS_ROOT = 1;
constexpr int64_t CHDIR_AS_USER = 2;
// OP_CPU_AFFINITY which: runc's reset to every CPU, execCPUAffinity.initial, execCPUAffinity.final
constexpr int64_t AFFINITY_RESET = 0;
constexpr int64_t AFFINITY_INITIAL = 1;
constexpr int64_t AFFINITY_FINAL = 2;
// OP_CONSOLE bind: the pty slave on /dev/console (the init) or not (exec)
constexpr int64_t CONSOLE_BIND_NONE = 0;
constexpr int64_t CONSOLE_BIND_DEV_CONSOLE = 1;
// MSG_SHIM_SPAWN flags: stdio to the log (fds 0-2 replaced); the fd at the console index replaced by a socket whose peer receives the pty master
constexpr int64_t SHIM_SPAWN_LOGS = 1;
constexpr int64_t SHIM_SPAWN_CONSOLE = 2;

struct TsrunPhaseSpec {
  unsigned bit;
  const char* doc;
  const char* entered_by;
};
static const TsrunPhaseSpec kTsrunPhases[] = {
    {PHASE_HOST, "the set-up helper (host context)", ""},
    {PHASE_PRE_PIVOT, "the container process before pivot_root", "OP_CLONE_INIT"},
    {PHASE_ROOTED, "the container process in its root, before its credentials", "OP_PIVOT_ROOT, OP_MOVE_ROOT or OP_ENTER_ROOT"},
    {PHASE_CREDS, "the container process with its credentials, until exec", "OP_CAPS"},
    {PHASE_STARTED, "the container's init after `tsrun start`", "OP_READY"},
};

// Argument kinds: i int, s string/bytes, S counted list of strings, I counted list of ints (count -1: none).
struct TsrunOpSpec {
  uint16_t code;
  const char* name;
  const char* sig;
  unsigned phases;  // PHASE_* bits it may run in
  unsigned enters;  // the phase after it (0: unchanged)
};
static const TsrunOpSpec kTsrunOps[] = {
    {OP_CLOSE_FROM, "OP_CLOSE_FROM", "i", PHASE_HOST, 0},
    {OP_CGROUP_JOIN, "OP_CGROUP_JOIN", "s", PHASE_HOST, 0},
    {OP_OPEN_NS, "OP_OPEN_NS", "is", PHASE_HOST, 0},
    {OP_SETNS, "OP_SETNS", "i", PHASE_HOST, 0},
    {OP_UNSHARE, "OP_UNSHARE", "i", PHASE_HOST, 0},
    {OP_USERMAP_SYNC, "OP_USERMAP_SYNC", "", PHASE_HOST, 0},
    {OP_BECOME_ROOT, "OP_BECOME_ROOT", "", PHASE_HOST, 0},
    {OP_WRITE_FILE, "OP_WRITE_FILE", "ssi", PHASE_HOST, 0},
    {OP_RLIMIT, "OP_RLIMIT", "iiis", PHASE_HOST, 0},
    {OP_CLONE_INIT, "OP_CLONE_INIT", "", PHASE_HOST, PHASE_PRE_PIVOT},
    {OP_BIND_START_SOCKET, "OP_BIND_START_SOCKET", "is", PHASE_HOST, 0},
    {OP_PDEATHSIG, "OP_PDEATHSIG", "i", PHASE_HOST | PHASE_ROOTED | PHASE_CREDS, 0},
    {OP_SETNS_FD, "OP_SETNS_FD", "ii", PHASE_HOST, 0},
    {OP_ENTER_ROOT, "OP_ENTER_ROOT", "i", PHASE_PRE_PIVOT, PHASE_ROOTED},
    {OP_OPEN_TREE, "OP_OPEN_TREE", "siiiiiisss", PHASE_HOST, 0},
    {OP_OPEN_PROC, "OP_OPEN_PROC", "", PHASE_HOST | PHASE_PRE_PIVOT, 0},
    {OP_MOUNT, "OP_MOUNT", "sssisiiiiii", PHASE_PRE_PIVOT, 0},
    {OP_ROOT_PROPAGATION, "OP_ROOT_PROPAGATION", "i", PHASE_PRE_PIVOT | PHASE_ROOTED, 0},
    {OP_ROOTFS, "OP_ROOTFS", "si", PHASE_PRE_PIVOT, 0},
    {OP_DEVICE, "OP_DEVICE", "siiiiiii", PHASE_PRE_PIVOT, 0},
    {OP_SYMLINK, "OP_SYMLINK", "ss", PHASE_PRE_PIVOT, 0},
    {OP_SYNC_HOOKS, "OP_SYNC_HOOKS", "", PHASE_PRE_PIVOT, 0},
    {OP_HOOK, "OP_HOOK", "ssSSi", PHASE_PRE_PIVOT | PHASE_STARTED, 0},
    {OP_PIVOT_ROOT, "OP_PIVOT_ROOT", "", PHASE_PRE_PIVOT, PHASE_ROOTED},
    {OP_MOVE_ROOT, "OP_MOVE_ROOT", "", PHASE_PRE_PIVOT, PHASE_ROOTED},
    {OP_LOOPBACK_UP, "OP_LOOPBACK_UP", "", PHASE_PRE_PIVOT, 0},
    {OP_ROOT_DIR, "OP_ROOT_DIR", "s", PHASE_PRE_PIVOT, 0},
    {OP_CHROOT, "OP_CHROOT", "", PHASE_PRE_PIVOT, PHASE_ROOTED},
    {OP_MKDIR, "OP_MKDIR", "s", PHASE_PRE_PIVOT, 0},
    {OP_MASK_PATH, "OP_MASK_PATH", "s", PHASE_ROOTED, 0},
    {OP_READONLY_PATH, "OP_READONLY_PATH", "s", PHASE_ROOTED, 0},
    {OP_REMOUNT_RO, "OP_REMOUNT_RO", "s", PHASE_ROOTED, 0},
    {OP_HOSTNAME, "OP_HOSTNAME", "s", PHASE_ROOTED, 0},
    {OP_DOMAINNAME, "OP_DOMAINNAME", "s", PHASE_ROOTED, 0},
    {OP_CONSOLE, "OP_CONSOLE", "iiiii", PHASE_ROOTED, 0},
    {OP_KEYRING, "OP_KEYRING", "s", PHASE_ROOTED, 0},
    {OP_PERSONALITY, "OP_PERSONALITY", "i", PHASE_ROOTED | PHASE_CREDS, 0},
    {OP_UMASK, "OP_UMASK", "i", PHASE_ROOTED, 0},
    {OP_CAPS_BOUNDING, "OP_CAPS_BOUNDING", "ii", PHASE_ROOTED, 0},
    {OP_KEEPCAPS, "OP_KEEPCAPS", "i", PHASE_ROOTED, 0},
    {OP_SET_USER, "OP_SET_USER", "iiI", PHASE_ROOTED, 0},
    {OP_CAPS, "OP_CAPS", "iiiiiiii", PHASE_ROOTED, PHASE_CREDS},
    {OP_CHDIR, "OP_CHDIR", "si", PHASE_ROOTED, 0},
    {OP_NO_NEW_PRIVS, "OP_NO_NEW_PRIVS", "", PHASE_CREDS, 0},
    {OP_LOOKUP_EXEC, "OP_LOOKUP_EXEC", "ss", PHASE_CREDS, 0},
    {OP_READY, "OP_READY", "", PHASE_CREDS, PHASE_STARTED},
    {OP_SECCOMP, "OP_SECCOMP", "si", PHASE_CREDS | PHASE_STARTED, 0},
    {OP_CLOEXEC_FROM, "OP_CLOEXEC_FROM", "i", PHASE_CREDS | PHASE_STARTED, 0},
    {OP_RESET_SIGNALS, "OP_RESET_SIGNALS", "", PHASE_CREDS | PHASE_STARTED, 0},
    {OP_EXEC, "OP_EXEC", "SS", PHASE_CREDS | PHASE_STARTED, 0},
    {OP_CLEAR_NONBLOCK, "OP_CLEAR_NONBLOCK", "i", PHASE_CREDS | PHASE_STARTED, 0},
    {OP_INIT_REAPER, "OP_INIT_REAPER", "", PHASE_STARTED, 0},
    {OP_CAPSET, "OP_CAPSET", "iiiiii", PHASE_CREDS | PHASE_STARTED, 0},
    {OP_CPU_AFFINITY, "OP_CPU_AFFINITY", "si", PHASE_HOST, 0},
    {OP_SCHED_ATTR, "OP_SCHED_ATTR", "iiiiiiii", PHASE_ROOTED, 0},
    {OP_IOPRIO, "OP_IOPRIO", "i", PHASE_ROOTED, 0},
    {OP_MEMPOLICY, "OP_MEMPOLICY", "is", PHASE_ROOTED | PHASE_CREDS, 0},
    {OP_SYSCTL, "OP_SYSCTL", "ss", PHASE_ROOTED, 0},
    {OP_LSM_ATTR_DIR, "OP_LSM_ATTR_DIR", "s", PHASE_HOST, 0},
    {OP_LSM_ATTR, "OP_LSM_ATTR", "sss", PHASE_ROOTED | PHASE_CREDS, 0},
    {OP_FILE_LABEL, "OP_FILE_LABEL", "ss", PHASE_PRE_PIVOT, 0},
    {OP_MASK_TMPFS_DATA, "OP_MASK_TMPFS_DATA", "s", PHASE_ROOTED, 0},
};
