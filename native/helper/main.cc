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
#include <linux/openat2.h>
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
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
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
// Paths inside the rootfs

long sys_openat2(int dirfd, const char* path, int flags, uint64_t resolve) {
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = resolve;
  return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

const uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

// Opens `rel` (a path inside the rootfs) as O_PATH, never leaving the rootfs: symlinks resolve as if the
// rootfs were "/". With `create` set, missing components are made: directories, and for the last one a
// directory (kind 0) or an empty file (kind 1).
int open_in_root(const char* rel, bool create, int kind) {
  long fd = sys_openat2(g_rootfd, rel, O_PATH | O_CLOEXEC, kInRoot);
  if (fd >= 0 || !create || errno != ENOENT) return static_cast<int>(fd);

  // Walk forward: components that exist resolve through openat2; the first missing one is created in its
  // (already resolved, in-root) parent. A symlink met here is dangling (else openat2 would have followed
  // it): its target is spliced into the remaining path, up to 40 times like the kernel's own limit.
  char path[4096];
  if (strlen(rel) >= sizeof(path)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(path, rel);
  int links = 0;
  for (;;) {
    // Find the longest existing prefix.
    char* comp = path;
    while (*comp == '/') comp++;
    int parent = static_cast<int>(sys_openat2(g_rootfd, ".", O_PATH | O_CLOEXEC, kInRoot));
    if (parent < 0) return -1;
    bool restart = false;
    while (*comp) {
      char* end = strchr(comp, '/');
      bool last = true;
      if (end) {
        *end = 0;
        const char* rest = end + 1;
        while (*rest == '/') rest++;
        last = *rest == 0;
      }
      int next = static_cast<int>(sys_openat2(parent, comp, O_PATH | O_CLOEXEC | O_NOFOLLOW, kInRoot));
      if (next >= 0) {
        struct stat st;
        if (fstat(next, &st) == 0 && S_ISLNK(st.st_mode)) {
          // Symlink: let openat2 resolve it in root; if that fails it is dangling.
          int via = static_cast<int>(sys_openat2(parent, comp, O_PATH | O_CLOEXEC, kInRoot));
          if (via >= 0) {
            close(next);
            next = via;
          } else {
            char target[4096];
            ssize_t n = readlinkat(parent, comp, target, sizeof(target) - 1);
            close(next);
            if (n < 0 || ++links > 40) {
              close(parent);
              errno = ELOOP;
              return -1;
            }
            target[n] = 0;
            // new path = (target is absolute ? target : dir-of-comp/target) + "/" + rest
            char rebuilt[4096];
            const char* rest = end ? end + 1 : "";
            int w;
            if (target[0] == '/') {
              w = snprintf(rebuilt, sizeof(rebuilt), "%s/%s", target, rest);
            } else {
              *comp = 0;  // path now holds the directory part (ends with '/' or is empty)
              w = snprintf(rebuilt, sizeof(rebuilt), "%s%s/%s", path, target, rest);
            }
            close(parent);
            if (w < 0 || w >= static_cast<int>(sizeof(rebuilt))) {
              errno = ENAMETOOLONG;
              return -1;
            }
            strcpy(path, rebuilt);
            restart = true;
            break;
          }
        }
        close(parent);
        parent = next;
      } else if (errno == ENOENT) {
        int rc;
        if (last && kind == 1) {
          rc = openat(parent, comp, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
          if (rc >= 0) close(rc);
        } else {
          rc = mkdirat(parent, comp, 0755);
        }
        if (rc < 0 && errno != EEXIST) {
          int e = errno;
          close(parent);
          errno = e;
          return -1;
        }
        next = static_cast<int>(sys_openat2(parent, comp, O_PATH | O_CLOEXEC | O_NOFOLLOW, kInRoot));
        if (next < 0) {
          int e = errno;
          close(parent);
          errno = e;
          return -1;
        }
        close(parent);
        parent = next;
      } else {
        int e = errno;
        close(parent);
        errno = e;
        return -1;
      }
      if (!end) break;
      *end = '/';
      comp = end + 1;
      while (*comp == '/') comp++;
    }
    if (!restart) return parent;
  }
}

// The magic link through which mount(2) reaches an fd's file.
struct FdPath {
  char buf[64];
  explicit FdPath(int fd) { snprintf(buf, sizeof(buf), "/proc/self/fd/%d", fd); }
};

// MS_* flags that a mount in a user namespace cannot drop once locked: keep them on remount.
unsigned long locked_flags(const char* path) {
  struct statvfs sv;
  if (statvfs(path, &sv) != 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_RDONLY) f |= MS_RDONLY;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

// Remount a bind mount with new flags; if the kernel refuses because flags are locked, keep them.
int remount_bind(const char* target, unsigned long flags) {
  if (mount(nullptr, target, nullptr, MS_BIND | MS_REMOUNT | flags, nullptr) == 0) return 0;
  if (errno != EPERM) return -1;
  return mount(nullptr, target, nullptr, MS_BIND | MS_REMOUNT | flags | locked_flags(target), nullptr);
}

const unsigned long kPropagation = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

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

  if (kind == 2) {  // by source: a bind of a non-directory gets a file as its mount point
    struct stat st;
    if (stat(source, &st) != 0) die("mount %s on %s: stat source: %s", source, dest, err());
    kind = S_ISDIR(st.st_mode) ? 0 : 1;
  }
  int fd = open_in_root(dest, true, static_cast<int>(kind));
  if (fd < 0) die("mount %s on %s: resolve destination in rootfs: %s", source, dest, err());
  FdPath target(fd);
  if (bind) {
    unsigned long bflags = MS_BIND | (opts & 2 ? MS_REC : 0);
    if (mount(source, target.buf, nullptr, bflags, nullptr) != 0)
      die("mount %s on %s (bind): %s", source, dest, err());
    unsigned long rest = flags & ~(MS_BIND | MS_REC | kPropagation);
    if (rest) {
      // Re-open: the fd above names the directory under the new mount, not the mount's root.
      close(fd);
      fd = open_in_root(dest, false, 0);
      if (fd < 0) die("mount %s on %s: re-resolve destination: %s", source, dest, err());
      FdPath t2(fd);
      if (remount_bind(t2.buf, rest) != 0) die("remount %s on %s with options: %s", source, dest, err());
    }
  } else {
    // tmpcopyup: hold the directory about to be covered, to copy from it afterwards
    int under = (opts & 4) ? openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if ((opts & 4) && under < 0) die("mount %s on %s: open for tmpcopyup: %s", source, dest, err());
    if (mount(source, target.buf, fstype, flags & ~kPropagation, *data ? data : nullptr) != 0)
      die("mount %s on %s (type %s, data \"%s\"): %s", source, dest, fstype, data, err());
    if (under >= 0) {
      int top = open_in_root(dest, false, 0);
      int topdir = top >= 0 ? openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
      if (topdir < 0) die("mount %s on %s: open the new mount for tmpcopyup: %s", source, dest, err());
      copy_tree(under, topdir, dest);
      close(topdir);
      close(top);
      close(under);
    }
  }
  if (prop) {
    close(fd);
    fd = open_in_root(dest, false, 0);
    if (fd < 0) die("mount %s on %s: re-resolve destination: %s", source, dest, err());
    FdPath t3(fd);
    static const unsigned long kBits[] = {MS_SHARED, MS_PRIVATE, MS_SLAVE, MS_UNBINDABLE};
    for (unsigned long bit : kBits) {
      if (!(prop & static_cast<int64_t>(bit))) continue;
      unsigned long pf = bit | (prop & MS_REC ? MS_REC : 0);
      if (mount(nullptr, t3.buf, nullptr, pf, nullptr) != 0) die("set propagation of %s: %s", dest, err());
    }
  }
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

  // The parent directory, resolved in root; the node itself is (re)made in it.
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", path);
  char* slash = strrchr(dir, '/');
  const char* name = slash ? slash + 1 : dir;
  if (slash) *slash = 0;
  int dfd = open_in_root(slash ? (dir[0] ? dir : "/") : "/", true, 0);
  if (dfd < 0) die("create device %s: resolve parent directory: %s", path, err());
  if (bind) {
    // In a user namespace mknod is not allowed: bind the host's node on an empty file.
    int f = openat(dfd, name, O_CREAT | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
    if (f < 0) die("create device %s: create mount point: %s", path, err());
    close(f);
    int t = static_cast<int>(sys_openat2(dfd, name, O_PATH | O_CLOEXEC | O_NOFOLLOW, kInRoot));
    if (t < 0) die("create device %s: open mount point: %s", path, err());
    FdPath target(t);
    char host[4096];
    snprintf(host, sizeof(host), "/%s", path[0] == '/' ? path + 1 : path);
    if (mount(host, target.buf, nullptr, MS_BIND, nullptr) != 0) die("bind device %s: %s", host, err());
    close(t);
  } else {
    if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT) die("create device %s: remove old node: %s", path, err());
    if (mknodat(dfd, name, type | (mode & 07777), makedev(major_, minor_)) != 0) die("mknod %s: %s", path, err());
    // mknod is subject to the umask: set the mode explicitly; then the owner.
    int t = static_cast<int>(sys_openat2(dfd, name, O_PATH | O_CLOEXEC | O_NOFOLLOW, kInRoot));
    if (t < 0) die("open device %s: %s", path, err());
    FdPath p(t);
    if (chmod(p.buf, mode & 07777) != 0) die("chmod device %s: %s", path, err());
    if (fchownat(t, "", uid, gid, AT_EMPTY_PATH) != 0) die("chown device %s: %s", path, err());
    close(t);
  }
  close(dfd);
}

void op_symlink(Args a) {
  const char* target = a.s();
  const char* link = a.s();
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", link);
  char* slash = strrchr(dir, '/');
  const char* name = slash ? slash + 1 : dir;
  if (slash) *slash = 0;
  int dfd = open_in_root(slash && dir[0] ? dir : "/", true, 0);
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

void op_mask_path(Args a) {
  const char* path = a.s();
  int fd = static_cast<int>(sys_openat2(g_rootfd, path, O_PATH | O_CLOEXEC, kInRoot));
  if (fd < 0) {
    if (errno == ENOENT) return;
    die("mask %s: %s", path, err());
  }
  struct stat st;
  if (fstat(fd, &st) != 0) die("mask %s: stat: %s", path, err());
  FdPath target(fd);
  if (S_ISDIR(st.st_mode)) {
    if (mount("tmpfs", target.buf, "tmpfs", MS_RDONLY, nullptr) != 0) die("mask %s: mount read-only tmpfs: %s", path, err());
  } else {
    if (mount("/dev/null", target.buf, nullptr, MS_BIND, nullptr) != 0) die("mask %s: bind /dev/null: %s", path, err());
  }
  close(fd);
}

void op_readonly_path(Args a) {
  const char* path = a.s();
  int fd = static_cast<int>(sys_openat2(g_rootfd, path, O_PATH | O_CLOEXEC, kInRoot));
  if (fd < 0) {
    if (errno == ENOENT) return;
    die("make %s read-only: %s", path, err());
  }
  FdPath target(fd);
  if (mount(target.buf, target.buf, nullptr, MS_BIND | MS_REC, nullptr) != 0) die("make %s read-only: bind: %s", path, err());
  close(fd);
  fd = static_cast<int>(sys_openat2(g_rootfd, path, O_PATH | O_CLOEXEC, kInRoot));
  if (fd < 0) die("make %s read-only: reopen: %s", path, err());
  FdPath t2(fd);
  if (remount_bind(t2.buf, MS_RDONLY | MS_REC) != 0) die("make %s read-only: remount: %s", path, err());
  close(fd);
}

void op_remount_ro(Args a) {
  const char* path = a.s();
  if (remount_bind(path, MS_RDONLY) != 0) die("remount %s read-only: %s", path, err());
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

void op_console(Args a) {
  int sock = static_cast<int>(a.i());
  int rows = static_cast<int>(a.i());
  int cols = static_cast<int>(a.i());
  uid_t uid = static_cast<uid_t>(a.i());
  gid_t gid = static_cast<gid_t>(a.i());
  bool bind_console = a.i() != 0;
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) die("console: open /dev/ptmx in container: %s", err());
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
  // /dev/console is the pty, as on a real system.
  char pts[64];
  snprintf(pts, sizeof(pts), "/dev/pts/%u", ptn);
  int cfd = bind_console ? open_in_root("/dev/console", true, 1) : -1;
  if (cfd >= 0) {
    FdPath t(cfd);
    if (mount(pts, t.buf, nullptr, MS_BIND, nullptr) != 0) die("console: bind %s on /dev/console: %s", pts, err());
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
  if (!send_frame(g_sync, MSG_READY, nullptr, 0)) die("report ready to tsrun: %s", err());
  await_ack("ready");
  if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) != 0) die("clear parent-death signal: %s", err());
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

int last_cap() {
  static int cached = -1;
  if (cached >= 0) return cached;
  int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  cached = CAP_LAST_CAP;
  if (fd >= 0) {
    char b[16] = {0};
    if (read(fd, b, sizeof(b) - 1) > 0) cached = atoi(b);
    close(fd);
  }
  return cached;
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
        int fd = open_in_root(path, true, 0);
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
