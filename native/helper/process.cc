// Processes: the set-up helper's host-context steps (fds, cgroups, namespaces, limits), the clone of the
// container's init, hooks, the handshake with `tsrun create` and the wait for `tsrun start`, the --init
// reaper, and exec.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helper.h"
#include "io.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// ---------------------------------------------------------------------------------------------------------
// Host context

void op_close_from(Args a) {
  if (syscall(SYS_close_range, static_cast<unsigned>(a.i()), ~0U, 0) != 0) die("close inherited fds: %s", err());
}

void op_cgroup_join(Args a) {
  const char* path = a.s();
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || !write_full(fd, "0", 1)) die("join cgroup: write %s: %s", path, err());
  close(fd);
}

void op_setns_fd(Args a) {
  int fd = static_cast<int>(a.i());
  int64_t flags = a.i();
  if (setns(fd, static_cast<int>(flags)) != 0) die("join the container's namespaces (flags 0x%llx) through its pidfd: %s", static_cast<unsigned long long>(flags), err());
  close(fd);
}

void op_enter_root(Args a) {
  int fd = static_cast<int>(a.i());
  if (fchdir(fd) != 0) die("enter the container's root: fchdir: %s", err());
  if (chroot(".") != 0) die("enter the container's root: chroot: %s", err());
  if (chdir("/") != 0) die("enter the container's root: chdir /: %s", err());
  close(fd);
}

// A container without a mount namespace of its own shares tsrun's: nothing is mounted for it (a mount
// would be the host's, and outlive the container); its root is the rootfs directory, entered by chroot as
// runc does then (libcontainer/rootfs_linux.go: chroot() when the config has no NEWNS).
void op_root_dir(Args a) {
  const char* rootfs = a.s();
  snprintf(g.rootfs, sizeof(g.rootfs), "%s", rootfs);
  g.rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (g.rootfd < 0) die("open rootfs %s: %s", rootfs, err());
}

void op_chroot() {
  if (fchdir(g.rootfd) != 0) die("error jailing process inside rootfs: chdir %s: %s", g.rootfs, err());
  if (chroot(".") != 0) die("error jailing process inside rootfs: chroot %s: %s", g.rootfs, err());
  if (chdir("/") != 0) die("error jailing process inside rootfs: chdir /: %s", err());
  close(g.rootfd);
  g.rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (g.rootfd < 0) die("error jailing process inside rootfs: open /: %s", err());
}

void op_unshare(Args a) {
  int64_t flags = a.i();
  if (unshare(static_cast<int>(flags)) != 0) die("unshare namespaces (flags 0x%llx): %s", static_cast<unsigned long long>(flags), err());
}

// tsrun writes the maps into this process's /proc files. A non-dumpable process's /proc files belong to
// the host's root, so a rootless tsrun could not open them: dumpable for that moment only, as runc's nsexec.
void op_usermap_sync() {
  int32_t self = getpid();
  if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) die("set dumpable for the user namespace maps: %s", err());
  if (!send_frame(g.sync, MSG_USERMAP_REQ, &self, sizeof(self))) die("ask tsrun for uid/gid maps: %s", err());
  await_ack(g.sync, "user namespace maps");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) die("clear dumpable after the user namespace maps: %s", err());
}

void op_become_root() {
  if (setresgid(0, 0, 0) != 0) die("become root in user namespace: setresgid 0: %s", err());
  if (setresuid(0, 0, 0) != 0) die("become root in user namespace: setresuid 0: %s", err());
}

void op_pdeathsig(Args a) {
  if (prctl(PR_SET_PDEATHSIG, static_cast<unsigned long>(a.i()), 0, 0, 0) != 0) die("set parent-death signal: %s", err());
}

// ---------------------------------------------------------------------------------------------------------
// Scheduling: CPU affinity, scheduler, I/O priority (runc: process_linux.go, init_linux.go)

// Every CPU the kernel may have (runc's MaxCPU): the kernel clamps it to its own and to the cpuset.
static unsigned char all_cpus[65536 / 8];

void op_cpu_affinity(Args a) {
  const Arg& mask = a.raw_s();
  int64_t which = a.i();
  const void* set = mask.s;
  size_t len = mask.len;
  if (len == 0) {
    memset(all_cpus, 0xff, sizeof(all_cpus));
    set = all_cpus;
    len = sizeof(all_cpus);
  }
  if (syscall(SYS_sched_setaffinity, 0, len, set) == 0) return;
  if (which == AFFINITY_RESET) {
    debugf("resetting the CPU affinity failed: %s", err());
    return;
  }
  die("error setting %s CPU affinity: %s", which == AFFINITY_INITIAL ? "initial" : "final", err());
}

// struct sched_attr (SCHED_ATTR_SIZE_VER1), as sched_setattr(2) takes it.
struct SchedAttr {
  uint32_t size;
  uint32_t policy;
  uint64_t flags;
  int32_t nice;
  uint32_t priority;
  uint64_t runtime;
  uint64_t deadline;
  uint64_t period;
  uint32_t util_min;
  uint32_t util_max;
};

void op_sched_attr(Args a) {
  SchedAttr attr;
  memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.policy = static_cast<uint32_t>(a.i());
  attr.flags = static_cast<uint64_t>(a.i());
  attr.nice = static_cast<int32_t>(a.i());
  attr.priority = static_cast<uint32_t>(a.i());
  attr.runtime = static_cast<uint64_t>(a.i());
  attr.deadline = static_cast<uint64_t>(a.i());
  attr.period = static_cast<uint64_t>(a.i());
  bool cpuset = a.i() != 0;
  if (syscall(SYS_sched_setattr, 0, &attr, 0) != 0) {
    if (errno == EPERM && cpuset) die("process scheduler can't be used together with AllowedCPUs");
    die("error setting scheduler: %s", err());
  }
}

void op_ioprio(Args a) {
  int64_t prio = a.i();
  if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, static_cast<int>(prio)) != 0) die("failed to set io priority: %s", err());
}

// linux.memoryPolicy (runc's setupMemoryPolicy): maxnode counts the mask's bits plus one, as the kernel
// reads one bit fewer than it is told.
void op_mempolicy(Args a) {
  int64_t mode = a.i();
  const Arg& nodes = a.raw_s();
  const void* mask = nodes.len > 0 ? nodes.s : nullptr;
  unsigned long maxnode = nodes.len > 0 ? nodes.len * 8 + 1 : 0;
  while (syscall(SYS_set_mempolicy, static_cast<int>(mode), mask, maxnode) != 0) {
    if (errno != EINTR) die("set_mempolicy: %s", err());
  }
}

// ---------------------------------------------------------------------------------------------------------
// Namespaces

void op_open_ns(Args a) {
  int64_t flag = a.i();
  const char* path = a.s();
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open namespace %s: %s", path, err());
  if (g.nns >= 8) die("too many namespaces to join");
  g.ns[g.nns++] = {flag, fd};
}

void op_setns(Args a) {
  int64_t flag = a.i();
  for (int k = 0; k < g.nns; k++) {
    if (g.ns[k].flag != flag || g.ns[k].fd < 0) continue;
    if (setns(g.ns[k].fd, static_cast<int>(flag)) != 0) die("join namespace (flag 0x%llx): setns: %s", static_cast<unsigned long long>(flag), err());
    close(g.ns[k].fd);
    g.ns[k].fd = -1;
    return;
  }
  die("join namespace (flag 0x%llx): not opened", static_cast<unsigned long long>(flag));
}

void await_ack(int fd, const char* what) {
  uint32_t type = 0, len = 0;
  char* payload = nullptr;
  if (!recv_frame(fd, &type, &payload, &len)) die("%s: waiting for tsrun: %s", what, err());
  if (type == MSG_ABORT) _exit(1);
  if (type != MSG_ACK) die("%s: unexpected message %u from tsrun", what, type);
  if (len) {
    free(g.state);
    g.state = payload;
    g.state_len = len;
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
    // Wait until the helper has reported our pid, so our messages come after it.
    int32_t mine = 0;
    if (!read_full(release[0], &mine, sizeof(mine))) _exit(1);  // the helper is gone without reporting it
    close(release[0]);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die("set parent-death signal: %s", err());
    if (getppid() == 1) _exit(1);  // tsrun is already gone
    // The init leads its own session (and, with a terminal, makes the pty its controlling terminal).
    if (setsid() < 0) die("setsid: %s", err());
    return;
  }
  int32_t p = pid;
  if (!send_frame(g.sync, MSG_PID, &p, sizeof(p))) {
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
    if (errno == ENOENT && (flags & WRITE_FILE_ENOENT_OK)) return;
    die("write %s: open: %s", path, err());
  }
  if (!write_full(fd, content.s, content.len)) die("write \"%s\" to %s: %s", content.s, path, err());
  close(fd);
}

// ---------------------------------------------------------------------------------------------------------
// Hooks, exec, ready and start

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
    // As runc: createContainer hooks run in the container's root (runc's init has done fchdir(rootfs) by
    // then); startContainer hooks where the process will run (its cwd, entered before start).
    if (strcmp(kind, "createContainer") == 0 && g.rootfd >= 0 && fchdir(g.rootfd) != 0) {
      dprintf(2, "chdir to the rootfs: %s", strerror(errno));
      _exit(127);
    }
    // A hook gets its stdio and nothing else (as runc's exec.Cmd): not the fds passed to the container,
    // not the start connection, not a seccomp notify fd.
    syscall(SYS_close_range, 3U, ~0U, 0);
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
  if (g.state_len) write_full(in[1], g.state, g.state_len);  // a hook that ignores stdin is fine
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
  if (timed_out) die_as(MSG_HOOK_ERROR, "error running %s hook %s: timed out after %lld s", kind, path, static_cast<long long>(timeout));
  if (WIFSIGNALED(status)) die_as(MSG_HOOK_ERROR, "error running %s hook %s: killed by signal %d%s%s", kind, path, WTERMSIG(status), sep, output);
  if (WEXITSTATUS(status) != 0) die_as(MSG_HOOK_ERROR, "error running %s hook %s: exit status %d%s%s", kind, path, WEXITSTATUS(status), sep, output);
}

// Resolve argv[0] as execvp would, in the container's filesystem, so a missing binary fails `create`.
void op_lookup_exec(Args a) {
  const char* name = a.s();
  const char* path_env = a.s();
  struct stat st;
  if (strchr(name, '/')) {
    if (stat(name, &st) != 0) die("exec: \"%s\": stat %s: %s", name, name, err());
    if (S_ISDIR(st.st_mode)) die("exec: \"%s\": is a directory", name);
    snprintf(g.exec_path, sizeof(g.exec_path), "%s", name);
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
      snprintf(g.exec_path, sizeof(g.exec_path), "%s", cand);
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
  const char* path = g.exec_path[0] ? g.exec_path : argv[0];
  execve(path, argv, envp);
  die("exec %s: %s", path, err());
}

void op_ready() {
  // create is done: tell tsrun, and wait until it has recorded the container (its ack). Until then the
  // init dies with tsrun (parent-death signal, or end of file here), so a create killed at any moment never
  // leaves an init running that the state does not show. Then wait for `tsrun start` to connect.
  // The set-up handles go first.
  close_setup_handles();
  if (!send_frame(g.sync, MSG_READY, nullptr, 0)) die("report ready to tsrun: %s", err());
  await_ack(g.sync, "ready");
  if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) != 0) die("clear parent-death signal: %s", err());
  // ...and tell tsrun it may exit now: before this it must not, or its exit would still kill this process.
  if (!send_frame(g.sync, MSG_ACK, nullptr, 0)) die("confirm ready to tsrun: %s", err());
  close(g.sync);
  g.sync = -1;
  g.report = -1;
  if (g.listen < 0) die("wait for start: no start socket in the plan");
  for (;;) {
    int c = accept4(g.listen, nullptr, nullptr, SOCK_CLOEXEC);
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
    free(g.state);
    g.state = payload;
    g.state_len = len;
    g.report = c;  // errors from here on go to `tsrun start`
    break;
  }
  close(g.listen);
  g.listen = -1;
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
  g.listen = s;
  close(dirfd);
}

// ---------------------------------------------------------------------------------------------------------
// Signals and the --init reaper

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
  if (g.report >= 0) close(g.report);
  g.report = -1;
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

// ---------------------------------------------------------------------------------------------------------
// Small steps

void op_sync_hooks() {
  if (!send_frame(g.sync, MSG_HOOKS_REQ, nullptr, 0)) die("ask tsrun to run hooks: %s", err());
  await_ack(g.sync, "prestart/createRuntime hooks");
}

void op_cloexec_from(Args a) {
  if (syscall(SYS_close_range, static_cast<unsigned>(a.i()), ~0U, CLOSE_RANGE_CLOEXEC) != 0) die("mark fds close-on-exec: %s", err());
}

void op_clear_nonblock(Args a) {
  int fd = static_cast<int>(a.i());
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

void op_hostname(Args a) {
  const char* name = a.s();
  if (sethostname(name, strlen(name)) != 0) die("set hostname %s: %s", name, err());
}

void op_domainname(Args a) {
  const char* name = a.s();
  if (setdomainname(name, strlen(name)) != 0) die("set domainname %s: %s", name, err());
}
