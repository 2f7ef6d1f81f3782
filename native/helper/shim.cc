// tsrun-init's shim mode: the supervisor of a detached container (`tsrun run -d`, `tsrun create --shim`).
//
// It is the parent of the container's init (tsrun asks it to start the set-up helper, whose CLONE_PARENT
// child, the init, becomes the shim's child) and a child subreaper, so it reaps the init and every orphan
// (detached exec processes included). It records the init's exit (exit.json in the state directory), holds
// the container's stdio — pipes copied to container.log as JSON lines, or the pty master, which
// `tsrun attach` reaches through attach.sock — and survives the tsrun that started it, its terminal, SIGHUP.
//
// Usage (by tsrun only): tsrun-init shim <control fd> <state dir fd>
// Control messages (SOCK_SEQPACKET, one per packet: u32 type | payload):
//   MSG_SHIM_SPAWN   payload: u32 flags, i32 console index, argv (NUL-separated); fds: the child's fds 0..n-1
//                    flags (SHIM_SPAWN_*): LOGS = stdio to the log (fds 0-2 replaced), CONSOLE = the fd at the
//                    console index replaced by a socket whose peer receives the pty master. Reply MSG_SHIM_SPAWNED (i32 pid) or MSG_ERROR.
//   MSG_SHIM_INIT    payload: i32 pid of the container's init
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/scm.h"
#include "io.h"
#include "protocol.h"

namespace {

struct Shim {
  int ctl = -1;                 // tsrun create/run, until the init is known
  int ctl_listen = -1;          // shim.sock: later spawn requests (tsrun exec --detach)
  int peers[4] = {-1, -1, -1, -1};
  int dirfd = -1;
  int sigfd = -1;
  int out = -1, err = -1;       // log pipes (read ends)
  int console = -1;             // receives the pty master
  int master = -1;
  int listen = -1, client = -1; // attach
  int log = -1;
  pid_t init = 0;
  bool init_done = false;
  int exit_code = 0, exit_signal = 0;
  struct timespec exited_at = {0, 0};
  // children that exited before we learnt which one is the init
  pid_t early_pid[64];
  int early_status[64];
  int early_n = 0;
};

void rfc3339(const struct timespec& ts, char* buf, size_t len) {
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, len - n, ".%09ldZ", ts.tv_nsec);
}

// One log record as container runtimes write them: {"log":"…","stream":"stdout","time":"…"}
void log_chunk(Shim& s, const char* stream, const char* data, size_t len) {
  if (s.log < 0) return;
  static char buf[4 * 16384 + 256];
  size_t w = 0;
  w += static_cast<size_t>(snprintf(buf, sizeof(buf), "{\"log\":\""));
  for (size_t k = 0; k < len && w < sizeof(buf) - 160; k++) {
    unsigned char c = static_cast<unsigned char>(data[k]);
    if (c == '"' || c == '\\') {
      buf[w++] = '\\';
      buf[w++] = static_cast<char>(c);
    } else if (c == '\n') {
      buf[w++] = '\\';
      buf[w++] = 'n';
    } else if (c < 0x20 || c == 0x7f) {
      w += static_cast<size_t>(snprintf(buf + w, sizeof(buf) - w, "\\u%04x", c));
    } else {
      buf[w++] = static_cast<char>(c);
    }
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char t[64];
  rfc3339(ts, t, sizeof(t));
  w += static_cast<size_t>(snprintf(buf + w, sizeof(buf) - w, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream, t));
  write_full(s.log, buf, w);
}

void record_exit(Shim& s, int status) {
  s.init_done = true;
  if (WIFSIGNALED(status)) {
    s.exit_signal = WTERMSIG(status);
    s.exit_code = 128 + s.exit_signal;
  } else {
    s.exit_code = WEXITSTATUS(status);
  }
  clock_gettime(CLOCK_REALTIME, &s.exited_at);
  char t[64];
  rfc3339(s.exited_at, t, sizeof(t));
  char json[160];
  int n = snprintf(json, sizeof(json), "{\"code\":%d,\"signal\":%d,\"time\":\"%s\"}\n", s.exit_code, s.exit_signal, t);
  // tmp + rename: readers never see half a record. The directory may be gone (delete -f): fine.
  int fd = openat(s.dirfd, "exit.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd >= 0) {
    bool ok = write_full(fd, json, static_cast<size_t>(n));
    close(fd);
    if (ok) renameat(s.dirfd, "exit.json.tmp", s.dirfd, "exit.json");
  }
}

void reap(Shim& s) {
  for (;;) {
    int status = 0;
    pid_t p = waitpid(-1, &status, WNOHANG);
    if (p <= 0) return;
    if (s.init > 0 && p == s.init) {
      record_exit(s, status);
    } else if (s.init == 0 && s.early_n < 64) {
      s.early_pid[s.early_n] = p;
      s.early_status[s.early_n++] = status;
    }
  }
}

void reply_error(int ctl, const char* what) {
  char msg[256];
  int n = snprintf(msg, sizeof(msg), "shim: %s: %s", what, strerror(errno));
  uint32_t buf[1 + 64];
  buf[0] = MSG_ERROR;
  memcpy(buf + 1, msg, static_cast<size_t>(n));
  send(ctl, buf, 4 + static_cast<size_t>(n), MSG_NOSIGNAL);
}

void spawn(Shim& s, int ctl, const char* payload, long len, int* fds, int nfds) {
  uint32_t flags;
  int32_t console_index;
  if (len < 8) {
    errno = EPROTO;
    reply_error(ctl, "bad spawn request");
    return;
  }
  memcpy(&flags, payload, 4);
  memcpy(&console_index, payload + 4, 4);
  char* argv[16];
  int argc = 0;
  for (long off = 8; off < len && argc < 15;) {
    argv[argc++] = const_cast<char*>(payload + off);
    off += static_cast<long>(strlen(payload + off)) + 1;
  }
  argv[argc] = nullptr;
  int child_fds[16];
  int n = nfds;
  for (int k = 0; k < n; k++) child_fds[k] = fds[k];
  if (flags & SHIM_SPAWN_LOGS) {  // stdio: /dev/null in, pipes out to the log
    int p_out[2], p_err[2];
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0 || pipe2(p_out, O_CLOEXEC) != 0 || pipe2(p_err, O_CLOEXEC) != 0) {
      reply_error(ctl, "log pipes");
      return;
    }
    s.out = p_out[0];
    s.err = p_err[0];
    child_fds[0] = devnull;
    child_fds[1] = p_out[1];
    child_fds[2] = p_err[1];
  }
  if (flags & SHIM_SPAWN_CONSOLE) {
    int sv[2];
    if (console_index < 0 || console_index >= n || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      reply_error(ctl, "console socket");
      return;
    }
    s.console = sv[0];
    child_fds[console_index] = sv[1];
  }
  pid_t pid = fork();
  if (pid < 0) {
    reply_error(ctl, "fork");
    return;
  }
  if (pid == 0) {
    // Move every fd above the target range first, then into place.
    int moved[16];
    for (int k = 0; k < n; k++) moved[k] = fcntl(child_fds[k], F_DUPFD_CLOEXEC, 64);
    for (int k = 0; k < n; k++) dup2(moved[k], k);
    syscall(SYS_close_range, static_cast<unsigned>(n), ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; sig++)
      if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  // The shim keeps only its own ends.
  for (int k = 0; k < nfds; k++) close(fds[k]);
  if (flags & SHIM_SPAWN_LOGS) {
    close(child_fds[0]);
    close(child_fds[1]);
    close(child_fds[2]);
  }
  if (flags & SHIM_SPAWN_CONSOLE) close(child_fds[console_index]);
  uint32_t reply[2] = {MSG_SHIM_SPAWNED, static_cast<uint32_t>(pid)};
  send(ctl, reply, sizeof(reply), MSG_NOSIGNAL);
}

// One request from a control connection; false when the peer has gone.
bool on_ctl(Shim& s, int ctl) {
  char buf[8192];
  int fds[16];
  int nfds = 16;
  long r = scm_recv(ctl, buf, sizeof(buf) - 1, fds, &nfds);
  if (r <= 0) {
    for (int k = 0; k < nfds; k++) close(fds[k]);
    return false;
  }
  buf[r] = 0;
  uint32_t type;
  memcpy(&type, buf, 4);
  if (type == MSG_SHIM_SPAWN) {
    spawn(s, ctl, buf + 4, r - 4, fds, nfds);
  } else if (type == MSG_SHIM_INIT && r >= 8 && s.init == 0) {
    int32_t pid;
    memcpy(&pid, buf + 4, 4);
    s.init = pid;
    for (int k = 0; k < s.early_n; k++)
      if (s.early_pid[k] == pid) record_exit(s, s.early_status[k]);
    for (int k = 0; k < nfds; k++) close(fds[k]);
  } else {
    for (int k = 0; k < nfds; k++) close(fds[k]);
  }
  return true;
}

// A listening socket in the state directory (through its fd: the id's length never matters).
int listen_in_state_dir(Shim& s, const char* name, int type) {
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/%s", s.dirfd, name);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 4) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Copies what a stream has to the log (and the attached client); false at end of stream.
bool pump(Shim& s, int fd, const char* stream) {
  char buf[16384];
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n <= 0) return n < 0 && (errno == EINTR || errno == EAGAIN);
  log_chunk(s, stream, buf, static_cast<size_t>(n));
  if (s.client >= 0 && send(s.client, buf, static_cast<size_t>(n), MSG_NOSIGNAL) < 0) {
    close(s.client);
    s.client = -1;
  }
  return true;
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

int shim_main(int ctl, int dirfd) {
  Shim s;
  s.ctl = ctl;
  s.dirfd = dirfd;
  setsid();
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("tsrun-shim"), 0, 0, 0);
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTTOU, SIG_IGN);
  signal(SIGTTIN, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  s.sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  s.log = openat(dirfd, "container.log", O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
  s.ctl_listen = listen_in_state_dir(s, "shim.sock", SOCK_SEQPACKET);

  struct timespec drain_until = {0, 0};
  for (;;) {
    reap(s);
    if (s.init_done) {
      // The init is gone: take what is left in the pipes for a moment, then leave.
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (drain_until.tv_sec == 0) {
        drain_until = now;
        drain_until.tv_nsec += 300000000;
        if (drain_until.tv_nsec >= 1000000000) {
          drain_until.tv_sec++;
          drain_until.tv_nsec -= 1000000000;
        }
      }
      bool streams = s.out >= 0 || s.err >= 0 || s.master >= 0;
      if (!streams || now.tv_sec > drain_until.tv_sec || (now.tv_sec == drain_until.tv_sec && now.tv_nsec >= drain_until.tv_nsec)) break;
    } else if (s.ctl < 0 && s.init == 0) {
      break;  // tsrun went away before the container existed (a failed create)
    }
    struct pollfd p[16];
    int n = 0;
    auto add = [&](int fd) {
      p[n].fd = fd;
      p[n].events = POLLIN;
      p[n].revents = 0;
      return n++;
    };
    int i_ctl = s.ctl >= 0 ? add(s.ctl) : -1;
    int i_sig = add(s.sigfd);
    int i_out = s.out >= 0 ? add(s.out) : -1;
    int i_err = s.err >= 0 ? add(s.err) : -1;
    int i_con = s.console >= 0 ? add(s.console) : -1;
    int i_master = s.master >= 0 ? add(s.master) : -1;
    int i_listen = s.listen >= 0 ? add(s.listen) : -1;
    int i_client = s.client >= 0 ? add(s.client) : -1;
    int i_ctl_listen = s.ctl_listen >= 0 && !s.init_done ? add(s.ctl_listen) : -1;
    int i_peer[4];
    for (int k = 0; k < 4; k++) i_peer[k] = s.peers[k] >= 0 ? add(s.peers[k]) : -1;
    int rc = poll(p, static_cast<nfds_t>(n), s.init_done ? 50 : -1);
    if (rc < 0 && errno != EINTR) break;
    if (rc <= 0) continue;
    if (i_sig >= 0 && p[i_sig].revents) {
      struct signalfd_siginfo si;
      while (read(s.sigfd, &si, sizeof(si)) > 0) {
      }
    }
    if (i_ctl >= 0 && p[i_ctl].revents && !on_ctl(s, s.ctl)) close_fd(s.ctl);
    if (i_ctl_listen >= 0 && p[i_ctl_listen].revents) {
      int c = accept4(s.ctl_listen, nullptr, nullptr, SOCK_CLOEXEC);
      int k = 0;
      while (k < 4 && s.peers[k] >= 0) k++;
      if (c >= 0 && k < 4)
        s.peers[k] = c;
      else if (c >= 0)
        close(c);
    }
    for (int k = 0; k < 4; k++)
      if (i_peer[k] >= 0 && p[i_peer[k]].revents && !on_ctl(s, s.peers[k])) close_fd(s.peers[k]);
    if (i_out >= 0 && p[i_out].revents && !pump(s, s.out, "stdout")) close_fd(s.out);
    if (i_err >= 0 && p[i_err].revents && !pump(s, s.err, "stderr")) close_fd(s.err);
    if (i_con >= 0 && p[i_con].revents) {
      int fds[1];
      int nf = 1;
      char name[64];
      long r = scm_recv(s.console, name, sizeof(name), fds, &nf);
      if (nf == 1) {
        s.master = fds[0];
        s.listen = listen_in_state_dir(s, "attach.sock", SOCK_STREAM);
      }
      if (r <= 0 || nf == 1) close_fd(s.console);
    }
    if (i_master >= 0 && p[i_master].revents && !pump(s, s.master, "stdout")) close_fd(s.master);
    if (i_listen >= 0 && p[i_listen].revents) {
      int c = accept4(s.listen, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        close_fd(s.client);  // one attached client at a time: the newest
        s.client = c;
        // The client gets the master too, to set the window size; data goes through the shim.
        if (s.master >= 0) scm_send(c, "/dev/ptmx", 9, &s.master, 1);
      }
    }
    if (i_client >= 0 && p[i_client].revents) {
      char buf[4096];
      ssize_t r = recv(s.client, buf, sizeof(buf), 0);
      if (r <= 0)
        close_fd(s.client);
      else if (s.master >= 0)
        write_full(s.master, buf, static_cast<size_t>(r));
    }
  }
  if (s.listen >= 0) unlinkat(dirfd, "attach.sock", 0);
  if (s.ctl_listen >= 0) unlinkat(dirfd, "shim.sock", 0);
  return 0;
}
