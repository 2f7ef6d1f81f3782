// tsrun-init: executes a plan sent by tsrun, becomes the container's init, and execs the user process.
//
// It is a small static program, run from a sealed memfd copy, so that:
//  - it is single-threaded (unshare(CLONE_NEWUSER) works, and fork is safe),
//  - the waiting init holds no Node heap (RSS in the hundreds of KB),
//  - /proc/<init>/exe is a sealed anonymous file, never a host binary (CVE-2019-5736 class).
//
// Usage (by tsrun only): tsrun-init <sync fd>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "paths.h"
#include "plan.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef KEYCTL_JOIN_SESSION_KEYRING
#define KEYCTL_JOIN_SESSION_KEYRING 1
#endif

namespace {

// ---------------------------------------------------------------------------------------------------------
// Reporting

int g_report = -1;   // where errors go: the sync socket during create, the start connection after it
int g_sync = -1;     // the sync socket with `tsrun create`
bool g_debug = false;
int g_rootfd = -1;   // O_PATH fd of the rootfs before pivot_root
char g_rootfs[4096];
int g_listen = -1;   // listening start socket
char* g_state = nullptr;  // state JSON for hooks
uint32_t g_state_len = 0;
char g_exec_path[4096];
int32_t g_init_pid = 0;   // the container init's pid as tsrun sees it (from the set-up helper's clone)

[[noreturn]] void die(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void die(const char* fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (n >= static_cast<int>(sizeof(msg))) n = sizeof(msg) - 1;
  if (!send_frame(g_report, MSG_ERROR, msg, static_cast<uint32_t>(n))) {
    // Nobody to tell (tsrun went away): stderr is the container's, but it is the only place left.
    dprintf(2, "tsrun-init: %s\n", msg);
  }
  _exit(1);
}

void debugf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void debugf(const char* fmt, ...) {
  if (!g_debug || g_sync < 0) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n >= static_cast<int>(sizeof(msg))) n = sizeof(msg) - 1;
  send_frame(g_sync, MSG_LOG, msg, static_cast<uint32_t>(n));
}

const char* err() { return strerror(errno); }

// ---------------------------------------------------------------------------------------------------------
// The plan

struct Arg {
  int64_t i;
  const char* s;  // NUL-terminated, points into the plan buffer (copied)
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

// Bounds-checked cursor over the plan bytes.
struct Reader {
  const unsigned char* p;
  const unsigned char* end;
  bool take(void* out, size_t n) {
    if (static_cast<size_t>(end - p) < n) return false;
    memcpy(out, p, n);
    p += n;
    return true;
  }
};

Plan parse_plan(char* buf, uint32_t len) {
  Reader r{reinterpret_cast<unsigned char*>(buf), reinterpret_cast<unsigned char*>(buf) + len};
  Plan plan{nullptr, 0};
  if (!r.take(&plan.count, 4) || plan.count > 100000) die("plan: bad op count");
  plan.ops = static_cast<Op*>(calloc(plan.count, sizeof(Op)));
  if (!plan.ops) die("plan: out of memory");
  for (uint32_t k = 0; k < plan.count; k++) {
    Op& op = plan.ops[k];
    if (!r.take(&op.code, 2) || !r.take(&op.argc, 2)) die("plan: truncated op %u", k);
    op.args = static_cast<Arg*>(calloc(op.argc ? op.argc : 1, sizeof(Arg)));
    if (!op.args) die("plan: out of memory");
    for (uint16_t a = 0; a < op.argc; a++) {
      uint8_t tag;
      if (!r.take(&tag, 1)) die("plan: truncated arg %u of op %u", a, k);
      Arg& arg = op.args[a];
      if (tag == 0) {
        if (!r.take(&arg.i, 8)) die("plan: truncated int of op %u", k);
      } else if (tag == 1) {
        if (!r.take(&arg.len, 4) || static_cast<size_t>(r.end - r.p) < arg.len) die("plan: truncated string of op %u", k);
        char* s = static_cast<char*>(malloc(arg.len + 1));
        if (!s) die("plan: out of memory");
        memcpy(s, r.p, arg.len);
        s[arg.len] = 0;
        r.p += arg.len;
        arg.s = s;
        arg.is_str = true;
      } else {
        die("plan: bad arg tag %u in op %u", tag, k);
      }
    }
  }
  if (r.p != r.end) die("plan: %zu trailing bytes", static_cast<size_t>(r.end - r.p));
  return plan;
}

// Typed access to an op's arguments; a malformed plan is a bug in tsrun, reported as such.
struct Args {
  const Op& op;
  uint16_t next = 0;
  int64_t i() {
    if (next >= op.argc || op.args[next].is_str) die("plan: op %u: expected an int at arg %u", op.code, next);
    return op.args[next++].i;
  }
  const char* s() {
    if (next >= op.argc || !op.args[next].is_str) die("plan: op %u: expected a string at arg %u", op.code, next);
    return op.args[next++].s;
  }
  const Arg& raw_s() {
    if (next >= op.argc || !op.args[next].is_str) die("plan: op %u: expected bytes at arg %u", op.code, next);
    return op.args[next++];
  }
  // A counted list of strings as a NULL-terminated vector.
  char** strv() {
    int64_t n = i();
    if (n < 0 || n > op.argc) die("plan: op %u: bad list length", op.code);
    char** v = static_cast<char**>(calloc(static_cast<size_t>(n) + 1, sizeof(char*)));
    if (!v) die("plan: out of memory");
    for (int64_t k = 0; k < n; k++) v[k] = const_cast<char*>(s());
    return v;
  }
};

// ---------------------------------------------------------------------------------------------------------
// Paths inside the rootfs (paths.cc) and mounts by fd
//
// Every mount destination is opened once, inside the rootfs (paths.h), and everything after acts on that
// fd or on a detached mount: a new filesystem is made with fsopen/fsmount, a bind is cloned with
// open_tree, flags are set with mount_setattr before the mount is attached, and move_mount attaches it
// onto the fd. Nothing is re-resolved by path, so a symlink swapped in meanwhile redirects nothing.

int g_procfd = -1;  // the helper's own procfs (OP_OPEN_PROC): writes to /proc and fd reopens go through it

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif
#ifndef DEVPTS_SUPER_MAGIC
#define DEVPTS_SUPER_MAGIC 0x1cd1
#endif

// "thread-self/fd/N" under the helper's procfs: the file an fd names, reached without the container's /proc.
struct ProcFd {
  char buf[64];
  explicit ProcFd(int fd) { snprintf(buf, sizeof(buf), "thread-self/fd/%d", fd); }
};

int need_proc(const char* what) {
  if (g_procfd < 0) die("%s: the plan opened no procfs (OP_OPEN_PROC)", what);
  return g_procfd;
}

// Where an fd's file is, as a path in the helper's mount namespace.
void fd_path(int fd, char* out, size_t size, const char* what) {
  ProcFd p(fd);
  ssize_t n = readlinkat(need_proc(what), p.buf, out, size - 1);
  if (n < 0) die("%s: read the path of fd %d: %s", what, fd, err());
  out[n] = 0;
}

// The helper's procfs: a fresh instance of its own (fsopen), or else the /proc it sees now (the host's,
// before the rootfs is entered); either way checked to be the root of a procfs.
void op_open_proc() {
  int mnt = -1;
  int fs = fsopen("proc", FSOPEN_CLOEXEC);
  if (fs >= 0) {
    if (fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0) mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    if (mnt < 0) debugf("open procfs: fsopen/fsmount: %s; using /proc", err());
    close(fs);
  }
  if (mnt < 0) mnt = open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (mnt < 0) die("open procfs /proc: %s", err());
  struct statfs sf;
  struct stat st;
  if (fstatfs(mnt, &sf) != 0 || fstat(mnt, &st) != 0) die("open procfs: stat: %s", err());
  if (sf.f_type != PROC_SUPER_MAGIC || st.st_ino != 1) die("open procfs: /proc is not the root of a procfs");
  if (g_procfd >= 0) close(g_procfd);
  g_procfd = mnt;
}

// MS_* per-mount flags as mount_setattr/fsmount attributes.
uint64_t mount_attrs(unsigned long ms) {
  uint64_t a = 0;
  if (ms & MS_RDONLY) a |= MOUNT_ATTR_RDONLY;
  if (ms & MS_NOSUID) a |= MOUNT_ATTR_NOSUID;
  if (ms & MS_NODEV) a |= MOUNT_ATTR_NODEV;
  if (ms & MS_NOEXEC) a |= MOUNT_ATTR_NOEXEC;
  if (ms & MS_NODIRATIME) a |= MOUNT_ATTR_NODIRATIME;
  if (ms & MS_NOSYMFOLLOW) a |= MOUNT_ATTR_NOSYMFOLLOW;
  if (ms & MS_NOATIME)
    a |= MOUNT_ATTR_NOATIME;
  else if (ms & MS_STRICTATIME)
    a |= MOUNT_ATTR_STRICTATIME;
  else if (ms & MS_RELATIME)
    a |= MOUNT_ATTR_RELATIME;
  return a;
}

const uint64_t kAtimeAttrs = MOUNT_ATTR_NOATIME | MOUNT_ATTR_STRICTATIME | MOUNT_ATTR_RELATIME;

// Sets per-mount flags on the mount `fd` is the root of (only sets: flags a user namespace locked stay).
// An access-time mode the namespace has locked is kept as it is, as a remount would have to.
int set_mount_attrs(int fd, uint64_t attrs, bool recursive) {
  if (!attrs) return 0;
  struct mount_attr ma;
  memset(&ma, 0, sizeof(ma));
  ma.attr_set = attrs;
  if (attrs & kAtimeAttrs) ma.attr_clr = MOUNT_ATTR__ATIME;
  unsigned at = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
  if (mount_setattr(fd, "", at, &ma, sizeof(ma)) == 0) return 0;
  if (errno != EPERM || !(attrs & kAtimeAttrs)) return -1;
  ma.attr_set = attrs & ~kAtimeAttrs;
  ma.attr_clr = 0;
  return ma.attr_set ? mount_setattr(fd, "", at, &ma, sizeof(ma)) : 0;
}

// Attaches the detached mount `tree` onto the file or directory `dest` is open on.
int attach(int tree, int dest) { return move_mount(tree, "", dest, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH); }

// A detached bind of what `fd` is open on (a file, a directory, a pty).
int clone_of(int fd, bool recursive) {
  return open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
}

const unsigned long kPropagation = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

void set_propagation(int mnt, int64_t prop, const char* dest) {
  static const unsigned long kBits[] = {MS_SHARED, MS_PRIVATE, MS_SLAVE, MS_UNBINDABLE};
  for (unsigned long bit : kBits) {
    if (!(prop & static_cast<int64_t>(bit))) continue;
    struct mount_attr ma;
    memset(&ma, 0, sizeof(ma));
    ma.propagation = bit;
    unsigned at = AT_EMPTY_PATH | (prop & MS_REC ? AT_RECURSIVE : 0);
    if (mount_setattr(mnt, "", at, &ma, sizeof(ma)) != 0) die("set propagation of %s: %s", dest, err());
  }
}

// The kernel's own words on a refused fsconfig (the fs context's log), appended to a message.
void fs_log(int fs, char* out, size_t size) {
  out[0] = 0;
  size_t used = 0;
  char line[512];
  for (int k = 0; k < 8; k++) {
    ssize_t n = read(fs, line, sizeof(line) - 1);
    if (n <= 0) break;
    line[n] = 0;
    int w = snprintf(out + used, size - used, " (%s)", line);
    if (w < 0 || static_cast<size_t>(w) >= size - used) break;
    used += static_cast<size_t>(w);
  }
}

// A new filesystem of `fstype`, detached, with mount(2)'s superblock flags and data options given to
// fsconfig one by one.
int new_filesystem(const char* source, const char* dest, const char* fstype, unsigned long flags, const char* data) {
  int fs = fsopen(fstype, FSOPEN_CLOEXEC);
  if (fs < 0) die("mount %s on %s (type %s): fsopen: %s", source, dest, fstype, err());
  char log[1024];
  auto check = [&](int rc, const char* key) {
    if (rc == 0) return;
    int e = errno;
    fs_log(fs, log, sizeof(log));
    die("mount %s on %s (type %s, data \"%s\"): %s: %s%s", source, dest, fstype, data, key, strerror(e), log);
  };
  if (*source) check(fsconfig(fs, FSCONFIG_SET_STRING, "source", source, 0), "source");
  static const struct {
    unsigned long ms;
    const char* key;
  } kSb[] = {{MS_RDONLY, "ro"}, {MS_SYNCHRONOUS, "sync"}, {MS_DIRSYNC, "dirsync"}, {MS_LAZYTIME, "lazytime"}, {MS_MANDLOCK, "mand"}};
  for (const auto& f : kSb)
    if (flags & f.ms) check(fsconfig(fs, FSCONFIG_SET_FLAG, f.key, nullptr, 0), f.key);
  char opts[4096];
  snprintf(opts, sizeof(opts), "%s", data);
  char* save = nullptr;
  for (char* o = strtok_r(opts, ",", &save); o; o = strtok_r(nullptr, ",", &save)) {
    char* eq = strchr(o, '=');
    if (eq) {
      *eq = 0;
      check(fsconfig(fs, FSCONFIG_SET_STRING, o, eq + 1, 0), o);
    } else {
      check(fsconfig(fs, FSCONFIG_SET_FLAG, o, nullptr, 0), o);
    }
  }
  check(fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0), "create");
  int mnt = fsmount(fs, FSMOUNT_CLOEXEC, static_cast<unsigned>(mount_attrs(flags)));
  if (mnt < 0) check(-1, "fsmount");
  close(fs);
  return mnt;
}

// runc's check of the destination as it resolved (checkProcMount on the real path, and "mountpoint is on
// the top of rootfs"): TypeScript checked the destination as written; a destination that only reaches
// /proc (or the root) through a symlink is refused here.
void check_destination(int fd, const char* dest) {
  char real[4096];
  fd_path(fd, real, sizeof(real), "mount");
  size_t n = strlen(g_rootfs);
  while (n > 1 && g_rootfs[n - 1] == '/') n--;
  if (strncmp(real, g_rootfs, n) != 0 || (real[n] != 0 && real[n] != '/'))
    die("mount on %s: mountpoint %s is outside of rootfs %s", dest, real, g_rootfs);
  const char* in = real[n] ? real + n : "/";
  if (strcmp(in, "/") == 0) die("mount on %s: mountpoint %s is on the top of rootfs %s", dest, real, g_rootfs);
  if (strcmp(in, dest) == 0) return;
  if (strcmp(in, "/proc") == 0) die("check proc-safety of %s mount: \"%s\" cannot be mounted because it is not of type proc", dest, in);
  if (strncmp(in, "/proc/", 6) == 0) die("check proc-safety of %s mount: \"%s\" cannot be mounted because it is inside /proc", dest, in);
}
// tmpcopyup (runc's extension): what the directory held before a tmpfs was mounted over it is copied
// into the tmpfs — files, directories, symlinks and special files, with their modes and owners.
void copy_tree(int src, int dst, const char* where) {
  int scan = dup(src);
  DIR* d = scan >= 0 ? fdopendir(scan) : nullptr;
  if (!d) die("tmpcopyup %s: read directory: %s", where, err());
  struct dirent* e;
  while ((e = readdir(d)) != nullptr) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    struct stat st;
    if (fstatat(src, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) die("tmpcopyup %s/%s: stat: %s", where, e->d_name, err());
    if (S_ISDIR(st.st_mode)) {
      if (mkdirat(dst, e->d_name, st.st_mode & 07777) != 0 && errno != EEXIST) die("tmpcopyup %s/%s: mkdir: %s", where, e->d_name, err());
      int s2 = openat(src, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      int d2 = openat(dst, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (s2 < 0 || d2 < 0) die("tmpcopyup %s/%s: open: %s", where, e->d_name, err());
      copy_tree(s2, d2, where);
      close(s2);
      close(d2);
    } else if (S_ISREG(st.st_mode)) {
      int in = openat(src, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      int out = openat(dst, e->d_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777);
      if (in < 0 || out < 0) die("tmpcopyup %s/%s: open: %s", where, e->d_name, err());
      char buf[65536];
      ssize_t n;
      while ((n = read(in, buf, sizeof(buf))) > 0)
        if (!write_full(out, buf, static_cast<size_t>(n))) die("tmpcopyup %s/%s: write: %s", where, e->d_name, err());
      if (n < 0) die("tmpcopyup %s/%s: read: %s", where, e->d_name, err());
      close(in);
      close(out);
    } else if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlinkat(src, e->d_name, target, sizeof(target) - 1);
      if (n < 0) die("tmpcopyup %s/%s: readlink: %s", where, e->d_name, err());
      target[n] = 0;
      if (symlinkat(target, dst, e->d_name) != 0) die("tmpcopyup %s/%s: symlink: %s", where, e->d_name, err());
    } else if (mknodat(dst, e->d_name, st.st_mode, st.st_rdev) != 0) {
      die("tmpcopyup %s/%s: mknod: %s", where, e->d_name, err());
    }
    if (fchownat(dst, e->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) die("tmpcopyup %s/%s: chown: %s", where, e->d_name, err());
    if (!S_ISLNK(st.st_mode) && fchmodat(dst, e->d_name, st.st_mode & 07777, 0) != 0) die("tmpcopyup %s/%s: chmod: %s", where, e->d_name, err());
  }
  closedir(d);
}

// "remount": changes the mount already at dest, through an fd of it: a bind's per-mount flags only, else
// the superblock (fspick + reconfigure, as mount(2)'s MS_REMOUNT) and then the per-mount flags.
void remount(const char* source, const char* dest, const char* fstype, unsigned long flags, const char* data, bool bind) {
  int fd = root_open(g_rootfd, dest);
  if (fd < 0) die("remount %s: resolve destination in rootfs: %s", dest, err());
  check_destination(fd, dest);
  if (!bind) {
    int fs = fspick(fd, "", FSPICK_EMPTY_PATH | FSPICK_CLOEXEC);
    if (fs < 0) die("remount %s: fspick: %s", dest, err());
    char log[1024];
    auto check = [&](int rc, const char* key) {
      if (rc == 0) return;
      int e = errno;
      fs_log(fs, log, sizeof(log));
      die("remount %s on %s (type %s, data \"%s\"): %s: %s%s", source, dest, fstype, data, key, strerror(e), log);
    };
    check(fsconfig(fs, FSCONFIG_SET_FLAG, flags & MS_RDONLY ? "ro" : "rw", nullptr, 0), flags & MS_RDONLY ? "ro" : "rw");
    char opts[4096];
    snprintf(opts, sizeof(opts), "%s", data);
    char* save = nullptr;
    for (char* o = strtok_r(opts, ",", &save); o; o = strtok_r(nullptr, ",", &save)) {
      char* eq = strchr(o, '=');
      if (eq) *eq = 0;
      check(eq ? fsconfig(fs, FSCONFIG_SET_STRING, o, eq + 1, 0) : fsconfig(fs, FSCONFIG_SET_FLAG, o, nullptr, 0), o);
    }
    check(fsconfig(fs, FSCONFIG_CMD_RECONFIGURE, nullptr, nullptr, 0), "reconfigure");
    close(fs);
  }
  if (set_mount_attrs(fd, mount_attrs(flags & ~(MS_BIND | MS_REC | MS_REMOUNT | kPropagation)), false) != 0) die("remount %s: %s", dest, err());
  close(fd);
}

void op_mount(Args a) {
  const char* source = a.s();
  const char* dest = a.s();
  const char* fstype = a.s();
  unsigned long flags = static_cast<unsigned long>(a.i());
  const char* data = a.s();
  int64_t prop = a.i();
  int64_t kind = a.i();
  int64_t opts = a.i();
  bool bind = (flags & MS_BIND) != 0;
  bool ordinary = (opts & 8) != 0;
  if (flags & MS_REMOUNT) {
    remount(source, dest, fstype, flags, data, bind);
    return;
  }

  // The detached mount first: a clone of the bind source (resolved on the host, as runc does), or a new
  // filesystem.
  int mnt;
  if (bind) {
    mnt = open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (opts & 2 ? AT_RECURSIVE : 0));
    if (mnt < 0) die("mount %s on %s (bind): %s", source, dest, err());
    if (kind == 2) {  // by source: a bind of a non-directory gets a file as its mount point
      struct stat st;
      if (fstat(mnt, &st) != 0) die("mount %s on %s: stat source: %s", source, dest, err());
      kind = S_ISDIR(st.st_mode) ? 0 : 1;
    }
    unsigned long rest = flags & ~(MS_BIND | MS_REC | MS_REMOUNT | kPropagation);
    if (set_mount_attrs(mnt, mount_attrs(rest), false) != 0) die("remount %s on %s with options: %s", source, dest, err());
  } else {
    mnt = new_filesystem(source, dest, fstype, flags & ~kPropagation, data);
  }

  // The destination, opened once; procfs and sysfs only on a directory of its own.
  int fd = ordinary ? root_make_real_dir(g_rootfd, dest) : kind == 1 ? root_make_file(g_rootfd, dest) : root_make_dir(g_rootfd, dest);
  if (fd < 0) {
    if (ordinary && (errno == ELOOP || errno == ENOTDIR)) die("mount %s on %s: filesystem \"%s\" must be mounted on ordinary directory", source, dest, fstype);
    die("mount %s on %s: resolve destination in rootfs: %s", source, dest, err());
  }
  check_destination(fd, dest);

  if (opts & 4) {  // tmpcopyup: the directory's contents go into the new tmpfs before it covers them
    int under = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int top = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (under < 0 || top < 0) die("mount %s on %s: open for tmpcopyup: %s", source, dest, err());
    copy_tree(under, top, dest);
    close(top);
    close(under);
  }
  if (attach(mnt, fd) != 0) die("mount %s on %s%s: %s", source, dest, bind ? " (bind)" : "", err());
  if (ordinary) {
    // What sits at the destination now must be the filesystem just made.
    int now = root_open_real(g_rootfd, dest);
    struct statfs want, got;
    if (now < 0 || fstatfs(mnt, &want) != 0 || fstatfs(now, &got) != 0) die("mount %s on %s: check the new mount: %s", source, dest, err());
    if (want.f_type != got.f_type) die("mount %s on %s: after mounting, %s is not a %s filesystem", source, dest, dest, fstype);
    close(now);
  }
  if (prop) set_propagation(mnt, prop, dest);
  close(mnt);
  close(fd);
  debugf("mounted %s on %s (%s)", source, dest, fstype);
}

// Make the mount holding `path` private, so binding the rootfs does not propagate to the host and
// pivot_root's check (the new root's parent must not be shared) passes.
void make_parent_private(const char* path) {
  // Find the mount point containing path by walking up until the device changes or "/" is reached.
  char buf[4096];
  snprintf(buf, sizeof(buf), "%s", path);
  for (;;) {
    if (mount(nullptr, buf, nullptr, MS_PRIVATE, nullptr) == 0) return;
    if (errno != EINVAL) die("make parent mount of %s private (%s): %s", path, buf, err());
    char* slash = strrchr(buf, '/');
    if (!slash) return;
    if (slash == buf) {
      if (buf[1] == 0) return;
      buf[1] = 0;
    } else {
      *slash = 0;
    }
  }
}

void op_rootfs(Args a) {
  const char* rootfs = a.s();
  snprintf(g_rootfs, sizeof(g_rootfs), "%s", rootfs);
  make_parent_private(rootfs);
  if (mount(rootfs, rootfs, nullptr, MS_BIND | MS_REC, nullptr) != 0) die("bind rootfs %s on itself: %s", rootfs, err());
  g_rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (g_rootfd < 0) die("open rootfs %s: %s", rootfs, err());
}

void op_device(Args a) {
  const char* path = a.s();
  mode_t type = static_cast<mode_t>(a.i());
  mode_t mode = static_cast<mode_t>(a.i());
  unsigned major_ = static_cast<unsigned>(a.i());
  unsigned minor_ = static_cast<unsigned>(a.i());
  uid_t uid = static_cast<uid_t>(a.i());
  gid_t gid = static_cast<gid_t>(a.i());
  bool bind = a.i() != 0;

  if (bind) {
    // In a user namespace mknod is not allowed: bind the host's node on an empty file of its own.
    char host[4096];
    snprintf(host, sizeof(host), "/%s", path[0] == '/' ? path + 1 : path);
    int tree = open_tree(AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (tree < 0) die("bind device %s: %s", host, err());
    int t = root_make_real_file(g_rootfd, path);
    if (t < 0) die("create device %s: create mount point: %s", path, err());
    if (attach(tree, t) != 0) die("bind device %s: %s", host, err());
    close(tree);
    close(t);
    return;
  }
  // The parent directory, resolved in root; the node itself is (re)made in it.
  char name[256];
  int dfd = root_make_parent(g_rootfd, path, name, sizeof(name));
  if (dfd < 0) die("create device %s: resolve parent directory: %s", path, err());
  if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT) die("create device %s: remove old node: %s", path, err());
  if (mknodat(dfd, name, type | (mode & 07777), makedev(major_, minor_)) != 0) die("mknod %s: %s", path, err());
  // mknod is subject to the umask: set the mode explicitly (through the node's fd); then the owner.
  int t = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (t < 0) die("open device %s: %s", path, err());
  struct stat st;
  if (fstat(t, &st) != 0 || (st.st_mode & S_IFMT) != type) die("create device %s: the new node was replaced", path);
  ProcFd p(t);
  if (fchmodat(need_proc("chmod device"), p.buf, mode & 07777, 0) != 0) die("chmod device %s: %s", path, err());
  if (fchownat(t, "", uid, gid, AT_EMPTY_PATH) != 0) die("chown device %s: %s", path, err());
  close(t);
  close(dfd);
}

void op_symlink(Args a) {
  const char* target = a.s();
  const char* link = a.s();
  char name[256];
  int dfd = root_make_parent(g_rootfd, link, name, sizeof(name));
  if (dfd < 0) die("symlink %s: resolve parent directory: %s", link, err());
  if (symlinkat(target, dfd, name) != 0 && errno != EEXIST) die("symlink %s -> %s: %s", link, target, err());
  close(dfd);
}

void op_pivot_root() {
  if (fchdir(g_rootfd) != 0) die("pivot_root: chdir to rootfs %s: %s", g_rootfs, err());
  // pivot_root(".", ".") stacks the old root under the new one; then detach it.
  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) die("pivot_root: open old root: %s", err());
  if (syscall(SYS_pivot_root, ".", ".") != 0) die("pivot_root %s: %s", g_rootfs, err());
  if (fchdir(oldroot) != 0) die("pivot_root: chdir to old root: %s", err());
  // Make the old root a slave so the unmount does not propagate to the host.
  if (mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) die("pivot_root: make old root rslave: %s", err());
  if (umount2(".", MNT_DETACH) != 0) die("pivot_root: detach old root: %s", err());
  close(oldroot);
  if (chdir("/") != 0) die("pivot_root: chdir /: %s", err());
  close(g_rootfd);
  g_rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

void op_move_root() {
  if (fchdir(g_rootfd) != 0) die("move root: chdir to rootfs %s: %s", g_rootfs, err());
  if (mount(g_rootfs, "/", nullptr, MS_MOVE, nullptr) != 0) die("move root: MS_MOVE %s to /: %s", g_rootfs, err());
  if (chroot(".") != 0) die("move root: chroot %s: %s", g_rootfs, err());
  if (chdir("/") != 0) die("move root: chdir /: %s", err());
  close(g_rootfd);
  g_rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

// /dev/null of the container, opened once without following it, and checked to be the null device: what
// masked files are bound to (a symlink or another file there would show the container something else).
int g_devnull = -1;

int dev_null(const char* path) {
  if (g_devnull >= 0) return g_devnull;
  int fd = root_open_real(g_rootfd, "/dev/null");
  if (fd < 0 && errno == ELOOP) die("can't mask paths: /dev/null is not the null device (it is a symlink)");
  if (fd < 0) die("mask %s: open /dev/null: %s", path, err());
  struct stat st;
  if (fstat(fd, &st) != 0) die("mask %s: stat /dev/null: %s", path, err());
  if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) die("can't mask paths: /dev/null is not the null device (char 1:3)");
  return g_devnull = fd;
}

void op_mask_path(Args a) {
  const char* path = a.s();
  int fd = root_open(g_rootfd, path);
  if (fd < 0) {
    if (errno == ENOENT) return;
    die("mask %s: %s", path, err());
  }
  struct stat st;
  if (fstat(fd, &st) != 0) die("mask %s: stat: %s", path, err());
  int mnt;
  if (S_ISDIR(st.st_mode)) {
    mnt = new_filesystem("tmpfs", path, "tmpfs", MS_RDONLY, "");
  } else {
    mnt = clone_of(dev_null(path), false);
    if (mnt < 0) die("mask %s: bind /dev/null: %s", path, err());
  }
  if (attach(mnt, fd) != 0) die("mask %s: %s: %s", path, S_ISDIR(st.st_mode) ? "mount read-only tmpfs" : "bind /dev/null", err());
  close(mnt);
  close(fd);
}

void op_readonly_path(Args a) {
  const char* path = a.s();
  int fd = root_open(g_rootfd, path);
  if (fd < 0) {
    if (errno == ENOENT) return;
    die("make %s read-only: %s", path, err());
  }
  int mnt = clone_of(fd, true);
  if (mnt < 0) die("make %s read-only: bind: %s", path, err());
  if (set_mount_attrs(mnt, MOUNT_ATTR_RDONLY, true) != 0) die("make %s read-only: remount: %s", path, err());
  if (attach(mnt, fd) != 0) die("make %s read-only: bind: %s", path, err());
  close(mnt);
  close(fd);
}

void op_remount_ro(Args a) {
  const char* path = a.s();
  int fd = root_open(g_rootfd, path);
  if (fd < 0) die("remount %s read-only: %s", path, err());
  if (set_mount_attrs(fd, MOUNT_ATTR_RDONLY, false) != 0) die("remount %s read-only: %s", path, err());
  close(fd);
}

void op_sysctl(Args a) {
  const char* file = a.s();
  const Arg& value = a.raw_s();
  int fd = proc_open(need_proc("sysctl"), file, O_WRONLY);
  if (fd < 0) die("sysctl: open /proc/%s: %s", file, err());
  if (!write_full(fd, value.s, value.len)) die("sysctl: write \"%s\" to /proc/%s: %s", value.s, file, err());
  close(fd);
}

void op_loopback_up() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("bring lo up: socket: %s", err());
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) die("bring lo up: get flags: %s", err());
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) die("bring lo up: set flags: %s", err());
  close(s);
}

// ---------------------------------------------------------------------------------------------------------
// Console

// A new pty pair from the container's devpts, as runc's safeAllocPty: /dev/pts/ptmx (never /dev/ptmx,
// which an image or a volume can make anything) is opened O_PATH without following it, checked to be the
// ptmx inode of a real devpts mount, and only then opened, through the helper's procfs.
int open_ptmx() {
  int root = g_rootfd >= 0 ? g_rootfd : open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die("console: open /: %s", err());
  int fd = root_open_real(root, "/dev/pts/ptmx");
  if (fd < 0) die("console: open /dev/pts/ptmx in container: %s", errno == ELOOP ? "it is a symlink" : err());
  if (root != g_rootfd) close(root);
  struct statfs sf;
  struct stat st;
  if (fstatfs(fd, &sf) != 0 || fstat(fd, &st) != 0) die("console: stat /dev/pts/ptmx: %s", err());
  if (sf.f_type != DEVPTS_SUPER_MAGIC) die("console: verify ptmx handle: ptmx handle is not on a real devpts mount: super magic is %#lx", static_cast<unsigned long>(sf.f_type));
  if (st.st_ino != 2) die("console: verify ptmx handle: ptmx handle has wrong inode number: %lu", static_cast<unsigned long>(st.st_ino));
  if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(5, 2)) die("console: verify ptmx handle: ptmx handle is not a real char ptmx device");
  ProcFd p(fd);
  int master = openat(need_proc("console"), p.buf, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) die("console: reopen ptmx to get new pty pair: %s", err());
  close(fd);
  return master;
}

void op_console(Args a) {
  int sock = static_cast<int>(a.i());
  int rows = static_cast<int>(a.i());
  int cols = static_cast<int>(a.i());
  uid_t uid = static_cast<uid_t>(a.i());
  gid_t gid = static_cast<gid_t>(a.i());
  bool bind_console = a.i() != 0;
  int master = open_ptmx();
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) != 0) die("console: unlock pty: %s", err());
  unsigned ptn = 0;
  if (ioctl(master, TIOCGPTN, &ptn) != 0) die("console: get pty number: %s", err());
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) die("console: open pty peer: %s", err());
  if (fchown(slave, uid, gid) != 0) die("console: chown /dev/pts/%u: %s", ptn, err());
  if (rows > 0 && cols > 0) {
    struct winsize ws;
    memset(&ws, 0, sizeof(ws));
    ws.ws_row = static_cast<unsigned short>(rows);
    ws.ws_col = static_cast<unsigned short>(cols);
    if (ioctl(master, TIOCSWINSZ, &ws) != 0) die("console: set size: %s", err());
  }
  // /dev/console is the pty, as on a real system: the slave this process holds is bound (never a path to
  // it) onto a /dev/console of its own (a regular file or a device node, never followed if a symlink).
  if (bind_console) {
    int cfd = root_make_real_file(g_rootfd, "/dev/console");
    if (cfd < 0) die("console: create /dev/console: %s", errno == ELOOP ? "it is a symlink" : err());
    struct stat st;
    if (fstat(cfd, &st) != 0) die("console: stat /dev/console: %s", err());
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) die("console: /dev/console is not a regular file or a character device");
    int tree = clone_of(slave, false);
    if (tree < 0 || attach(tree, cfd) != 0) die("console: bind /dev/pts/%u on /dev/console: %s", ptn, err());
    close(tree);
    close(cfd);
  }
  if (!send_fds(sock, &master, 1, "/dev/ptmx", 9)) die("send pty master to console socket: %s", err());
  close(master);
  close(sock);
  if (ioctl(slave, TIOCSCTTY, 0) != 0) die("console: set controlling terminal: %s", err());
  for (int i = 0; i < 3; i++)
    if (dup2(slave, i) < 0) die("console: dup pty to fd %d: %s", i, err());
  if (slave > 2) close(slave);
}

// ---------------------------------------------------------------------------------------------------------
// Processes: hooks, exec

// Runs a hook with the state JSON on stdin; waits at most `timeout` seconds.
void op_hook(Args a) {
  const char* kind = a.s();
  const char* path = a.s();
  char** argv = a.strv();
  char** envp = a.strv();
  int64_t timeout = a.i();

  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) die("%s hook %s: pipe: %s", kind, path, err());
  pid_t pid = fork();
  if (pid < 0) die("%s hook %s: fork: %s", kind, path, err());
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    char* fallback[] = {const_cast<char*>(path), nullptr};
    execve(path, argv[0] ? argv : fallback, envp);
    dprintf(2, "exec %s: %s", path, strerror(errno));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  if (g_state_len) write_full(in[1], g_state, g_state_len);  // a hook that ignores stdin is fine
  close(in[1]);

  // Collect output (bounded) until the hook exits or the timeout expires.
  char output[1024];
  size_t got = 0;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  bool out_open = true, timed_out = false;
  for (;;) {
    int wait_ms = -1;
    if (timeout > 0) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      int64_t elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
      wait_ms = static_cast<int>(timeout * 1000 - elapsed);
      if (wait_ms <= 0) {
        timed_out = true;
        break;
      }
    }
    struct pollfd fds[2] = {{pidfd, POLLIN, 0}, {out_open ? out[0] : -1, POLLIN, 0}};
    int n = poll(fds, 2, wait_ms);
    if (n < 0 && errno != EINTR) die("%s hook %s: poll: %s", kind, path, err());
    if (n <= 0) continue;
    if (fds[1].revents) {
      char buf[512];
      ssize_t r = read(out[0], buf, sizeof(buf));
      if (r <= 0) {
        out_open = false;
      } else if (got < sizeof(output) - 1) {
        size_t take = static_cast<size_t>(r) < sizeof(output) - 1 - got ? static_cast<size_t>(r) : sizeof(output) - 1 - got;
        memcpy(output + got, buf, take);
        got += take;
      }
    }
    if (fds[0].revents) break;
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  close(pidfd);
  close(out[0]);
  output[got] = 0;
  for (size_t k = 0; k < got; k++)
    if (output[k] == '\n' || output[k] == '\r') output[k] = ' ';
  const char* sep = got ? ": " : "";
  if (timed_out) die("error running %s hook %s: timed out after %lld s", kind, path, static_cast<long long>(timeout));
  if (WIFSIGNALED(status)) die("error running %s hook %s: killed by signal %d%s%s", kind, path, WTERMSIG(status), sep, output);
  if (WEXITSTATUS(status) != 0) die("error running %s hook %s: exit status %d%s%s", kind, path, WEXITSTATUS(status), sep, output);
}

// Resolve argv[0] as execvp would, in the container's filesystem, so a missing binary fails `create`.
void op_lookup_exec(Args a) {
  const char* name = a.s();
  const char* path_env = a.s();
  struct stat st;
  if (strchr(name, '/')) {
    if (stat(name, &st) != 0) die("exec: \"%s\": stat %s: %s", name, name, err());
    if (S_ISDIR(st.st_mode)) die("exec: \"%s\": is a directory", name);
    snprintf(g_exec_path, sizeof(g_exec_path), "%s", name);
    return;
  }
  const char* p = path_env;
  while (true) {
    const char* colon = strchr(p, ':');
    size_t len = colon ? static_cast<size_t>(colon - p) : strlen(p);
    char cand[4096];
    if (len == 0)
      snprintf(cand, sizeof(cand), "%s", name);
    else
      snprintf(cand, sizeof(cand), "%.*s/%s", static_cast<int>(len), p, name);
    if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
      snprintf(g_exec_path, sizeof(g_exec_path), "%s", cand);
      return;
    }
    if (!colon) break;
    p = colon + 1;
  }
  die("exec: \"%s\": executable file not found in $PATH", name);
}

void op_exec(Args a) {
  char** argv = a.strv();
  char** envp = a.strv();
  const char* path = g_exec_path[0] ? g_exec_path : argv[0];
  execve(path, argv, envp);
  die("exec %s: %s", path, err());
}

void await_ack(const char* what);

void op_ready() {
  // create is done: tell tsrun, and wait until it has recorded the container (its ack). Until then the
  // init dies with tsrun (parent-death signal, or end of file here), so a create killed at any moment never
  // leaves an init running that the state does not show. Then wait for `tsrun start` to connect.
  // The set-up handles go first.
  if (g_procfd >= 0) close(g_procfd);
  if (g_devnull >= 0) close(g_devnull);
  g_procfd = g_devnull = -1;
  if (!send_frame(g_sync, MSG_READY, nullptr, 0)) die("report ready to tsrun: %s", err());
  await_ack("ready");
  if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) != 0) die("clear parent-death signal: %s", err());
  // ...and tell tsrun it may exit now: before this it must not, or its exit would still kill this process.
  if (!send_frame(g_sync, MSG_ACK, nullptr, 0)) die("confirm ready to tsrun: %s", err());
  close(g_sync);
  g_sync = -1;
  g_report = -1;
  if (g_listen < 0) die("wait for start: no start socket in the plan");
  for (;;) {
    int c = accept4(g_listen, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      die("wait for start: accept: %s", err());
    }
    uint32_t type = 0, len = 0;
    char* payload = nullptr;
    if (!recv_frame(c, &type, &payload, &len) || type != MSG_START) {
      // Not a start request (a probe, or a `start` that died): keep waiting.
      free(payload);
      close(c);
      continue;
    }
    free(g_state);
    g_state = payload;
    g_state_len = len;
    g_report = c;  // errors from here on go to `tsrun start`
    break;
  }
  close(g_listen);
  g_listen = -1;
}

void op_bind_start_socket(Args a) {
  int dirfd = static_cast<int>(a.i());
  const char* name = a.s();
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("start socket: socket: %s", err());
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  // Through the state directory's fd, so the container id's length never matters.
  int n = snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/%s", dirfd, name);
  if (n < 0 || n >= static_cast<int>(sizeof(addr.sun_path))) die("start socket: name too long: %s", name);
  if (bind(s, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) die("start socket: bind %s: %s", name, err());
  if (listen(s, 4) != 0) die("start socket: listen: %s", err());
  g_listen = s;
  close(dirfd);
}

// ---------------------------------------------------------------------------------------------------------
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

void op_chdir(Args a) {
  const char* cwd = a.s();
  if (chdir(cwd) != 0) die("chdir to cwd (\"%s\") set in the process spec: %s", cwd, err());
  // A cwd reached through a leaked fd would lie outside the root: getcwd then fails or says "(unreachable)".
  char buf[4096];
  if (!getcwd(buf, sizeof(buf))) die("cwd %s: getcwd: %s (is it outside the container's root?)", cwd, err());
  if (buf[0] != '/') die("cwd %s is outside the container's root", cwd);
}

// ---------------------------------------------------------------------------------------------------------
// Namespaces

struct NsFd {
  int64_t flag;
  int fd;
};
NsFd g_ns[8];
int g_nns = 0;

void op_open_ns(Args a) {
  int64_t flag = a.i();
  const char* path = a.s();
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open namespace %s: %s", path, err());
  if (g_nns >= 8) die("too many namespaces to join");
  g_ns[g_nns++] = {flag, fd};
}

void op_setns(Args a) {
  int64_t flag = a.i();
  for (int k = 0; k < g_nns; k++) {
    if (g_ns[k].flag != flag || g_ns[k].fd < 0) continue;
    if (setns(g_ns[k].fd, static_cast<int>(flag)) != 0) die("join namespace (flag 0x%llx): setns: %s", static_cast<unsigned long long>(flag), err());
    close(g_ns[k].fd);
    g_ns[k].fd = -1;
    return;
  }
  die("join namespace (flag 0x%llx): not opened", static_cast<unsigned long long>(flag));
}

void await_ack(const char* what) {
  uint32_t type = 0, len = 0;
  char* payload = nullptr;
  if (!recv_frame(g_sync, &type, &payload, &len)) die("%s: waiting for tsrun: %s", what, err());
  if (type == MSG_ABORT) _exit(1);
  if (type != MSG_ACK) die("%s: unexpected message %u from tsrun", what, type);
  if (len) {
    free(g_state);
    g_state = payload;
    g_state_len = len;
  } else {
    free(payload);
  }
}

void op_clone_init() {
  int release[2];
  if (pipe2(release, O_CLOEXEC) != 0) die("clone init: pipe: %s", err());
  // CLONE_PARENT: the init is tsrun's child (so `run` can wait for it), and the set-up helper can exit.
  pid_t pid = static_cast<pid_t>(syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, nullptr, nullptr, 0));
  if (pid < 0) die("clone container init: %s", err());
  if (pid == 0) {
    close(release[1]);
    // Wait until the helper has reported our pid, so our messages come after it; the helper also tells us
    // that pid (in our own pid namespace we are 1), for the seccomp listener's container process state.
    int32_t mine = 0;
    if (read_full(release[0], &mine, sizeof(mine))) g_init_pid = mine;
    close(release[0]);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die("set parent-death signal: %s", err());
    if (getppid() == 1) _exit(1);  // tsrun is already gone
    // The init leads its own session (and, with a terminal, makes the pty its controlling terminal).
    if (setsid() < 0) die("setsid: %s", err());
    return;
  }
  int32_t p = pid;
  if (!send_frame(g_sync, MSG_PID, &p, sizeof(p))) {
    kill(pid, SIGKILL);
    _exit(1);
  }
  write_full(release[1], &p, sizeof(p));  // if this fails the init reads EOF and finds tsrun gone
  close(release[1]);
  _exit(0);
}

void op_rlimit(Args a) {
  int resource = static_cast<int>(a.i());
  int64_t soft = a.i(), hard = a.i();
  const char* name = a.s();
  struct rlimit rl;
  rl.rlim_cur = soft < 0 ? RLIM_INFINITY : static_cast<rlim_t>(soft);
  rl.rlim_max = hard < 0 ? RLIM_INFINITY : static_cast<rlim_t>(hard);
  if (setrlimit(resource, &rl) != 0) die("set rlimit %s (soft %lld, hard %lld): %s", name, static_cast<long long>(soft), static_cast<long long>(hard), err());
}

void op_write_file(Args a) {
  const char* path = a.s();
  const Arg& content = a.raw_s();
  int64_t flags = a.i();
  // A non-dumpable process's /proc/self files belong to the host's root; after entering a user namespace
  // we are root of that namespace only, so be dumpable for the moment of the open.
  bool self = strncmp(path, "/proc/self/", 11) == 0;
  if (self) prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (self) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (fd < 0) {
    if (errno == ENOENT && (flags & 1)) return;
    die("write %s: open: %s", path, err());
  }
  if (!write_full(fd, content.s, content.len)) die("write \"%s\" to %s: %s", content.s, path, err());
  close(fd);
}

void op_seccomp(Args a) {
  const Arg& prog = a.raw_s();
  int64_t flags = a.i();
  int listener = static_cast<int>(a.i());
  const char* listener_path = a.s();
  const Arg& head = a.raw_s();
  if (prog.len % sizeof(struct sock_filter) != 0 || prog.len == 0) die("seccomp: bad program length %u", prog.len);
  struct sock_fprog fprog;
  fprog.len = static_cast<unsigned short>(prog.len / sizeof(struct sock_filter));
  fprog.filter = reinterpret_cast<struct sock_filter*>(const_cast<char*>(prog.s));
  long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, static_cast<unsigned>(flags), &fprog);
  if (fd < 0) die("load seccomp filter: %s", err());
  if (!(flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)) return;
  if (listener < 0) die("seccomp: the filter has a notify fd but there is no listener socket for it");

  // The container process state (runtime-spec config-linux.md): the JSON tsrun prepared, the init's pid,
  // the container state `tsrun start` sent, in one message with the notify fd; then the connection closes.
  const char* state = g_state && g_state_len ? g_state : "{}";
  size_t state_len = g_state && g_state_len ? g_state_len : 2;
  char pid[48];
  int pn = snprintf(pid, sizeof(pid), "%d,\"state\":", g_init_pid);
  size_t len = head.len + static_cast<size_t>(pn) + state_len + 1;
  char* msg = static_cast<char*>(malloc(len));
  if (!msg) die("seccomp: container process state for %s: out of memory", listener_path);
  memcpy(msg, head.s, head.len);
  memcpy(msg + head.len, pid, static_cast<size_t>(pn));
  memcpy(msg + head.len + pn, state, state_len);
  msg[len - 1] = '}';
  int notify_fd = static_cast<int>(fd);
  if (!send_fds(listener, &notify_fd, 1, msg, len)) die("seccomp: send the notify fd and container process state to the listener %s: %s", listener_path, err());
  free(msg);
  close(listener);
  close(static_cast<int>(fd));
}

void op_capset(Args a) {
  uint64_t eff = mask_of(a), perm = mask_of(a), inh = mask_of(a);
  set_caps(eff, perm, inh, "drop the capabilities kept for loading the seccomp filter");
}

// The kernel's struct sigaction: glibc's sigaction() refuses the two real-time signals it reserves, but
// a container must not inherit them ignored either.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};

void reset_signals() {
  KernelSigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    syscall(SYS_rt_sigaction, s, &sa, nullptr, sizeof(sa.mask));
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

// --init: this process stays as the container's PID 1: it reaps every process reparented to it, forwards
// the signals it gets to the user process, and exits with the user process's status (128+N on signal N).
// Signals are blocked and taken with sigwaitinfo: a PID 1 ignores signals it has no handler for, but
// blocked signals are never ignored.
void op_init_reaper() {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  pid_t child = fork();
  if (child < 0) die("--init: fork: %s", err());
  if (child == 0) return;  // goes on to exec the user process (RESET_SIGNALS unblocks)
  if (g_report >= 0) close(g_report);
  g_report = -1;
  prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("tsrun-reaper"), 0, 0, 0);
  syscall(SYS_close_range, 0U, ~0U, 0);  // hold nothing of the container's open
  int status = 0;
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&all, &si);
    if (sig < 0) continue;
    if (sig == SIGCHLD) {
      for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p <= 0) break;
        if (p == child) status = st, child = 0;
      }
      if (child == 0) _exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
    } else if (child > 0) {
      kill(child, sig);
    }
  }
}

void run(const Plan& plan) {
  for (uint32_t k = 0; k < plan.count; k++) {
    const Op& op = plan.ops[k];
    Args a{op};
    switch (op.code) {
      case OP_CLOSE_FROM:
        if (syscall(SYS_close_range, static_cast<unsigned>(a.i()), ~0U, 0) != 0) die("close inherited fds: %s", err());
        break;
      case OP_CGROUP_JOIN: {
        const char* path = a.s();
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || !write_full(fd, "0", 1)) die("join cgroup: write %s: %s", path, err());
        close(fd);
        break;
      }
      case OP_OPEN_NS: op_open_ns(a); break;
      case OP_SETNS_FD: {
        int fd = static_cast<int>(a.i());
        int64_t flags = a.i();
        if (setns(fd, static_cast<int>(flags)) != 0) die("join the container's namespaces (flags 0x%llx) through its pidfd: %s", static_cast<unsigned long long>(flags), err());
        close(fd);
        break;
      }
      case OP_ENTER_ROOT: {
        int fd = static_cast<int>(a.i());
        if (fchdir(fd) != 0) die("enter the container's root: fchdir: %s", err());
        if (chroot(".") != 0) die("enter the container's root: chroot: %s", err());
        if (chdir("/") != 0) die("enter the container's root: chdir /: %s", err());
        close(fd);
        break;
      }
      case OP_SETNS: op_setns(a); break;
      case OP_UNSHARE: {
        int64_t flags = a.i();
        if (unshare(static_cast<int>(flags)) != 0) die("unshare namespaces (flags 0x%llx): %s", static_cast<unsigned long long>(flags), err());
        break;
      }
      case OP_USERMAP_SYNC: {
        int32_t self = getpid();
        if (!send_frame(g_sync, MSG_USERMAP_REQ, &self, sizeof(self))) die("ask tsrun for uid/gid maps: %s", err());
        await_ack("user namespace maps");
        break;
      }
      case OP_BECOME_ROOT:
        if (setresgid(0, 0, 0) != 0) die("become root in user namespace: setresgid 0: %s", err());
        if (setresuid(0, 0, 0) != 0) die("become root in user namespace: setresuid 0: %s", err());
        break;
      case OP_WRITE_FILE: op_write_file(a); break;
      case OP_RLIMIT: op_rlimit(a); break;
      case OP_CLONE_INIT: op_clone_init(); break;
      case OP_BIND_START_SOCKET: op_bind_start_socket(a); break;
      case OP_PDEATHSIG:
        if (prctl(PR_SET_PDEATHSIG, static_cast<unsigned long>(a.i()), 0, 0, 0) != 0) die("set parent-death signal: %s", err());
        break;
      case OP_OPEN_PROC: op_open_proc(); break;
      case OP_SYSCTL: op_sysctl(a); break;
      case OP_MOUNT: op_mount(a); break;
      case OP_ROOT_PROPAGATION: {
        unsigned long flags = static_cast<unsigned long>(a.i());
        if (mount(nullptr, "/", nullptr, flags, nullptr) != 0) die("set propagation of / (0x%lx): %s", flags, err());
        break;
      }
      case OP_ROOTFS: op_rootfs(a); break;
      case OP_DEVICE: op_device(a); break;
      case OP_SYMLINK: op_symlink(a); break;
      case OP_SYNC_HOOKS:
        if (!send_frame(g_sync, MSG_HOOKS_REQ, nullptr, 0)) die("ask tsrun to run hooks: %s", err());
        await_ack("prestart/createRuntime hooks");
        break;
      case OP_HOOK: op_hook(a); break;
      case OP_PIVOT_ROOT: op_pivot_root(); break;
      case OP_MOVE_ROOT: op_move_root(); break;
      case OP_LOOPBACK_UP: op_loopback_up(); break;
      case OP_MKDIR: {
        const char* path = a.s();
        int fd = root_make_dir(g_rootfd, path);
        if (fd < 0) die("create directory %s in rootfs: %s", path, err());
        close(fd);
        break;
      }
      case OP_MASK_PATH: op_mask_path(a); break;
      case OP_READONLY_PATH: op_readonly_path(a); break;
      case OP_REMOUNT_RO: op_remount_ro(a); break;
      case OP_HOSTNAME: {
        const char* name = a.s();
        if (sethostname(name, strlen(name)) != 0) die("set hostname %s: %s", name, err());
        break;
      }
      case OP_DOMAINNAME: {
        const char* name = a.s();
        if (setdomainname(name, strlen(name)) != 0) die("set domainname %s: %s", name, err());
        break;
      }
      case OP_CONSOLE: op_console(a); break;
      case OP_KEYRING: {
        const char* name = a.s();
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name, 0, 0, 0) < 0 && errno != ENOSYS)
          die("join session keyring %s: %s", name, err());
        break;
      }
      case OP_PERSONALITY: {
        unsigned long p = static_cast<unsigned long>(a.i());
        if (personality(p) < 0) die("set personality 0x%lx: %s", p, err());
        break;
      }
      case OP_UMASK: umask(static_cast<mode_t>(a.i())); break;
      case OP_CAPS_BOUNDING: op_caps_bounding(a); break;
      case OP_KEEPCAPS:
        if (prctl(PR_SET_KEEPCAPS, static_cast<unsigned long>(a.i()), 0, 0, 0) != 0) die("set keep-capabilities: %s", err());
        break;
      case OP_SET_USER: op_set_user(a); break;
      case OP_CAPS: op_caps(a); break;
      case OP_CHDIR: op_chdir(a); break;
      case OP_NO_NEW_PRIVS:
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("set no_new_privs: %s", err());
        break;
      case OP_LOOKUP_EXEC: op_lookup_exec(a); break;
      case OP_READY: op_ready(); break;
      case OP_SECCOMP: op_seccomp(a); break;
      case OP_CLOEXEC_FROM:
        if (syscall(SYS_close_range, static_cast<unsigned>(a.i()), ~0U, CLOSE_RANGE_CLOEXEC) != 0) die("mark fds close-on-exec: %s", err());
        break;
      case OP_RESET_SIGNALS: reset_signals(); break;
      case OP_INIT_REAPER: op_init_reaper(); break;
      case OP_EXEC: op_exec(a); break;
      case OP_CAPSET: op_capset(a); break;
      case OP_SET_STATE: {
        const Arg& st = a.raw_s();
        free(g_state);
        g_state = static_cast<char*>(malloc(st.len + 1));
        if (!g_state) die("plan: out of memory");
        memcpy(g_state, st.s, st.len);
        g_state[st.len] = 0;
        g_state_len = st.len;
        break;
      }
      case OP_CLEAR_NONBLOCK: {
        int fd = static_cast<int>(a.i());
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        break;
      }
      default:
        die("plan: unknown op %u", op.code);
    }
  }
  die("plan ended without exec");
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
  g_sync = atoi(argv[1]);
  g_report = g_sync;
  g_debug = argc > 2 && strcmp(argv[2], "debug") == 0;
  uint32_t type = 0, len = 0;
  char* payload = nullptr;
  if (!recv_frame(g_sync, &type, &payload, &len) || type != MSG_PLAN) die("read plan from tsrun: %s", err());
  Plan plan = parse_plan(payload, len);
  run(plan);
}
