// The plan: the wire format between tsrun (TypeScript) and tsrun-init (this helper).
//
// TypeScript turns a validated config.json into a linear program of small steps ("ops"); tsrun-init
// executes them in order, in whichever process is current (the set-up helper until OP_CLONE_INIT, the
// container's init after it). All policy lives in TypeScript; this side only performs syscalls and turns
// each failure into a message naming the step and the path.
//
// Framing on the sync socket and on the start socket:   u32 length | u32 type | payload (length = 4 + |payload|)
// A plan payload:   u32 op count, then per op:  u16 code | u16 argc | args
// An arg:           u8 tag; tag 0: i64 (little-endian); tag 1: u32 length + bytes
//
// src/plan/opcodes.ts mirrors these numbers; test/plan.test.ts checks that the two agree.
#pragma once

#define TSRUN_MESSAGES(X) \
  X(MSG_PLAN, 1)          /* tsrun -> init: the plan */ \
  X(MSG_ERROR, 2)         /* init -> tsrun: one-line error, then the sender exits */ \
  X(MSG_LOG, 3)           /* init -> tsrun: debug line */ \
  X(MSG_USERMAP_REQ, 4)   /* init -> tsrun: write my uid_map/gid_map (payload: i32 pid) */ \
  X(MSG_ACK, 5)           /* tsrun -> init: go on (payload: state JSON, may be empty); init -> tsrun after READY's ack: parent-death signal cleared, tsrun may exit */ \
  X(MSG_PID, 6)           /* init -> tsrun: i32 pid of the container init in tsrun's pid namespace */ \
  X(MSG_HOOKS_REQ, 7)     /* init -> tsrun: run prestart/createRuntime hooks now */ \
  X(MSG_READY, 8)         /* init -> tsrun: set-up done, waiting for start */ \
  X(MSG_START, 9)         /* tsrun start -> init: go (payload: state JSON for startContainer hooks) */ \
  X(MSG_ABORT, 10)        /* tsrun -> init: give up and exit */ \
  X(MSG_SHIM_SPAWN, 20)   /* tsrun -> shim: start a helper as the shim's child (see shim.cc) */ \
  X(MSG_SHIM_SPAWNED, 21) /* shim -> tsrun: i32 pid */ \
  X(MSG_SHIM_INIT, 22)    /* tsrun -> shim: i32 pid of the container's init */

#define TSRUN_OPS(X) \
  /* --- set-up helper, host context --- */ \
  X(OP_CLOSE_FROM, 1)        /* i:first fd — close every fd >= first (fds the plan does not name) */ \
  X(OP_CGROUP_JOIN, 2)       /* s:cgroup.procs path — move this process there */ \
  X(OP_OPEN_NS, 3)           /* i:CLONE_NEW* flag, s:path — open a namespace to join later */ \
  X(OP_SETNS, 4)             /* i:CLONE_NEW* flag — join the namespace opened for it */ \
  X(OP_UNSHARE, 5)           /* i:flags */ \
  X(OP_USERMAP_SYNC, 6)      /* ask tsrun to write uid/gid maps for this process, wait for the ack */ \
  X(OP_BECOME_ROOT, 7)       /* setresgid/setresuid(0) inside a new or joined user namespace */ \
  X(OP_WRITE_FILE, 8)        /* s:path, s:content, i:flags(1 = ENOENT is fine) */ \
  X(OP_RLIMIT, 9)            /* i:resource, i:soft, i:hard (-1 = infinity), s:name */ \
  X(OP_CLONE_INIT, 10)       /* fork the container init (CLONE_PARENT); the helper reports its pid and exits */ \
  X(OP_BIND_START_SOCKET, 11)/* i:dirfd, s:name — listening socket `start` connects to */ \
  X(OP_PDEATHSIG, 12)        /* i:signal (0 clears) */ \
  X(OP_SETNS_FD, 13)         /* i:fd (a pidfd or an nsfs fd), i:CLONE_NEW* flags — join them at once */ \
  X(OP_ENTER_ROOT, 14)       /* i:fd of the container's root directory — fchdir + chroot (exec) */ \
  X(OP_OPEN_PROC, 15)        /* open a procfs of the helper's own (fsopen, else the current /proc, checked) for writes and fd reopens */ \
  /* --- container init, before pivot_root --- */ \
  X(OP_MOUNT, 20)            /* s:source, s:dest (in rootfs), s:fstype, i:flags, s:data, i:propagation flags, i:kind (0 dir, 1 file, 2 bind: by source), i:opts (1 = source is host path to bind, 2 = recursive, 4 = tmpcopyup, 8 = ordinary directory: procfs/sysfs, the destination must not be a symlink and must show the new filesystem afterwards) */ \
  X(OP_ROOT_PROPAGATION, 21) /* i:flags — applied to "/" (MS_SLAVE|MS_REC by default) */ \
  X(OP_ROOTFS, 22)           /* s:rootfs path — make its parent mount private, bind it on itself, remember it as the root */ \
  X(OP_DEVICE, 23)           /* s:path in rootfs, i:type(S_IF*), i:mode, i:major, i:minor, i:uid, i:gid, i:bind(1 = bind host path) */ \
  X(OP_SYMLINK, 24)          /* s:target, s:link path in rootfs */ \
  X(OP_SYNC_HOOKS, 25)       /* ask tsrun to run prestart/createRuntime hooks, wait for ack (state JSON) */ \
  X(OP_HOOK, 26)             /* s:name, s:path, i:argc, s:args..., i:envc, s:env..., i:timeout seconds (0 none) */ \
  X(OP_PIVOT_ROOT, 27)       /* pivot_root into the root, detach the old one */ \
  X(OP_MOVE_ROOT, 28)        /* --no-pivot: MS_MOVE the root onto / and chroot */ \
  X(OP_LOOPBACK_UP, 29)      /* bring "lo" up in a new network namespace */ \
  X(OP_MKDIR, 30)            /* s:path in rootfs — mkdir -p (the process cwd, as runc makes it) */ \
  /* --- container init, after pivot_root --- */ \
  X(OP_MASK_PATH, 40)        /* s:path */ \
  X(OP_READONLY_PATH, 41)    /* s:path */ \
  X(OP_REMOUNT_RO, 42)       /* s:path ("/" for root.readonly) */ \
  X(OP_HOSTNAME, 43)         /* s:name */ \
  X(OP_DOMAINNAME, 44)       /* s:name */ \
  X(OP_CONSOLE, 45)          /* i:socket fd, i:rows, i:cols, i:uid, i:gid, i:bind /dev/console (1 init, 0 exec) — pty master to the console socket */ \
  X(OP_KEYRING, 46)          /* s:name — join a new session keyring */ \
  X(OP_PERSONALITY, 47)      /* i:persona */ \
  X(OP_UMASK, 48)            /* i:mask */ \
  X(OP_CAPS_BOUNDING, 49)    /* i:mask low, i:mask high — drop every bounding capability not in the mask */ \
  X(OP_KEEPCAPS, 50)         /* i:0/1 */ \
  X(OP_SET_USER, 51)         /* i:uid, i:gid, i:ngroups, i:groups... (ngroups -1: leave groups alone) */ \
  X(OP_CAPS, 52)             /* i:eff lo/hi, i:perm lo/hi, i:inh lo/hi, i:amb lo/hi */ \
  X(OP_CHDIR, 53)            /* s:cwd — chdir and check it is inside the root */ \
  X(OP_NO_NEW_PRIVS, 54)     \
  X(OP_LOOKUP_EXEC, 55)      /* s:argv0, s:PATH — resolve the executable now so create fails early */ \
  X(OP_READY, 56)            /* tell tsrun set-up is done, wait for its ack (it has recorded the container), clear the parent-death signal, ack back, close the sync socket, wait for start */ \
  X(OP_SECCOMP, 57)          /* s:BPF program (struct sock_filter[]), i:flags, i:listener socket fd (-1: none), s:listener path (for messages), s:container process state JSON up to "pid": — with SECCOMP_FILTER_FLAG_NEW_LISTENER the helper appends the init's pid, ,"state":<state JSON from start>} and sends it with the notify fd (SCM_RIGHTS) */ \
  X(OP_CLOEXEC_FROM, 58)     /* i:first fd — mark every fd >= first close-on-exec */ \
  X(OP_RESET_SIGNALS, 59)    /* default dispositions, empty mask */ \
  X(OP_EXEC, 60)             /* i:argc, s:argv..., i:envc, s:env... */ \
  X(OP_CLEAR_NONBLOCK, 61)   /* i:fd — stdio must be blocking for the user process */ \
  X(OP_INIT_REAPER, 62)      /* --init: stay as a reaping PID 1 that forwards signals; the child goes on to exec */ \
  X(OP_SET_STATE, 64)        /* s:state JSON — what hooks and the seccomp listener get (exec has no start message) */ \
  X(OP_CAPSET, 63)           /* i:eff lo/hi, i:perm lo/hi, i:inh lo/hi — capset(2) only, ambient set left as it is */ \
  X(OP_SYSCTL, 65)           /* s:file under the helper's procfs ("sys/net/ipv4/ip_forward"), s:value — no symlinks, no other mount */

#define X_ENUM(name, value) name = value,
enum TsrunMessage { TSRUN_MESSAGES(X_ENUM) };
enum TsrunOp { TSRUN_OPS(X_ENUM) };
#undef X_ENUM
