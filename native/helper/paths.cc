#include "paths.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

long sys_openat2(int dirfd, const char* path, int flags, uint64_t resolve) {
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = resolve;
  return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

const uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

int fail(int fd, int e) {
  if (fd >= 0) close(fd);
  errno = e;
  return -1;
}

enum Make { kNone, kDir, kFile };

// Opens `rel` as O_PATH inside the root, following symlinks inside it. With `make` set, missing components
// are created: directories, and for the last one a directory or an empty file. Components that exist
// resolve through openat2; the first missing one is created in its (already resolved, in-root) parent. A
// symlink met here is dangling (else openat2 would have followed it): its target is spliced into the
// remaining path, up to 40 times like the kernel's own limit, and the walk starts again from the root.
int walk(int root, const char* rel, Make make) {
  long fd = sys_openat2(root, rel, O_PATH | O_CLOEXEC, kInRoot);
  if (fd >= 0 || make == kNone || errno != ENOENT) return static_cast<int>(fd);

  char path[4096];
  if (strlen(rel) >= sizeof(path)) return fail(-1, ENAMETOOLONG);
  strcpy(path, rel);
  int links = 0;
  for (;;) {
    char* comp = path;
    while (*comp == '/') comp++;
    int parent = static_cast<int>(sys_openat2(root, ".", O_PATH | O_CLOEXEC, kInRoot));
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
          int via = static_cast<int>(sys_openat2(parent, comp, O_PATH | O_CLOEXEC, kInRoot));
          if (via >= 0) {
            close(next);
            next = via;
          } else {
            char target[4096];
            ssize_t n = readlinkat(next, "", target, sizeof(target) - 1);
            close(next);
            if (n < 0 || ++links > 40) return fail(parent, ELOOP);
            target[n] = 0;
            // new path = (target absolute ? target : directory of comp + target) + "/" + rest
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
            if (w < 0 || w >= static_cast<int>(sizeof(rebuilt))) return fail(-1, ENAMETOOLONG);
            strcpy(path, rebuilt);
            restart = true;
            break;
          }
        }
        close(parent);
        parent = next;
      } else if (errno == ENOENT) {
        int rc;
        if (last && make == kFile) {
          rc = openat(parent, comp, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
          if (rc >= 0) close(rc);
        } else {
          rc = mkdirat(parent, comp, 0755);
        }
        if (rc < 0 && errno != EEXIST) return fail(parent, errno);
        // Whatever is there now (made by us, or by someone racing us) is opened without following it: a
        // symlink put there in between is then a symlink fd, and walking on through it fails (ENOTDIR).
        next = static_cast<int>(sys_openat2(parent, comp, O_PATH | O_CLOEXEC | O_NOFOLLOW, kInRoot));
        if (next < 0) return fail(parent, errno);
        close(parent);
        parent = next;
      } else {
        return fail(parent, errno);
      }
      if (!end) break;
      *end = '/';
      comp = end + 1;
      while (*comp == '/') comp++;
    }
    if (!restart) return parent;
  }
}

// Splits rel into its parent ("" for the root) and last component.
bool split(const char* rel, char* dir, size_t dsize, char* name, size_t nsize) {
  char buf[4096];
  size_t len = strlen(rel);
  if (len >= sizeof(buf) || len >= dsize) {
    errno = ENAMETOOLONG;
    return false;
  }
  strcpy(buf, rel);
  while (len > 1 && buf[len - 1] == '/') buf[--len] = 0;
  char* slash = strrchr(buf, '/');
  const char* last = slash ? slash + 1 : buf;
  if (*last == 0 || strcmp(last, ".") == 0 || strcmp(last, "..") == 0) {
    errno = EINVAL;
    return false;
  }
  if (strlen(last) >= nsize) {
    errno = ENAMETOOLONG;
    return false;
  }
  strcpy(name, last);
  if (slash) {
    *slash = 0;
    strcpy(dir, buf);
  } else {
    dir[0] = 0;
  }
  return true;
}

int type_is(int fd, mode_t type, int e) {
  if (fd < 0) return fd;
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(fd, errno);
  if ((st.st_mode & S_IFMT) == type) return fd;
  return fail(fd, S_ISLNK(st.st_mode) ? ELOOP : e);
}

// The last component of rel in its (made) parent, never followed; made as `make` if missing.
int real(int root, const char* rel, Make make) {
  if (rel[strspn(rel, "/")] == 0) return static_cast<int>(sys_openat2(root, ".", O_PATH | O_CLOEXEC, kInRoot));  // the root itself
  char name[256];
  int dir = root_make_parent(root, rel, name, sizeof(name));
  if (dir < 0) return -1;
  int fd = static_cast<int>(sys_openat2(dir, name, O_PATH | O_CLOEXEC | O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS));
  if (fd < 0 && errno == ENOENT && make != kNone) {
    int rc;
    if (make == kFile) {
      rc = openat(dir, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
      if (rc >= 0) close(rc);
    } else {
      rc = mkdirat(dir, name, 0755);
    }
    if (rc < 0 && errno != EEXIST) return fail(dir, errno);
    fd = static_cast<int>(sys_openat2(dir, name, O_PATH | O_CLOEXEC | O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS));
  }
  int e = errno;
  close(dir);
  if (fd < 0) return fail(-1, e);
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(fd, errno);
  if (S_ISLNK(st.st_mode)) return fail(fd, ELOOP);
  return fd;
}

}  // namespace

int root_open(int root, const char* rel) { return walk(root, rel, kNone); }

int root_open_real(int root, const char* rel) { return real(root, rel, kNone); }

int root_make_dir(int root, const char* rel) { return type_is(walk(root, rel, kDir), S_IFDIR, ENOTDIR); }

int root_make_real_dir(int root, const char* rel) { return type_is(real(root, rel, kDir), S_IFDIR, ENOTDIR); }

int root_make_file(int root, const char* rel) { return walk(root, rel, kFile); }

int root_make_real_file(int root, const char* rel) { return real(root, rel, kFile); }

int root_make_parent(int root, const char* rel, char* name, size_t size) {
  char dir[4096];
  if (!split(rel, dir, sizeof(dir), name, size)) return -1;
  return root_make_dir(root, dir[0] ? dir : "/");
}

int proc_open(int proc, const char* rel, int flags) {
  return static_cast<int>(sys_openat2(proc, rel, flags | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS));
}
