// tsrun_probe.node: the kernel probes of `tsrun check` (src/check/probe.ts), a module of its own so nothing
// else loads it. Each probe calls the syscall for real where that changes nothing on the host (an fd is opened
// and closed, a child is forked and reaped, a detached mount is made and dropped), else with arguments the
// kernel rejects after it has recognised the call (EBADF/EINVAL/EFAULT mean present, ENOSYS absent). Every
// probe returns 0 (works) or the errno of the step that failed; the caller decides what it means.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace {

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

// 0 when the call returned >= 0 (an fd returned is closed), else errno.
int result_fd(long r) {
  if (r < 0) return errno;
  close(static_cast<int>(r));
  return 0;
}

// A recognised call rejected for its arguments (or its caller's privilege): only ENOSYS means absent.
int present(long r) { return r < 0 && errno == ENOSYS ? ENOSYS : 0; }

// A call that must get as far as EXPECTED.
int present_if(long r, int expected) {
  if (r >= 0) return 0;
  return errno == expected ? 0 : errno;
}

// waitpid without EINTR; the child's exit status (or 128+signal), -errno when waitpid failed.
int reap(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -errno;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A plain fork (clone with SIGCHLD, no atfork handlers: node is multithreaded, the child runs only syscalls).
pid_t fork_raw() { return static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0)); }

int probe_syscall(const std::string& name) {
  if (name == "openat2") {
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return result_fd(syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how)));
  }
  if (name == "open_tree") return result_fd(syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLOEXEC));
  if (name == "move_mount") return present(syscall(SYS_move_mount, -1, "", -1, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
  if (name == "mount_setattr") return present(syscall(SYS_mount_setattr, -1, "", AT_EMPTY_PATH, nullptr, 0));
  if (name == "fsopen") return result_fd(syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC));
  if (name == "pidfd_open") return result_fd(syscall(SYS_pidfd_open, getpid(), 0));
  if (name == "pidfd_send_signal") {
    long fd = syscall(SYS_pidfd_open, getpid(), 0);
    if (fd < 0) return errno;
    long r = syscall(SYS_pidfd_send_signal, fd, 0, nullptr, 0);  // signal 0: a check, nothing is sent
    int e = r < 0 ? errno : 0;
    close(static_cast<int>(fd));
    return e;
  }
  if (name == "clone3") return present(syscall(SYS_clone3, nullptr, 0));  // size 0: EINVAL, no process
  if (name == "bpf") return present(syscall(SYS_bpf, -1, nullptr, 0));  // no such command: EINVAL
  if (name == "seccomp_notif") {
    struct seccomp_notif_sizes sizes;
    return syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0 ? errno : 0;
  }
  return ENOENT;
}

// SECCOMP_SET_MODE_FILTER with FLAGS and no program: a known flag set gets as far as copying the program
// (EFAULT), an unknown one is EINVAL. Nothing is ever installed (as libseccomp probes flags).
int probe_seccomp_flags(unsigned long flags) { return present_if(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, nullptr), EFAULT); }

// A child unshares FLAG (CLONE_NEW*) and exits with 0 or the errno.
int probe_namespace(int flag) {
  pid_t pid = fork_raw();
  if (pid < 0) return errno;
  if (pid == 0) _exit(syscall(SYS_unshare, flag) < 0 ? errno : 0);
  int r = reap(pid);
  return r < 0 ? -r : r;
}

// An idmapped mount of PATH: a child in a new user namespace (uid/gid 0 mapped to 100000) lends its namespace;
// PATH is cloned detached (open_tree), idmapped with mount_setattr, and dropped with its fd. step names what
// failed.
int probe_idmap(const std::string& path, std::string& step) {
  int ready[2];
  int hold[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return step = "pipe", errno;
  if (pipe2(hold, O_CLOEXEC) < 0) {
    int e = errno;
    close(ready[0]);
    close(ready[1]);
    return step = "pipe", e;
  }
  pid_t pid = fork_raw();
  if (pid < 0) {
    int e = errno;
    close(ready[0]), close(ready[1]), close(hold[0]), close(hold[1]);
    return step = "fork", e;
  }
  if (pid == 0) {
    close(ready[0]);
    close(hold[1]);
    char c = syscall(SYS_unshare, CLONE_NEWUSER) < 0 ? 1 : 0;
    if (write(ready[1], &c, 1) != 1) _exit(1);
    while (read(hold[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  close(ready[1]);
  close(hold[0]);
  int e = 0;
  char c = 1;
  ssize_t n;
  while ((n = read(ready[0], &c, 1)) < 0 && errno == EINTR) {
  }
  if (n != 1 || c != 0) {
    e = EPERM, step = "unshare user namespace";
  } else {
    char file[64];
    for (const char* map : {"uid_map", "gid_map"}) {
      snprintf(file, sizeof(file), "/proc/%d/%s", pid, map);
      int fd = open(file, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, "0 100000 65536", 14) != 14) e = errno, step = std::string("write ") + file;
      if (fd >= 0) close(fd);
      if (e) break;
    }
    int userns = -1;
    if (!e) {
      snprintf(file, sizeof(file), "/proc/%d/ns/user", pid);
      userns = open(file, O_RDONLY | O_CLOEXEC);
      if (userns < 0) e = errno, step = std::string("open ") + file;
    }
    if (!e) {
      long tree = syscall(SYS_open_tree, AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
      if (tree < 0) {
        e = errno, step = "open_tree " + path;
      } else {
        struct mount_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.attr_set = MOUNT_ATTR_IDMAP;
        attr.userns_fd = static_cast<uint64_t>(userns);
        if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) e = errno, step = "mount_setattr MOUNT_ATTR_IDMAP " + path;
        close(static_cast<int>(tree));
      }
    }
    if (userns >= 0) close(userns);
  }
  close(ready[0]);
  close(hold[1]);  // the child's read returns: it exits
  reap(pid);
  return e;
}

Napi::Value Syscall(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), probe_syscall(info[0].As<Napi::String>().Utf8Value()));
}

Napi::Value SeccompFlags(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), probe_seccomp_flags(static_cast<unsigned long>(info[0].As<Napi::Number>().Int64Value())));
}

Napi::Value Namespace(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), probe_namespace(info[0].As<Napi::Number>().Int32Value()));
}

Napi::Value Idmap(const Napi::CallbackInfo& info) {
  std::string step;
  int e = probe_idmap(info[0].As<Napi::String>().Utf8Value(), step);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("errno", e);
  o.Set("step", step);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("syscall", Napi::Function::New(env, Syscall));
  exports.Set("seccompFlags", Napi::Function::New(env, SeccompFlags));
  exports.Set("namespace", Napi::Function::New(env, Namespace));
  exports.Set("idmap", Napi::Function::New(env, Idmap));
  return exports;
}

}  // namespace

NODE_API_MODULE(tsrun_probe, Init)
