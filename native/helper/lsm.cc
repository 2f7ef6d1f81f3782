// AppArmor and SELinux: the attributes of this process that take effect at execve (attr/apparmor/exec,
// attr/exec) or label what it creates next (attr/keycreate), and SELinux labels of mounts.
//
// Every attribute is reached through the helper's own procfs (OP_OPEN_PROC: a fresh procfs instance, or the
// host's /proc checked before the rootfs was entered), by a path read from its thread-self link and opened
// with no symlink, no "..", no other mount on the way: a container's /proc (a symlink, a bind of a fake
// directory, anything its image holds) is never used. The kernel only lets a task write its own attributes,
// so the file is opened by the task that writes it, right before the write.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "helper.h"
#include "paths.h"

namespace {

bool known_attr(const char* attr) { return strcmp(attr, "apparmor/exec") == 0 || strcmp(attr, "exec") == 0 || strcmp(attr, "keycreate") == 0; }

// "<pid>/task/<tid>": what thread-self names in the helper's procfs.
bool is_task_path(const char* p) {
  const char* s = p;
  if (*s < '0' || *s > '9') return false;
  while (*s >= '0' && *s <= '9') s++;
  if (strncmp(s, "/task/", 6) != 0) return false;
  s += 6;
  if (*s < '0' || *s > '9') return false;
  while (*s >= '0' && *s <= '9') s++;
  return *s == 0;
}

}  // namespace

void op_lsm_attr_dir(Args a) {
  const char* dir = a.s();
  int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) die("lsm test attribute directory %s: %s", dir, err());
  if (g.attrdir >= 0) close(g.attrdir);
  g.attrdir = fd;
}

void op_lsm_attr(Args a) {
  const char* attr = a.s();
  const Arg& value = a.raw_s();
  const char* what = a.s();
  if (!known_attr(attr)) die("%s: attribute %s is not one tsrun writes", what, attr);
  char where[128];
  int fd;
  if (g.attrdir >= 0) {
    snprintf(where, sizeof(where), "attr/%s (test directory)", attr);
    fd = proc_open(g.attrdir, attr, O_WRONLY | O_APPEND);
  } else {
    int proc = need_proc(what);
    char task[64];
    ssize_t n = readlinkat(proc, "thread-self", task, sizeof(task) - 1);
    if (n < 0) die("%s: read thread-self in the helper's procfs: %s", what, err());
    task[n] = 0;
    if (!is_task_path(task)) die("%s: thread-self in the helper's procfs is %s", what, task);
    int w = snprintf(where, sizeof(where), "/proc/%s/attr/%s", task, attr);
    if (w < 0 || static_cast<size_t>(w) >= sizeof(where)) die("%s: attribute path too long", what);
    fd = proc_open(proc, where + 6, O_WRONLY);
  }
  if (fd < 0) die("%s: open %s: %s", what, where, err());
  ssize_t n = write(fd, value.s, value.len);
  if (n < 0) die("%s: write %s: %s", what, where, err());
  if (static_cast<uint32_t>(n) != value.len) die("%s: write %s: short write (%zd of %u bytes)", what, where, n, value.len);
  close(fd);
}

void op_file_label(Args a) {
  const char* path = a.s();
  const Arg& label = a.raw_s();
  int fd = root_open(g.rootfd, path);
  if (fd < 0) die("set SELinux label of %s: %s", path, err());
  // an O_PATH fd takes no xattr: reopened through the helper's procfs (its fd link, not the container's /proc)
  ProcFd p(fd);
  int rfd = openat(need_proc("set SELinux label"), p.buf, O_RDONLY | O_CLOEXEC);
  if (rfd < 0) die("set SELinux label of %s: reopen: %s", path, err());
  if (fsetxattr(rfd, "security.selinux", label.s, label.len, 0) != 0) die("set SELinux label of %s: setxattr(label=%s): %s", path, label.s, err());
  close(rfd);
  close(fd);
}

void op_mask_tmpfs_data(Args a) {
  const Arg& data = a.raw_s();
  if (data.len >= sizeof(g.mask_data)) die("masked paths: tmpfs data too long (%u bytes)", data.len);
  memcpy(g.mask_data, data.s, data.len);
  g.mask_data[data.len] = 0;
}
