// tsrun's Node-API addon: the few kernel calls Node cannot make itself. Everything that happens inside
// a container is done by tsrun-init (native/helper); this file only gives the TypeScript side what it
// needs to start that helper safely and to talk to processes and sockets.
//
// Every failure throws an Error whose message names the step and the path, with `code` set to the errno
// name (e.g. "ESRCH").
#include <errno.h>
#include <fcntl.h>
#include <napi.h>
#include <uv.h>
#include <signal.h>
#include <stddef.h>
#include <spawn.h>
#include <string.h>
#include <sys/file.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "bpf.h"
#include "netlink.h"
#include "common/scm.h"

#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 2U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

extern char** environ;

namespace {

const char* errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case ECHILD: return "ECHILD";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENOSPC: return "ENOSPC";
    case EPIPE: return "EPIPE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EADDRINUSE: return "EADDRINUSE";
    case ECONNRESET: return "ECONNRESET";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOTTY: return "ENOTTY";
    case ELOOP: return "ELOOP";
    case EBUSY: return "EBUSY";
    case ENODEV: return "ENODEV";
    case ENOTBLK: return "ENOTBLK";
    default: return "EUNKNOWN";
  }
}

Napi::Error sys_error(Napi::Env env, const std::string& step, int e) {
  Napi::Error err = Napi::Error::New(env, step + ": " + strerror(e));
  err.Set("code", Napi::String::New(env, errno_name(e)));
  err.Set("errno", Napi::Number::New(env, e));
  return err;
}

[[noreturn]] void throw_sys(Napi::Env env, const std::string& step, int e = errno) { throw sys_error(env, step, e); }

std::vector<std::string> string_array(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array of strings");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<std::string> out;
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value item = arr.Get(i);
    if (!item.IsString()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array of strings");
    out.push_back(item.As<Napi::String>().Utf8Value());
  }
  return out;
}

int int_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

std::vector<char*> cstrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(&s[0]);
  out.push_back(nullptr);
  return out;
}

// spawn(path, argv, env, fds): starts `path` with child fd i = fds[i] (-1: closed). Signals are reset to
// their defaults and the mask emptied in the child (Node ignores SIGPIPE and blocks some signals).
// Returns the pid. Synchronous (posix_spawn uses CLONE_VFORK: no copy of Node's address space).
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString()) throw Napi::TypeError::New(env, "spawn(path, argv, env, fds)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::vector<std::string> argv = string_array(info[1], "argv");
  std::vector<std::string> envv = string_array(info[2], "env");
  if (!info[3].IsArray()) throw Napi::TypeError::New(env, "fds must be an array of numbers");
  Napi::Array fdarr = info[3].As<Napi::Array>();
  std::vector<int> fds;
  for (uint32_t i = 0; i < fdarr.Length(); i++) fds.push_back(fdarr.Get(i).As<Napi::Number>().Int32Value());

  // Move every source out of the target range first, so dup2(src, i) never clobbers a later source.
  int floor = static_cast<int>(fds.size()) + 3;
  std::vector<int> temps(fds.size(), -1);
  auto cleanup = [&]() {
    for (int t : temps)
      if (t >= 0) close(t);
  };
  for (size_t i = 0; i < fds.size(); i++) {
    if (fds[i] < 0) continue;
    temps[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, floor);
    if (temps[i] < 0) {
      int e = errno;
      cleanup();
      throw_sys(env, "spawn " + path + ": duplicate fd " + std::to_string(fds[i]), e);
    }
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  for (size_t i = 0; i < fds.size(); i++) {
    if (temps[i] >= 0)
      posix_spawn_file_actions_adddup2(&fa, temps[i], static_cast<int>(i));
    else
      posix_spawn_file_actions_addclose(&fa, static_cast<int>(i));
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  auto cargv = cstrings(argv);
  auto cenv = cstrings(envv);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  cleanup();
  if (rc != 0) throw_sys(env, "spawn " + path, rc);
  return Napi::Number::New(env, pid);
}

// sealedCopy(path): a sealed, close-on-exec memfd holding a copy of the file, to be executed through
// /proc/self/fd/N. The running helper is then never a host file a container could open for writing.
Napi::Value SealedCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int src = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) throw_sys(env, "open helper " + path);
  struct stat st;
  if (fstat(src, &st) != 0) {
    int e = errno;
    close(src);
    throw_sys(env, "stat helper " + path, e);
  }
  int mfd = static_cast<int>(syscall(SYS_memfd_create, "tsrun-init", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (mfd < 0) {
    int e = errno;
    close(src);
    throw_sys(env, "memfd_create for helper", e);
  }
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = sendfile(mfd, src, &off, static_cast<size_t>(st.st_size - off));
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      close(src);
      close(mfd);
      throw_sys(env, "copy helper " + path + " into memfd", e);
    }
  }
  close(src);
  if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
    int e = errno;
    close(mfd);
    throw_sys(env, "seal helper memfd", e);
  }
  return Napi::Number::New(env, mfd);
}

// socketpair(seqpacket?): [a, b], a connected AF_UNIX pair (stream, or seqpacket when asked), both
// close-on-exec and blocking.
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  int type = info.Length() > 0 && info[0].ToBoolean() ? SOCK_SEQPACKET : SOCK_STREAM;
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) throw_sys(env, "socketpair");
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, sv[0]);
  out.Set(1u, sv[1]);
  return out;
}

// pipe(): [read end, write end], close-on-exec (a real pipe where a socket will not do: /dev/stdout of a
// process can be reopened through /proc only when it is a pipe or a file).
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw_sys(env, "pipe2");
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, fds[0]);
  out.Set(1u, fds[1]);
  return out;
}

// eventfd(): a non-blocking, close-on-exec eventfd (counter 0), as cgroup v1's event_control wants one.
Napi::Value EventFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw_sys(env, "eventfd");
  return Napi::Number::New(env, fd);
}

// The address of a unix socket at `path`. Paths longer than sun_path are reached through an O_PATH fd of
// their directory (*dirfd, for the caller to close after the call); with `abstract`, a path starting with
// "@" names a socket in the abstract namespace (as Go's net package and systemd read NOTIFY_SOCKET).
socklen_t unix_address(Napi::Env env, const std::string& path, const std::string& step, struct sockaddr_un* addr, int* dirfd, bool abstract = false) {
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  *dirfd = -1;
  if (abstract && !path.empty() && path[0] == '@') {
    if (path.size() > sizeof(addr->sun_path)) throw_sys(env, step + ": abstract socket name", ENAMETOOLONG);
    memcpy(addr->sun_path + 1, path.c_str() + 1, path.size() - 1);  // sun_path[0] stays 0
    return static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());
  }
  if (path.size() < sizeof(addr->sun_path)) {
    memcpy(addr->sun_path, path.c_str(), path.size());
    return sizeof(*addr);
  }
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  *dirfd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (*dirfd < 0) throw_sys(env, step + ": open directory");
  int n = snprintf(addr->sun_path, sizeof(addr->sun_path), "/proc/self/fd/%d/%s", *dirfd, name.c_str());
  if (n < 0 || static_cast<size_t>(n) >= sizeof(addr->sun_path)) {
    close(*dirfd);
    *dirfd = -1;
    throw_sys(env, step, ENAMETOOLONG);
  }
  return sizeof(*addr);
}

// connectUnix(path, seqpacket?): a blocking, close-on-exec socket connected to `path`. Paths longer than
// sun_path are reached through an O_PATH fd of their directory.
Napi::Value ConnectUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int s = socket(AF_UNIX, (info.Length() > 1 && info[1].ToBoolean() ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (s < 0) throw_sys(env, "socket for " + path);
  struct sockaddr_un addr;
  int dirfd;
  socklen_t len;
  try {
    len = unix_address(env, path, "connect to " + path, &addr, &dirfd);
  } catch (...) {
    close(s);
    throw;
  }
  int rc;
  do {
    rc = connect(s, reinterpret_cast<struct sockaddr*>(&addr), len);
  } while (rc != 0 && errno == EINTR);
  int e = errno;
  if (dirfd >= 0) close(dirfd);
  if (rc != 0) {
    close(s);
    throw_sys(env, "connect to " + path, e);
  }
  return Napi::Number::New(env, s);
}

// bindUnixgram(path) / connectUnixgram(path): a non-blocking, close-on-exec datagram socket bound to `path`
// (the caller makes sure nothing is there), or connected to `path` ("@name": an abstract socket).
Napi::Value UnixgramSocket(const Napi::CallbackInfo& info, bool bind_it) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, bind_it ? "bindUnixgram(path: string)" : "connectUnixgram(path: string)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string step = (bind_it ? "bind datagram socket " : "connect datagram socket to ") + path;
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) throw_sys(env, step + ": socket");
  struct sockaddr_un addr;
  int dirfd;
  socklen_t len;
  try {
    len = unix_address(env, path, step, &addr, &dirfd, !bind_it);
  } catch (...) {
    close(s);
    throw;
  }
  int rc;
  do {
    rc = bind_it ? bind(s, reinterpret_cast<struct sockaddr*>(&addr), len) : connect(s, reinterpret_cast<struct sockaddr*>(&addr), len);
  } while (rc != 0 && errno == EINTR);
  int e = errno;
  if (dirfd >= 0) close(dirfd);
  if (rc != 0) {
    close(s);
    throw_sys(env, step, e);
  }
  return Napi::Number::New(env, s);
}

Napi::Value BindUnixgram(const Napi::CallbackInfo& info) { return UnixgramSocket(info, true); }
Napi::Value ConnectUnixgram(const Napi::CallbackInfo& info) { return UnixgramSocket(info, false); }

// openPath(path): an O_PATH, O_NOFOLLOW, close-on-exec fd of `path` itself (a final symlink is opened as
// the symlink, never followed). The caller checks what it is (fstat) before using it.
Napi::Value OpenPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "openPath(path: string)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd;
  do {
    fd = open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_sys(env, "open " + path);
  return Napi::Number::New(env, fd);
}

// connectUnixAt(fd, seqpacket?): a blocking, close-on-exec socket connected to the socket inode an O_PATH
// fd refers to, through /proc/self/fd/N: the path is not looked up again, so it cannot be swapped.
Napi::Value ConnectUnixAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = int_arg(info, 0, "fd");
  std::string via = "/proc/self/fd/" + std::to_string(fd);
  int s = socket(AF_UNIX, (info.Length() > 1 && info[1].ToBoolean() ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (s < 0) throw_sys(env, "socket for " + via);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, via.c_str(), via.size());
  int rc;
  do {
    rc = connect(s, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int e = errno;
    close(s);
    throw_sys(env, "connect to " + via, e);
  }
  return Napi::Number::New(env, s);
}

// fds over unix sockets: native/common/scm.cc (shared with tsrun-init), its errno turned into an Error here.

std::vector<int> fd_array(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array of fds");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<int> fds;
  for (uint32_t i = 0; i < arr.Length(); i++) fds.push_back(arr.Get(i).As<Napi::Number>().Int32Value());
  if (fds.size() > static_cast<size_t>(kScmMaxFds)) throw Napi::RangeError::New(v.Env(), std::string(what) + ": at most 16 fds");
  return fds;
}

// sendFds(sock, data, fds): `data` with the fds attached (SCM_RIGHTS).
Napi::Value SendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock = int_arg(info, 0, "sock");
  if (!info[1].IsBuffer() || !info[2].IsArray()) throw Napi::TypeError::New(env, "sendFds(sock, data: Buffer, fds: number[])");
  Napi::Buffer<char> data = info[1].As<Napi::Buffer<char>>();
  std::vector<int> fds = fd_array(info[2], "sendFds");
  int rc = scm_send(sock, data.Data(), data.Length(), fds.data(), static_cast<int>(fds.size()));
  if (rc != 0) throw_sys(env, "send message with fds", -rc);
  return env.Undefined();
}

// sendFd(sock, fd, name) / recvFd(sock): one fd (SCM_RIGHTS). recvFd returns -1 at end of stream.
Napi::Value SendFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock = int_arg(info, 0, "sock"), fd = int_arg(info, 1, "fd");
  std::string name = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : std::string("fd");
  int rc = scm_send(sock, name.data(), name.size(), &fd, 1);
  if (rc != 0) throw_sys(env, "send fd over socket", -rc);
  return env.Undefined();
}

Napi::Value RecvFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock = int_arg(info, 0, "sock");
  char name[4096];
  int fds[kScmMaxFds];
  int nfds = kScmMaxFds;
  ssize_t n = scm_recv(sock, name, sizeof(name), fds, &nfds);
  if (n < 0) throw_sys(env, "receive fd from socket", static_cast<int>(-n));
  for (int k = 1; k < nfds; k++) close(fds[k]);
  if (nfds > 0) return Napi::Number::New(env, fds[0]);
  if (n == 0) return Napi::Number::New(env, -1);
  throw Napi::Error::New(env, "receive fd from socket: message carried no fd");
}

// recvMsg(sock, length): one recvmsg(2) of at most `length` bytes: { data, fds } (data empty at end of
// stream; fds close-on-exec).
Napi::Value RecvMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock = int_arg(info, 0, "sock");
  int length = int_arg(info, 1, "length");
  if (length <= 0) throw Napi::RangeError::New(env, "recvMsg: length must be positive");
  std::vector<char> buf(static_cast<size_t>(length));
  int fds[kScmMaxFds];
  int nfds = kScmMaxFds;
  ssize_t n = scm_recv(sock, buf.data(), buf.size(), fds, &nfds);
  if (n < 0) throw_sys(env, "receive message", static_cast<int>(-n));
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(n)));
  Napi::Array arr = Napi::Array::New(env, static_cast<size_t>(nfds));
  for (int k = 0; k < nfds; k++) arr.Set(static_cast<uint32_t>(k), fds[k]);
  out.Set("fds", arr);
  return out;
}

// flock(fd, exclusive, wait): false when `wait` is false and the lock is held elsewhere.
Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = int_arg(info, 0, "fd");
  bool exclusive = info[1].ToBoolean();
  bool wait = info[2].ToBoolean();
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  int rc;
  do {
    rc = flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    throw_sys(env, "lock fd " + std::to_string(fd));
  }
  return Napi::Boolean::New(env, true);
}

Napi::Object wait_result(Napi::Env env, pid_t pid, int status) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", pid);
  if (pid > 0) {
    if (WIFEXITED(status)) {
      o.Set("code", WEXITSTATUS(status));
      o.Set("signal", 0);
    } else if (WIFSIGNALED(status)) {
      o.Set("code", 128 + WTERMSIG(status));
      o.Set("signal", WTERMSIG(status));
    }
  }
  return o;
}

// waitpid(pid, nohang): {pid, code, signal}; pid 0 when nohang and still running.
Napi::Value WaitPid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pid = int_arg(info, 0, "pid");
  bool nohang = info.Length() > 1 && info[1].ToBoolean();
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, nohang ? WNOHANG : 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) throw_sys(env, "wait for pid " + std::to_string(pid));
  return wait_result(env, r, status);
}

// setChildSubreaper(on): prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are re-parented to this
// process (not to the init of the pid namespace), which must reap them.
Napi::Value SetChildSubreaper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  unsigned long on = info.Length() > 0 && info[0].ToBoolean() ? 1 : 0;
  if (prctl(PR_SET_CHILD_SUBREAPER, on, 0, 0, 0) != 0) throw_sys(env, "prctl PR_SET_CHILD_SUBREAPER");
  return env.Undefined();
}

// isChildSubreaper(): prctl(PR_GET_CHILD_SUBREAPER).
Napi::Value IsChildSubreaper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int on = 0;
  if (prctl(PR_GET_CHILD_SUBREAPER, reinterpret_cast<unsigned long>(&on), 0, 0, 0) != 0) throw_sys(env, "prctl PR_GET_CHILD_SUBREAPER");
  return Napi::Boolean::New(env, on != 0);
}

// zombieChild(): the pid of a child that has exited and is not reaped yet, left unreaped (waitid P_ALL,
// WEXITED|WNOHANG|WNOWAIT, any clone kind); 0 when there is none (or no child at all).
Napi::Value ZombieChild(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int rc;
  do {
    rc = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == ECHILD) return Napi::Number::New(env, 0);
    throw_sys(env, "waitid for an exited child");
  }
  return Napi::Number::New(env, si.si_pid);
}

// waitAsync(pid): Promise of {pid, code, signal}, waiting on a libuv worker thread.
class WaitWorker : public Napi::AsyncWorker {
 public:
  WaitWorker(Napi::Env env, pid_t pid) : Napi::AsyncWorker(env), pid_(pid), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    do {
      r_ = waitpid(pid_, &status_, 0);
    } while (r_ < 0 && errno == EINTR);
    err_ = r_ < 0 ? errno : 0;
  }
  void OnOK() override {
    if (err_) {
      deferred_.Reject(sys_error(Env(), "wait for pid " + std::to_string(pid_), err_).Value());
    } else {
      deferred_.Resolve(wait_result(Env(), r_, status_));
    }
  }

 private:
  pid_t pid_;
  pid_t r_ = -1;
  int status_ = 0;
  int err_ = 0;
  Napi::Promise::Deferred deferred_;
};

Napi::Value WaitAsync(const Napi::CallbackInfo& info) {
  auto* w = new WaitWorker(info.Env(), int_arg(info, 0, "pid"));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// readable(fd, timeoutMs): Promise<boolean> — true once `fd` is readable or its peer has hung up (a pidfd:
// once the process has exited), false after timeoutMs (negative: no timeout). Watched on the event loop
// itself (uv_poll, uv_timer): no thread is held while waiting, so any number of waits can be pending.
struct ReadableWait {
  uv_poll_t poll;
  uv_timer_t timer;
  napi_env env;
  napi_deferred deferred;
  int handles = 0;
  bool settled = false;
};

void readable_closed(uv_handle_t* h) {
  auto* w = static_cast<ReadableWait*>(h->data);
  if (--w->handles == 0) delete w;
}

void readable_settle(ReadableWait* w, bool ready, int err) {
  if (w->settled) return;
  w->settled = true;
  uv_poll_stop(&w->poll);
  uv_timer_stop(&w->timer);
  napi_handle_scope scope;
  napi_open_handle_scope(w->env, &scope);
  napi_value v;
  if (err != 0) {
    napi_value msg, code;
    std::string text = std::string("wait for fd: ") + uv_strerror(err);
    napi_create_string_utf8(w->env, text.c_str(), text.size(), &msg);
    napi_create_error(w->env, nullptr, msg, &v);
    napi_create_string_utf8(w->env, uv_err_name(err), NAPI_AUTO_LENGTH, &code);
    napi_set_named_property(w->env, v, "code", code);
    napi_reject_deferred(w->env, w->deferred, v);
  } else {
    napi_get_boolean(w->env, ready, &v);
    napi_resolve_deferred(w->env, w->deferred, v);
  }
  napi_close_handle_scope(w->env, scope);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), readable_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->timer), readable_closed);
}

Napi::Value Readable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = int_arg(info, 0, "fd");
  int64_t timeout = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int64Value() : -1;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) throw Napi::Error::New(env, "wait for fd: no event loop");
  auto* w = new ReadableWait();
  w->env = env;
  napi_value promise;
  if (napi_create_promise(env, &w->deferred, &promise) != napi_ok) {
    delete w;
    throw Napi::Error::New(env, "wait for fd: cannot create a promise");
  }
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    napi_value msg, err;
    std::string text = "wait for fd " + std::to_string(fd) + ": " + uv_strerror(rc);
    napi_create_string_utf8(env, text.c_str(), text.size(), &msg);
    napi_create_error(env, nullptr, msg, &err);
    napi_reject_deferred(env, w->deferred, err);
    delete w;
    return Napi::Value(env, promise);
  }
  w->poll.data = w;
  w->handles++;
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  w->handles++;
  uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, [](uv_poll_t* h, int status, int) {
    // an error on the fd (other than a closed fd) shows up in the read that follows
    readable_settle(static_cast<ReadableWait*>(h->data), true, status == UV_EBADF ? status : 0);
  });
  uv_update_time(loop);  // the loop's cached time may be old: the timeout counts from now
  if (timeout >= 0) uv_timer_start(&w->timer, [](uv_timer_t* t) { readable_settle(static_cast<ReadableWait*>(t->data), false, 0); }, static_cast<uint64_t>(timeout), 0);
  return Napi::Value(env, promise);
}

// pidfdOpen(pid) / pidfdSendSignal(pidfd, sig): signals that cannot hit a recycled pid.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pid = int_arg(info, 0, "pid");
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) throw_sys(env, "pidfd_open " + std::to_string(pid));
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    int e = errno;
    close(fd);
    throw_sys(env, "pidfd cloexec", e);
  }
  return Napi::Number::New(env, fd);
}

Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = int_arg(info, 0, "pidfd"), sig = int_arg(info, 1, "signal");
  if (syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0) != 0) throw_sys(env, "send signal " + std::to_string(sig));
  return env.Undefined();
}

// Terminal sizes: getWinsize(fd) -> [rows, cols] or null; setWinsize(fd, rows, cols).
Napi::Value GetWinsize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct winsize ws;
  if (ioctl(int_arg(info, 0, "fd"), TIOCGWINSZ, &ws) != 0) return env.Null();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, ws.ws_row);
  out.Set(1u, ws.ws_col);
  return out;
}

Napi::Value SetWinsize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct winsize ws;
  memset(&ws, 0, sizeof(ws));
  ws.ws_row = static_cast<unsigned short>(int_arg(info, 1, "rows"));
  ws.ws_col = static_cast<unsigned short>(int_arg(info, 2, "cols"));
  if (ioctl(int_arg(info, 0, "fd"), TIOCSWINSZ, &ws) != 0) throw_sys(env, "set terminal size");
  return env.Undefined();
}

// mount(source, target, fstype, flags, data): mount(2) as given (an empty source, fstype or data is passed as
// NULL, as the kernel expects for a remount or a propagation change). The caller builds flags and data.
Napi::Value Mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsString() || !info[1].IsString() || !info[2].IsString() || !info[3].IsNumber() || !info[4].IsString())
    throw Napi::TypeError::New(env, "mount(source: string, target: string, fstype: string, flags: number, data: string)");
  std::string source = info[0].As<Napi::String>().Utf8Value();
  std::string target = info[1].As<Napi::String>().Utf8Value();
  std::string fstype = info[2].As<Napi::String>().Utf8Value();
  unsigned long flags = static_cast<unsigned long>(info[3].As<Napi::Number>().Int64Value());
  std::string data = info[4].As<Napi::String>().Utf8Value();
  if (mount(source.empty() ? nullptr : source.c_str(), target.c_str(), fstype.empty() ? nullptr : fstype.c_str(), flags,
            data.empty() ? nullptr : data.c_str()) != 0)
    throw_sys(env, "mount " + (source.empty() ? std::string() : source + " ") + "on " + target);
  return env.Undefined();
}

// umount2(target, flags): umount2(2), retried on EINTR.
Napi::Value Umount2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "umount2(target: string, flags: number)");
  std::string target = info[0].As<Napi::String>().Utf8Value();
  int flags = int_arg(info, 1, "flags");
  int r;
  do {
    r = umount2(target.c_str(), flags);
  } while (r != 0 && errno == EINTR);
  if (r != 0) throw_sys(env, "unmount " + target);
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, Spawn));
  exports.Set("sealedCopy", Napi::Function::New(env, SealedCopy));
  exports.Set("socketpair", Napi::Function::New(env, SocketPair));
  exports.Set("pipe", Napi::Function::New(env, Pipe));
  exports.Set("eventfd", Napi::Function::New(env, EventFd));
  exports.Set("connectUnix", Napi::Function::New(env, ConnectUnix));
  exports.Set("bindUnixgram", Napi::Function::New(env, BindUnixgram));
  exports.Set("connectUnixgram", Napi::Function::New(env, ConnectUnixgram));
  exports.Set("openPath", Napi::Function::New(env, OpenPath));
  exports.Set("connectUnixAt", Napi::Function::New(env, ConnectUnixAt));
  exports.Set("sendFd", Napi::Function::New(env, SendFd));
  exports.Set("sendFds", Napi::Function::New(env, SendFds));
  exports.Set("recvFd", Napi::Function::New(env, RecvFd));
  exports.Set("recvMsg", Napi::Function::New(env, RecvMsg));
  exports.Set("flock", Napi::Function::New(env, Flock));
  exports.Set("waitpid", Napi::Function::New(env, WaitPid));
  exports.Set("waitAsync", Napi::Function::New(env, WaitAsync));
  exports.Set("setChildSubreaper", Napi::Function::New(env, SetChildSubreaper));
  exports.Set("isChildSubreaper", Napi::Function::New(env, IsChildSubreaper));
  exports.Set("zombieChild", Napi::Function::New(env, ZombieChild));
  exports.Set("readable", Napi::Function::New(env, Readable));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal));
  exports.Set("getWinsize", Napi::Function::New(env, GetWinsize));
  exports.Set("setWinsize", Napi::Function::New(env, SetWinsize));
  exports.Set("mount", Napi::Function::New(env, Mount));
  exports.Set("umount2", Napi::Function::New(env, Umount2));
  RegisterBpf(env, exports);
  RegisterNetlink(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(tsrun_native, Init)
