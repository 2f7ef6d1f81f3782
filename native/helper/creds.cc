// Credentials: the bounding set, groups, gid and uid, the capability sets, the keyring, personality,
// umask, no_new_privs and the seccomp filter (whose notify fd goes back to tsrun, which hands it to the
// listener with the container process state: src/seccomp/listener.ts).
#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <grp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/scm.h"
#include "helper.h"

#ifndef KEYCTL_JOIN_SESSION_KEYRING
#define KEYCTL_JOIN_SESSION_KEYRING 1
#endif

// Credentials

// The highest capability the kernel knows: asked of the kernel (PR_CAPBSET_READ fails past it), not read
// from /proc/sys/kernel/cap_last_cap, which after pivot_root is whatever the container's /proc shows.
int last_cap() {
  static int cached = -1;
  if (cached >= 0) return cached;
  int c = 0;
  while (c < 63 && prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0) c++;
  return cached = c;
}

uint64_t mask_of(Args& a) {
  uint64_t lo = static_cast<uint64_t>(a.i()) & 0xffffffffu;
  uint64_t hi = static_cast<uint64_t>(a.i()) & 0xffffffffu;
  return lo | (hi << 32);
}

void op_caps_bounding(Args a) {
  uint64_t keep = mask_of(a);
  for (int c = 0; c <= last_cap(); c++) {
    if (keep & (1ULL << c)) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) die("drop capability %d from bounding set: %s", c, err());
  }
}

// capset(2) of the effective, permitted and inheritable sets, or die naming `what`.
void set_caps(uint64_t eff, uint64_t perm, uint64_t inh, const char* what) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  data[0].effective = static_cast<uint32_t>(eff);
  data[1].effective = static_cast<uint32_t>(eff >> 32);
  data[0].permitted = static_cast<uint32_t>(perm);
  data[1].permitted = static_cast<uint32_t>(perm >> 32);
  data[0].inheritable = static_cast<uint32_t>(inh);
  data[1].inheritable = static_cast<uint32_t>(inh >> 32);
  if (syscall(SYS_capset, &hdr, data) != 0) die("%s (capset): %s", what, err());
}

void op_caps(Args a) {
  uint64_t eff = mask_of(a), perm = mask_of(a), inh = mask_of(a), amb = mask_of(a);
  set_caps(eff, perm, inh, "set capabilities");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) die("clear ambient capabilities: %s", err());
  for (int c = 0; c <= last_cap(); c++) {
    if (!(amb & (1ULL << c))) continue;
    // Like runc, an ambient capability the kernel refuses (not in permitted and inheritable) is skipped.
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0) debugf("ambient capability %d not raised: %s", c, err());
  }
}

void op_set_user(Args a) {
  uid_t uid = static_cast<uid_t>(a.i());
  gid_t gid = static_cast<gid_t>(a.i());
  int64_t n = a.i();
  if (n >= 0) {
    gid_t* groups = static_cast<gid_t*>(calloc(static_cast<size_t>(n) + 1, sizeof(gid_t)));
    if (!groups) die("set groups: out of memory");
    for (int64_t k = 0; k < n; k++) groups[k] = static_cast<gid_t>(a.i());
    if (setgroups(static_cast<size_t>(n), groups) != 0) die("setgroups: %s", err());
    free(groups);
  }
  if (setresgid(gid, gid, gid) != 0) die("setresgid %u: %s", gid, err());
  if (setresuid(uid, uid, uid) != 0) die("setresuid %u: %s", uid, err());
}

// runc's finalizeNamespace: the cwd is entered as root first (CHDIR_AS_ROOT), so a directory only root
// may enter works for any user; only when that is refused for permission (EACCES/EPERM: a directory root
// cannot enter, such as a volume owned by an unmapped user) is it tried again with the user's rights
// (CHDIR_AS_USER, after SET_USER); any other error fails at once.
static bool cwd_pending = false;

void op_chdir(Args a) {
  const char* cwd = a.s();
  int64_t when = a.i();
  if (when == CHDIR_AS_USER && !cwd_pending) return;
  if (chdir(cwd) != 0) {
    if (when == CHDIR_AS_ROOT && (errno == EACCES || errno == EPERM)) {
      cwd_pending = true;
      return;
    }
    die("chdir to cwd (\"%s\") set in config.json failed: %s", cwd, err());
  }
  cwd_pending = false;
  // A cwd reached through a leaked fd would lie outside the root: getcwd then fails or says "(unreachable)".
  char buf[4096];
  if (!getcwd(buf, sizeof(buf))) die("cwd %s: getcwd: %s (is it outside the container's root?)", cwd, err());
  if (buf[0] != '/') die("cwd %s is outside the container's root", cwd);
}

void op_capset(Args a) {
  uint64_t eff = mask_of(a), perm = mask_of(a), inh = mask_of(a);
  set_caps(eff, perm, inh, "drop the capabilities kept for loading the seccomp filter");
}

void op_keepcaps(Args a) {
  if (prctl(PR_SET_KEEPCAPS, static_cast<unsigned long>(a.i()), 0, 0, 0) != 0) die("set keep-capabilities: %s", err());
}

void op_no_new_privs() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("set no_new_privs: %s", err());
}

void op_umask(Args a) { umask(static_cast<mode_t>(a.i())); }

void op_keyring(Args a) {
  const char* name = a.s();
  if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name, 0, 0, 0) < 0 && errno != ENOSYS) die("join session keyring %s: %s", name, err());
}

void op_personality(Args a) {
  unsigned long p = static_cast<unsigned long>(a.i());
  if (personality(p) < 0) die("set personality 0x%lx: %s", p, err());
}

// The filter, loaded last before exec. With SECCOMP_FILTER_FLAG_NEW_LISTENER the notify fd goes back to the
// tsrun this process answers to (`tsrun start` for the init, `tsrun exec` for an exec) in MSG_SECCOMP_FD, as
// runc's init hands it to its parent; tsrun sends it to the listener with the container process state and
// acks. Only sendmsg(2) is used to send it (tsrun refuses profiles that notify sendmsg).
void op_seccomp(Args a) {
  const Arg& prog = a.raw_s();
  int64_t flags = a.i();
  if (prog.len % sizeof(struct sock_filter) != 0 || prog.len == 0) die("seccomp: bad program length %u", prog.len);
  struct sock_fprog fprog;
  fprog.len = static_cast<unsigned short>(prog.len / sizeof(struct sock_filter));
  fprog.filter = reinterpret_cast<struct sock_filter*>(const_cast<char*>(prog.s));
  long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, static_cast<unsigned>(flags), &fprog);
  if (fd < 0) die("load seccomp filter: %s", err());
  if (!(flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)) return;
  if (g.report < 0) die("seccomp: no connection to tsrun to hand the notify fd to");
  int notify_fd = static_cast<int>(fd);
  uint32_t frame[2] = {4, MSG_SECCOMP_FD};
  int rc = scm_send(g.report, frame, sizeof(frame), &notify_fd, 1);
  if (rc != 0) die("seccomp: hand the notify fd to tsrun: %s", strerror(-rc));
  close(notify_fd);
  await_ack(g.report, "seccomp: the listener's notify fd");
}
