// tsrun-init: executes a plan sent by tsrun, becomes the container's init, and execs the user process.
//
// It is a small static program, run from a sealed memfd copy, so that:
//  - it is single-threaded (unshare(CLONE_NEWUSER) works, and fork is safe),
//  - the waiting init holds no Node heap (RSS in the hundreds of KB),
//  - /proc/<init>/exe is a sealed anonymous file, never a host binary (CVE-2019-5736 class).
//
// This file reads the plan and runs it op by op: each op is checked first (plan.cc: its signature and
// phase), then run by its module (helper.h lists them).
//
// Usage (by tsrun only): tsrun-init <sync fd> [debug]   or   tsrun-init shim <control fd> <state dir fd>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "helper.h"
#include "io.h"

namespace {

void run_op(const Op& op) {
  Args a{op};
  switch (op.code) {
    case OP_CLOSE_FROM: op_close_from(a); break;
    case OP_CGROUP_JOIN: op_cgroup_join(a); break;
    case OP_OPEN_NS: op_open_ns(a); break;
    case OP_SETNS: op_setns(a); break;
    case OP_UNSHARE: op_unshare(a); break;
    case OP_USERMAP_SYNC: op_usermap_sync(); break;
    case OP_BECOME_ROOT: op_become_root(); break;
    case OP_WRITE_FILE: op_write_file(a); break;
    case OP_RLIMIT: op_rlimit(a); break;
    case OP_CLONE_INIT: op_clone_init(); break;
    case OP_BIND_START_SOCKET: op_bind_start_socket(a); break;
    case OP_PDEATHSIG: op_pdeathsig(a); break;
    case OP_SETNS_FD: op_setns_fd(a); break;
    case OP_ENTER_ROOT: op_enter_root(a); break;
    case OP_ROOT_DIR: op_root_dir(a); break;
    case OP_CPU_AFFINITY: op_cpu_affinity(a); break;
    case OP_SCHED_ATTR: op_sched_attr(a); break;
    case OP_IOPRIO: op_ioprio(a); break;
    case OP_MEMPOLICY: op_mempolicy(a); break;
    case OP_CHROOT: op_chroot(); break;
    case OP_OPEN_PROC: op_open_proc(); break;
    case OP_OPEN_TREE: op_open_tree(a); break;
    case OP_MOUNT: op_mount(a); break;
    case OP_ROOT_PROPAGATION: op_root_propagation(a); break;
    case OP_ROOTFS: op_rootfs(a); break;
    case OP_DEVICE: op_device(a); break;
    case OP_SYMLINK: op_symlink(a); break;
    case OP_SYNC_HOOKS: op_sync_hooks(); break;
    case OP_HOOK: op_hook(a); break;
    case OP_PIVOT_ROOT: op_pivot_root(); break;
    case OP_MOVE_ROOT: op_move_root(); break;
    case OP_LOOPBACK_UP: op_loopback_up(); break;
    case OP_MKDIR: op_mkdir(a); break;
    case OP_MASK_PATH: op_mask_path(a); break;
    case OP_READONLY_PATH: op_readonly_path(a); break;
    case OP_REMOUNT_RO: op_remount_ro(a); break;
    case OP_HOSTNAME: op_hostname(a); break;
    case OP_DOMAINNAME: op_domainname(a); break;
    case OP_CONSOLE: op_console(a); break;
    case OP_KEYRING: op_keyring(a); break;
    case OP_PERSONALITY: op_personality(a); break;
    case OP_UMASK: op_umask(a); break;
    case OP_CAPS_BOUNDING: op_caps_bounding(a); break;
    case OP_KEEPCAPS: op_keepcaps(a); break;
    case OP_SET_USER: op_set_user(a); break;
    case OP_CAPS: op_caps(a); break;
    case OP_CHDIR: op_chdir(a); break;
    case OP_NO_NEW_PRIVS: op_no_new_privs(); break;
    case OP_LOOKUP_EXEC: op_lookup_exec(a); break;
    case OP_READY: op_ready(); break;
    case OP_SECCOMP: op_seccomp(a); break;
    case OP_CLOEXEC_FROM: op_cloexec_from(a); break;
    case OP_RESET_SIGNALS: reset_signals(); break;
    case OP_EXEC: op_exec(a); break;
    case OP_CLEAR_NONBLOCK: op_clear_nonblock(a); break;
    case OP_INIT_REAPER: op_init_reaper(); break;
    case OP_CAPSET: op_capset(a); break;
    case OP_SYSCTL: op_sysctl(a); break;
    case OP_LSM_ATTR_DIR: op_lsm_attr_dir(a); break;
    case OP_LSM_ATTR: op_lsm_attr(a); break;
    case OP_FILE_LABEL: op_file_label(a); break;
    case OP_MASK_TMPFS_DATA: op_mask_tmpfs_data(a); break;
    default: die("plan: %s has no implementation in tsrun-init", op_name(op.code));
  }
}

void run(const Plan& plan) {
  for (uint32_t k = 0; k < plan.count; k++) {
    const Op& op = plan.ops[k];
    const TsrunOpSpec* spec = op_spec(op.code);
    if (!spec) die("plan: unknown op %u", op.code);
    check_op(op, *spec);
    run_op(op);
    advance_phase(op, *spec);
  }
  die("plan ended without OP_EXEC");
}

}  // namespace

int shim_main(int ctl, int dirfd);  // shim.cc

int main(int argc, char** argv) {
  // Nothing of the container may reach this process while it is being set up, and nothing of ours may
  // leak into the container: not dumpable, and (but for the shim, which outlives tsrun) die with tsrun.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (argc >= 4 && strcmp(argv[1], "shim") == 0) {
    reset_signals();
    return shim_main(atoi(argv[2]), atoi(argv[3]));
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("tsrun-init"), 0, 0, 0);
  reset_signals();
  signal(SIGPIPE, SIG_IGN);  // errors on closed sockets come back as EPIPE; reset before exec
  if (argc < 2) {
    dprintf(2, "tsrun-init: internal helper of tsrun; not meant to be run by hand\n");
    return 2;
  }
  g.sync = atoi(argv[1]);
  g.report = g.sync;
  g.debug = argc > 2 && strcmp(argv[2], "debug") == 0;
  uint32_t type = 0, len = 0;
  char* payload = nullptr;
  if (!recv_frame(g.sync, &type, &payload, &len) || type != MSG_PLAN) die("read plan from tsrun: %s", err());
  Plan plan = parse_plan(payload, len);
  run(plan);
}
