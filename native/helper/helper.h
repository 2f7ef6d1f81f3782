// tsrun-init's modules and the one state they share.
//
//   main.cc     entry point: reads the plan, runs it op by op (the dispatch table)
//   plan.cc     plan decoding, each op checked against its signature and phase (protocol.h) before it runs
//   report.cc   errors and debug lines to tsrun
//   mounts.cc   procfs of the helper's own, mounts by fd, rootfs, pivot_root, devices, masked paths, sysctl
//   console.cc  the pty: from the container's devpts, to the console socket
//   creds.cc    users, groups, capabilities, seccomp
//   process.cc  namespaces, clone of the init, hooks, ready/start, reaper, exec
//   lsm.cc      AppArmor and SELinux: attributes through the helper's procfs, mount labels
//   paths.cc    paths inside the rootfs, by fd;  io.cc  framed messages;  shim.cc  the shim mode
//   ../common/scm.cc   SCM_RIGHTS, shared with the addon
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

// ---------------------------------------------------------------------------------------------------------
// The helper's state: every value an op leaves for a later one, and where the plan is (its phase).

struct NsFd {
  int64_t flag;
  int fd;
};

struct HelperState {
  int report = -1;   // where errors go: the sync socket during create, the start connection after it
  int sync = -1;     // the sync socket with `tsrun create` / `tsrun exec`
  bool debug = false;
  int rootfd = -1;   // O_PATH fd of the rootfs (before pivot_root), of "/" after it
  char rootfs[4096] = {0};
  int listen = -1;   // listening start socket
  char* state = nullptr;  // state JSON for hooks
  uint32_t state_len = 0;
  char exec_path[4096] = {0};
  int procfd = -1;   // the helper's own procfs (OP_OPEN_PROC): writes to /proc and fd reopens go through it
  int devnull = -1;  // the container's /dev/null, checked (what masked files are bound to)
  int attrdir = -1;  // tests only (OP_LSM_ATTR_DIR): where OP_LSM_ATTR writes instead of the procfs
  char mask_data[1024] = {0};  // OP_MASK_TMPFS_DATA: the data of a masked directory's tmpfs
  NsFd ns[8];
  int nns = 0;

  // Op order: the phase the helper is in, and the op that brought it there (0: none yet).
  unsigned phase = PHASE_HOST;
  uint16_t phase_op = 0;
};

extern HelperState g;

// ---------------------------------------------------------------------------------------------------------
// report.cc

[[noreturn]] void die(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// As die, with a message type of its own (MSG_HOOK_ERROR).
[[noreturn]] void die_as(uint32_t type, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void debugf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
const char* err();

// ---------------------------------------------------------------------------------------------------------
// plan.cc

struct Arg {
  int64_t i;
  const char* s;  // NUL-terminated, points into a copy
  uint32_t len;
  bool is_str;
};

struct Op {
  uint16_t code;
  uint16_t argc;
  Arg* args;
};

struct Plan {
  Op* ops;
  uint32_t count;
};

Plan parse_plan(char* buf, uint32_t len);
const TsrunOpSpec* op_spec(uint16_t code);
const char* op_name(uint16_t code);
// Refuses (die) an op whose arguments do not match its signature, or that arrives out of phase.
void check_op(const Op& op, const TsrunOpSpec& spec);
// After an op has run: the phase it moves the helper to.
void advance_phase(const Op& op, const TsrunOpSpec& spec);

// Typed access to an op's arguments, already checked against the signature.
struct Args {
  const Op& op;
  uint16_t next = 0;
  int64_t i();
  const char* s();
  const Arg& raw_s();
  char** strv();  // a counted list of strings as a NULL-terminated vector
};

// ---------------------------------------------------------------------------------------------------------
// mounts.cc

void op_open_proc();
void op_open_tree(Args a);
void op_mount(Args a);
void op_root_propagation(Args a);
void op_rootfs(Args a);
void op_device(Args a);
void op_symlink(Args a);
void op_mkdir(Args a);
void op_pivot_root();
void op_move_root();
void op_mask_path(Args a);
void op_readonly_path(Args a);
void op_remount_ro(Args a);
void op_sysctl(Args a);
void op_loopback_up();
void close_setup_handles();  // the procfs, /dev/null and test attr-directory handles, before waiting for start
int need_proc(const char* what);
// A detached bind of what `fd` is open on; attach a detached mount onto what `dest` is open on.
int clone_of(int fd, bool recursive);
int attach(int tree, int dest);
// "thread-self/fd/N" under the helper's procfs: the file an fd names, reached without the container's /proc.
struct ProcFd {
  char buf[64];
  explicit ProcFd(int fd);
};

// console.cc

void op_console(Args a);

// ---------------------------------------------------------------------------------------------------------
// creds.cc

void op_caps_bounding(Args a);
void op_caps(Args a);
void op_capset(Args a);
void op_set_user(Args a);
void op_chdir(Args a);
void op_seccomp(Args a);
void op_keyring(Args a);
void op_personality(Args a);
void op_keepcaps(Args a);
void op_no_new_privs();
void op_umask(Args a);

// ---------------------------------------------------------------------------------------------------------
// lsm.cc

void op_lsm_attr_dir(Args a);
void op_lsm_attr(Args a);
void op_file_label(Args a);
void op_mask_tmpfs_data(Args a);

// ---------------------------------------------------------------------------------------------------------
// process.cc

void op_close_from(Args a);
void op_cgroup_join(Args a);
void op_open_ns(Args a);
void op_setns(Args a);
void op_setns_fd(Args a);
void op_enter_root(Args a);
void op_root_dir(Args a);
void op_cpu_affinity(Args a);
void op_sched_attr(Args a);
void op_ioprio(Args a);
void op_mempolicy(Args a);
void op_chroot();
void op_unshare(Args a);
void op_usermap_sync();
void op_become_root();
void op_write_file(Args a);
void op_rlimit(Args a);
void op_clone_init();
void op_bind_start_socket(Args a);
void op_pdeathsig(Args a);
void op_sync_hooks();
void op_hook(Args a);
void op_lookup_exec(Args a);
void op_ready();
void op_init_reaper();
void op_exec(Args a);
void op_cloexec_from(Args a);
void op_clear_nonblock(Args a);
void op_hostname(Args a);
void op_domainname(Args a);
void reset_signals();
// Waits for tsrun's MSG_ACK on fd (its payload, if any, becomes the state); MSG_ABORT exits quietly.
void await_ack(int fd, const char* what);
