// Mounts, all by fd: the helper's own procfs, the rootfs and pivot_root, mounts from the config, device
// nodes, symlinks, masked and read-only paths, sysctls.
//
// Every mount destination is opened once, inside the rootfs (paths.h), and everything after acts on that
// fd or on a detached mount: a new filesystem is made with fsopen/fsmount, a bind is cloned with
// open_tree, flags are set with mount_setattr before the mount is attached, and move_mount attaches it
// onto the fd. Nothing is re-resolved by path, so a symlink swapped in meanwhile redirects nothing.
#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"
#include "io.h"
#include "paths.h"

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

// "thread-self/fd/N" under the helper's procfs: the file an fd names, reached without the container's /proc.
ProcFd::ProcFd(int fd) { snprintf(buf, sizeof(buf), "thread-self/fd/%d", fd); }

int need_proc(const char* what) {
  if (g.procfd < 0) die("%s: the plan opened no procfs (OP_OPEN_PROC)", what);
  return g.procfd;
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
  if (g.procfd >= 0) close(g.procfd);
  g.procfd = mnt;
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
  // Options split at commas outside double quotes (an SELinux context="...:c1,c2" holds commas); the quotes
  // of an SELinux context option are dropped, as the kernel's own mount-data parsing (the LSM's) drops them.
  for (char* o = opts; o;) {
    char* end = o;
    for (bool quoted = false; *end && (quoted || *end != ','); end++)
      if (*end == '"') quoted = !quoted;
    char* next = *end ? end + 1 : nullptr;
    *end = 0;
    if (*o == 0) {
      o = next;
      continue;
    }
    char* eq = strchr(o, '=');
    if (eq) {
      *eq = 0;
      char* v = eq + 1;
      size_t vl = strlen(v);
      bool lsm = strcmp(o, "context") == 0 || strcmp(o, "fscontext") == 0 || strcmp(o, "defcontext") == 0 || strcmp(o, "rootcontext") == 0;
      if (lsm && vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
        v[vl - 1] = 0;
        v++;
      }
      check(fsconfig(fs, FSCONFIG_SET_STRING, o, v, 0), o);
    } else {
      check(fsconfig(fs, FSCONFIG_SET_FLAG, o, nullptr, 0), o);
    }
    o = next;
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
  size_t n = strlen(g.rootfs);
  while (n > 1 && g.rootfs[n - 1] == '/') n--;
  if (strncmp(real, g.rootfs, n) != 0 || (real[n] != 0 && real[n] != '/'))
    die("mount on %s: mountpoint %s is outside of rootfs %s", dest, real, g.rootfs);
  const char* in = real[n] ? real + n : "/";
  if (strcmp(in, "/") == 0) die("mount on %s: mountpoint %s is on the top of rootfs %s", dest, real, g.rootfs);
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

// Detached binds OP_OPEN_TREE made in host context, by slot, until OP_MOUNT attaches them (inherited by
// the init across OP_CLONE_INIT).
constexpr int kMaxTrees = 256;
int g_trees[kMaxTrees];
int g_tree_count = 0;  // slots below this one were filled

// A user namespace with these maps (runc's userns.Handles): a child unshares one and waits; its maps are
// written from here (root in the parent namespace, so no setgroups "deny" is needed); its ns file is opened;
// the child is let go.
int userns_with_maps(const char* uid_map, const char* gid_map, const char* what) {
  int ready[2], hold[2];
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(hold, O_CLOEXEC) != 0) die("%s: user namespace for the id mapping: pipe: %s", what, err());
  pid_t pid = fork();
  if (pid < 0) die("%s: user namespace for the id mapping: fork: %s", what, err());
  if (pid == 0) {
    close(ready[0]);
    close(hold[1]);
    char c = unshare(CLONE_NEWUSER) == 0 ? 0 : static_cast<char>(errno);
    if (write(ready[1], &c, 1) != 1) _exit(1);
    while (read(hold[0], &c, 1) > 0) {
    }
    _exit(0);
  }
  close(ready[1]);
  close(hold[0]);
  char c = 1;
  ssize_t n = read(ready[0], &c, 1);
  close(ready[0]);
  auto fail = [&](const char* step, int e) {
    close(hold[1]);
    waitpid(pid, nullptr, 0);
    die("%s: user namespace for the id mapping: %s: %s", what, step, strerror(e));
  };
  if (n != 1) fail("child", EPIPE);
  if (c != 0) fail("unshare", c);
  const char* maps[2][2] = {{"uid_map", uid_map}, {"gid_map", gid_map}};
  for (auto& m : maps) {
    char file[64];
    snprintf(file, sizeof(file), "/proc/%d/%s", pid, m[0]);
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail(m[0], errno);
    size_t len = strlen(m[1]);
    if (write(fd, m[1], len) != static_cast<ssize_t>(len)) fail(m[0], errno);
    close(fd);
  }
  char ns[64];
  snprintf(ns, sizeof(ns), "/proc/%d/ns/user", pid);
  int fd = open(ns, O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open ns/user", errno);
  close(hold[1]);
  if (waitpid(pid, nullptr, 0) != pid) die("%s: user namespace for the id mapping: wait: %s", what, err());
  return fd;
}

void op_open_tree(Args a) {
  const char* source = a.s();
  int64_t slot = a.i();
  bool recursive = a.i() != 0;
  unsigned long flags = static_cast<unsigned long>(a.i());
  uint64_t rec_set = static_cast<uint64_t>(a.i());
  uint64_t rec_clr = static_cast<uint64_t>(a.i());
  int64_t idmap = a.i();
  const char* uid_map = a.s();
  const char* gid_map = a.s();
  const char* userns = a.s();
  if (slot != g_tree_count || slot >= kMaxTrees) die("plan: OP_OPEN_TREE slot %lld out of order", static_cast<long long>(slot));
  g_trees[g_tree_count++] = -1;
  // Without an id mapping the tree is only a fallback (OP_MOUNT clones the source itself first): one that
  // cannot be made here is left out rather than failing the container.
  bool fallback = idmap == OPEN_TREE_IDMAP_NONE;
  int tree = open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
  struct mount_attr ma;
  memset(&ma, 0, sizeof(ma));
  ma.attr_set = rec_set;
  ma.attr_clr = rec_clr;
  const char* step = nullptr;
  if (tree < 0)
    step = "open_tree(OPEN_TREE_CLONE)";
  else if (set_mount_attrs(tree, mount_attrs(flags & ~(MS_BIND | MS_REC | MS_REMOUNT | kPropagation)), false) != 0)
    step = "set mount flags";
  else if ((rec_set || rec_clr) && mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &ma, sizeof(ma)) != 0)
    step = "set recursive mount attributes";
  if (step) {
    if (!fallback) die("bind %s: %s: %s", source, step, err());
    debugf("bind %s on the host: %s: %s", source, step, err());
    if (tree >= 0) close(tree);
    return;
  }
  if (idmap != OPEN_TREE_IDMAP_NONE) {
    int ns = *userns ? open(userns, O_RDONLY | O_CLOEXEC) : userns_with_maps(uid_map, gid_map, source);
    if (ns < 0) die("failed to open existing userns %s for %s id-mapping: %s", userns, source, err());
    memset(&ma, 0, sizeof(ma));
    ma.attr_set = MOUNT_ATTR_IDMAP;
    ma.userns_fd = static_cast<uint64_t>(ns);
    if (mount_setattr(tree, "", AT_EMPTY_PATH | (idmap == OPEN_TREE_IDMAP_RECURSIVE ? AT_RECURSIVE : 0), &ma, sizeof(ma)) != 0) {
      int e = errno;
      die("failed to set MOUNT_ATTR_IDMAP on %s: %s%s", source, strerror(e), e == EINVAL ? " (maybe the filesystem used doesn't support idmap mounts on this kernel?)" : "");
    }
    close(ns);
  }
  g_trees[slot] = tree;
}

// "remount": changes the mount already at dest, through an fd of it: a bind's per-mount flags only, else
// the superblock (fspick + reconfigure, as mount(2)'s MS_REMOUNT) and then the per-mount flags.
void remount(const char* source, const char* dest, const char* fstype, unsigned long flags, const char* data, bool bind) {
  int fd = root_open(g.rootfd, dest);
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
  uint64_t rec_set = static_cast<uint64_t>(a.i());
  uint64_t rec_clr = static_cast<uint64_t>(a.i());
  int64_t tree = a.i();
  bool bind = (flags & MS_BIND) != 0;
  bool ordinary = (opts & MOUNT_OPT_ORDINARY) != 0;
  if (flags & MS_REMOUNT) {
    remount(source, dest, fstype, flags, data, bind);
    return;
  }

  // The detached mount first: a clone of the bind source (resolved on the host, as runc does), or a new
  // filesystem.
  int mnt;
  // A bind: cloned here, in the container's mount namespace (as the container's root, so what it brings is
  // locked together as the kernel does for a less privileged namespace); or the one prepared on the host
  // (OP_OPEN_TREE): always for an idmapped bind, and, as a fallback (MOUNT_OPT_HOST_FALLBACK), for a
  // source the container's root cannot reach (runc's mount source fds: a source under a directory closed to
  // a user namespace's root). A prepared tree has its flags and attributes set already.
  int prepared = -1;
  if (tree >= 0) {
    if (tree >= g_tree_count || (g_trees[tree] < 0 && !(opts & MOUNT_OPT_HOST_FALLBACK))) die("plan: OP_MOUNT of %s: no tree in slot %lld", dest, static_cast<long long>(tree));
    prepared = g_trees[tree];
    g_trees[tree] = -1;
  }
  if (bind) {
    mnt = -1;
    if (prepared < 0 || (opts & MOUNT_OPT_HOST_FALLBACK)) {
      mnt = open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (opts & MOUNT_OPT_RECURSIVE ? AT_RECURSIVE : 0));
      if (mnt < 0 && (prepared < 0 || (errno != EACCES && errno != EPERM && errno != ENOENT))) die("mount %s on %s (bind): %s", source, dest, err());
      if (mnt < 0) debugf("bind %s: %s from the container's root; using the bind made on the host", source, err());
    }
    if (mnt >= 0 && prepared >= 0) close(prepared);
    if (kind == MOUNT_KIND_BY_SOURCE) {  // by source: a bind of a non-directory gets a file as its mount point
      struct stat st;
      if (fstat(mnt >= 0 ? mnt : prepared, &st) != 0) die("mount %s on %s: stat source: %s", source, dest, err());
      kind = S_ISDIR(st.st_mode) ? MOUNT_KIND_DIR : MOUNT_KIND_FILE;
    }
    if (mnt < 0) {
      mnt = prepared;
    } else {
      unsigned long rest = flags & ~(MS_BIND | MS_REC | MS_REMOUNT | kPropagation);
      if (set_mount_attrs(mnt, mount_attrs(rest), false) != 0) die("remount %s on %s with options: %s", source, dest, err());
      if (rec_set || rec_clr) {  // the r* options, on the bind and every mount it brought (runc's setRecAttr)
        struct mount_attr ma;
        memset(&ma, 0, sizeof(ma));
        ma.attr_set = rec_set;
        ma.attr_clr = rec_clr;
        if (mount_setattr(mnt, "", AT_EMPTY_PATH | AT_RECURSIVE, &ma, sizeof(ma)) != 0) die("mount %s on %s: set recursive mount attributes (set 0x%llx, clear 0x%llx): %s", source, dest, static_cast<unsigned long long>(rec_set), static_cast<unsigned long long>(rec_clr), err());
      }
    }
  } else {
    mnt = new_filesystem(source, dest, fstype, flags & ~kPropagation, data);
  }

  // The destination, opened once; procfs and sysfs only on a directory of its own.
  int fd = ordinary ? root_make_real_dir(g.rootfd, dest) : kind == MOUNT_KIND_FILE ? root_make_file(g.rootfd, dest) : root_make_dir(g.rootfd, dest);
  if (fd < 0) {
    if (ordinary && (errno == ELOOP || errno == ENOTDIR)) die("mount %s on %s: filesystem \"%s\" must be mounted on ordinary directory", source, dest, fstype);
    die("mount %s on %s: resolve destination in rootfs: %s", source, dest, err());
  }
  check_destination(fd, dest);

  if (opts & MOUNT_OPT_TMPCOPYUP) {  // tmpcopyup: the directory's contents go into the new tmpfs before it covers them
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
    int now = root_open_real(g.rootfd, dest);
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

// Make the mount holding `path` private (or a slave), so binding the rootfs does not propagate to the host
// and pivot_root's check (the new root's parent must not be shared) passes.
void make_parent_private(const char* path, unsigned long flags) {
  // Find the mount point containing path by walking up until the device changes or "/" is reached.
  char buf[4096];
  snprintf(buf, sizeof(buf), "%s", path);
  for (;;) {
    if (mount(nullptr, buf, nullptr, flags, nullptr) == 0) return;
    if (errno != EINVAL) die("make parent mount of %s %s (%s): %s", path, flags & MS_SLAVE ? "a slave" : "private", buf, err());
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
  unsigned long parent = static_cast<unsigned long>(a.i());
  snprintf(g.rootfs, sizeof(g.rootfs), "%s", rootfs);
  make_parent_private(rootfs, parent);
  if (mount(rootfs, rootfs, nullptr, MS_BIND | MS_REC, nullptr) != 0) die("bind rootfs %s on itself: %s", rootfs, err());
  g.rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (g.rootfd < 0) die("open rootfs %s: %s", rootfs, err());
}

void op_device(Args a) {
  const char* path = a.s();
  mode_t type = static_cast<mode_t>(a.i());
  mode_t mode = static_cast<mode_t>(a.i());
  unsigned major_ = static_cast<unsigned>(a.i());
  unsigned minor_ = static_cast<unsigned>(a.i());
  uid_t uid = static_cast<uid_t>(a.i());
  gid_t gid = static_cast<gid_t>(a.i());
  bool bind = a.i() == DEVICE_BIND;

  if (bind) {
    // In a user namespace mknod is not allowed: bind the host's node on an empty file of its own.
    char host[4096];
    snprintf(host, sizeof(host), "/%s", path[0] == '/' ? path + 1 : path);
    int tree = open_tree(AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (tree < 0) die("bind device %s: %s", host, err());
    int t = root_make_real_file(g.rootfd, path);
    if (t < 0) die("create device %s: create mount point: %s", path, err());
    if (attach(tree, t) != 0) die("bind device %s: %s", host, err());
    close(tree);
    close(t);
    return;
  }
  // The parent directory, resolved in root; the node itself is (re)made in it.
  char name[256];
  int dfd = root_make_parent(g.rootfd, path, name, sizeof(name));
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
  int dfd = root_make_parent(g.rootfd, link, name, sizeof(name));
  if (dfd < 0) die("symlink %s: resolve parent directory: %s", link, err());
  if (symlinkat(target, dfd, name) != 0 && errno != EEXIST) die("symlink %s -> %s: %s", link, target, err());
  close(dfd);
}

void op_pivot_root() {
  if (fchdir(g.rootfd) != 0) die("pivot_root: chdir to rootfs %s: %s", g.rootfs, err());
  // pivot_root(".", ".") stacks the old root under the new one; then detach it.
  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) die("pivot_root: open old root: %s", err());
  if (syscall(SYS_pivot_root, ".", ".") != 0) die("pivot_root %s: %s", g.rootfs, err());
  if (fchdir(oldroot) != 0) die("pivot_root: chdir to old root: %s", err());
  // Make the old root a slave so the unmount does not propagate to the host.
  if (mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) die("pivot_root: make old root rslave: %s", err());
  if (umount2(".", MNT_DETACH) != 0) die("pivot_root: detach old root: %s", err());
  close(oldroot);
  if (chdir("/") != 0) die("pivot_root: chdir /: %s", err());
  close(g.rootfd);
  g.rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

// Decodes mountinfo's \ooo escapes in place.
void unescape_mountinfo(char* s) {
  char* w = s;
  for (char* r = s; *r;) {
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
      *w++ = static_cast<char>(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
      r += 4;
    } else {
      *w++ = *r++;
    }
  }
  *w = 0;
}

// runc's msMoveRoot: with chroot the host's procfs and sysfs stay in the container's mount namespace
// (out of sight, but they let the kernel allow new procfs/sysfs mounts there): every full procfs or sysfs
// mount outside the rootfs is made a slave (so nothing propagates back) and detached, or, where it cannot
// be unmounted, covered with a tmpfs.
void hide_host_proc_sys() {
  // (thread-self is a link inside the helper's own procfs, which proc_open does not follow)
  int fd = openat(need_proc("move root"), "thread-self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("move root: open mountinfo: %s", err());
  static char buf[1 << 20];
  size_t len = 0;
  ssize_t n;
  while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) len += static_cast<size_t>(n);
  if (n < 0) die("move root: read mountinfo: %s", err());
  close(fd);
  buf[len] = 0;
  size_t rlen = strlen(g.rootfs);
  char* save = nullptr;
  for (char* line = strtok_r(buf, "\n", &save); line; line = strtok_r(nullptr, "\n", &save)) {
    char* f[64];
    int nf = 0;
    char* s2 = nullptr;
    for (char* t = strtok_r(line, " ", &s2); t && nf < 64; t = strtok_r(nullptr, " ", &s2)) f[nf++] = t;
    int dash = -1;
    for (int i = 6; i < nf; i++)
      if (strcmp(f[i], "-") == 0) {
        dash = i;
        break;
      }
    if (dash < 0 || dash + 1 >= nf) continue;
    const char* type = f[dash + 1];
    unescape_mountinfo(f[3]);
    unescape_mountinfo(f[4]);
    const char* mp = f[4];
    if (strcmp(f[3], "/") != 0 || (strcmp(type, "proc") != 0 && strcmp(type, "sysfs") != 0) || strncmp(mp, g.rootfs, rlen) == 0) continue;
    if (mount(nullptr, mp, nullptr, MS_SLAVE | MS_REC, nullptr) != 0) {
      if (errno == ENOENT) continue;  // under a mount detached already
      die("move root: make %s (%s) rslave: %s", mp, type, err());
    }
    if (umount2(mp, MNT_DETACH) == 0) continue;
    if (errno != EINVAL && errno != EPERM) die("move root: unmount %s (%s): %s", mp, type, err());
    if (mount("tmpfs", mp, "tmpfs", 0, nullptr) != 0) die("move root: cover %s (%s) with a tmpfs: %s", mp, type, err());
  }
}

void op_move_root() {
  hide_host_proc_sys();
  if (fchdir(g.rootfd) != 0) die("move root: chdir to rootfs %s: %s", g.rootfs, err());
  if (mount(g.rootfs, "/", nullptr, MS_MOVE, nullptr) != 0) die("move root: MS_MOVE %s to /: %s", g.rootfs, err());
  if (chroot(".") != 0) die("move root: chroot %s: %s", g.rootfs, err());
  if (chdir("/") != 0) die("move root: chdir /: %s", err());
  close(g.rootfd);
  g.rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

// /dev/null of the container, opened once without following it, and checked to be the null device: what
// masked files are bound to (a symlink or another file there would show the container something else).

int dev_null(const char* path) {
  if (g.devnull >= 0) return g.devnull;
  int fd = root_open_real(g.rootfd, "/dev/null");
  if (fd < 0 && errno == ELOOP) die("can't mask paths: /dev/null is not the null device (it is a symlink)");
  if (fd < 0) die("mask %s: open /dev/null: %s", path, err());
  struct stat st;
  if (fstat(fd, &st) != 0) die("mask %s: stat /dev/null: %s", path, err());
  if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) die("can't mask paths: /dev/null is not the null device (char 1:3)");
  return g.devnull = fd;
}

void op_mask_path(Args a) {
  const char* path = a.s();
  int fd = root_open(g.rootfd, path);
  if (fd < 0) {
    if (errno == ENOENT) return;
    die("mask %s: %s", path, err());
  }
  struct stat st;
  if (fstat(fd, &st) != 0) die("mask %s: stat: %s", path, err());
  int mnt;
  if (S_ISDIR(st.st_mode)) {
    mnt = new_filesystem("tmpfs", path, "tmpfs", MS_RDONLY, g.mask_data);
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
  int fd = root_open(g.rootfd, path);
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
  int fd = root_open(g.rootfd, path);
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

void op_root_propagation(Args a) {
  unsigned long flags = static_cast<unsigned long>(a.i());
  if (mount(nullptr, "/", nullptr, flags, nullptr) != 0) die("%s (0x%lx): %s", g.rootfd >= 0 ? "unable to apply root propagation flags" : "set propagation of /", flags, err());
}

void op_mkdir(Args a) {
  const char* path = a.s();
  int fd = root_make_dir(g.rootfd, path);
  if (fd < 0) die("create directory %s in rootfs: %s", path, err());
  close(fd);
}

void close_setup_handles() {
  if (g.procfd >= 0) close(g.procfd);
  if (g.devnull >= 0) close(g.devnull);
  if (g.attrdir >= 0) close(g.attrdir);
  g.procfd = g.devnull = g.attrdir = -1;
}
