// The console: a pty pair from the container's devpts (checked), the slave as the process's stdio and
// controlling terminal (and, for the init, on /dev/console), the master to the console socket.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "../common/scm.h"
#include "helper.h"
#include "paths.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef DEVPTS_SUPER_MAGIC
#define DEVPTS_SUPER_MAGIC 0x1cd1
#endif
// Console

// A new pty pair from the container's devpts, as runc's safeAllocPty: /dev/pts/ptmx (never /dev/ptmx,
// which an image or a volume can make anything) is opened O_PATH without following it, checked to be the
// ptmx inode of a real devpts mount, and only then opened, through the helper's procfs.
int open_ptmx() {
  int root = g.rootfd >= 0 ? g.rootfd : open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die("console: open /: %s", err());
  int fd = root_open_real(root, "/dev/pts/ptmx");
  if (fd < 0) die("console: open /dev/pts/ptmx in container: %s", errno == ELOOP ? "it is a symlink" : err());
  if (root != g.rootfd) close(root);
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
  bool bind_console = a.i() == CONSOLE_BIND_DEV_CONSOLE;
  int master = open_ptmx();
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) != 0) die("console: unlock pty: %s", err());
  unsigned ptn = 0;
  if (ioctl(master, TIOCGPTN, &ptn) != 0) die("console: get pty number: %s", err());
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) die("console: open pty peer: %s", err());
  // Only the owner becomes the process's user, as runc's fixStdioPermissions: the group stays devpts'
  // (gid=5 "tty" from the mount options), and a pty the helper may not chown (an owner not mapped in its
  // user namespace, a read-only /dev) is left as it is.
  struct stat pst;
  if (fstat(slave, &pst) != 0) die("console: stat /dev/pts/%u: %s", ptn, err());
  if (pst.st_uid != uid && fchown(slave, uid, static_cast<gid_t>(-1)) != 0 && errno != EPERM && errno != EROFS)
    die("console: chown /dev/pts/%u: %s", ptn, err());
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
    int cfd = root_make_real_file(g.rootfd, "/dev/console");
    if (cfd < 0) die("console: create /dev/console: %s", errno == ELOOP ? "it is a symlink" : err());
    struct stat st;
    if (fstat(cfd, &st) != 0) die("console: stat /dev/console: %s", err());
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) die("console: /dev/console is not a regular file or a character device");
    int tree = clone_of(slave, false);
    if (tree < 0 || attach(tree, cfd) != 0) die("console: bind /dev/pts/%u on /dev/console: %s", ptn, err());
    close(tree);
    close(cfd);
  }
  int rc = scm_send(sock, "/dev/ptmx", 9, &master, 1);
  if (rc != 0) die("send pty master to console socket: %s", strerror(-rc));
  close(master);
  close(sock);
  if (ioctl(slave, TIOCSCTTY, 0) != 0) die("console: set controlling terminal: %s", err());
  for (int i = 0; i < 3; i++)
    if (dup2(slave, i) < 0) die("console: dup pty to fd %d: %s", i, err());
  if (slave > 2) close(slave);
}
