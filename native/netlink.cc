// rtnetlink for linux.netDevices (src/runtime/netdev.ts): a NETLINK_ROUTE socket, made in the current network
// namespace or in another one, and one request/answer exchange on it. The messages are built and read in
// TypeScript; this file only opens the socket, sends the bytes and collects the answers.
//
// Every failure throws an Error whose message names the step, with `code` set to the errno name.
#include "netlink.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

Napi::Error nl_error(Napi::Env env, const std::string& step, int e) {
  Napi::Error err = Napi::Error::New(env, step + ": " + strerror(e));
  const char* name = strerrorname_np(e);
  err.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  err.Set("errno", Napi::Number::New(env, e));
  return err;
}

int int_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

// Binds a new socket, with a receive timeout: an answer that never comes is an error, not a hang.
void bind_socket(Napi::Env env, int fd) {
  struct timeval tv = {10, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    int e = errno;
    close(fd);
    throw nl_error(env, "netlink SO_RCVTIMEO", e);
  }
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof(sa));
  sa.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof(sa)) != 0) {
    int e = errno;
    close(fd);
    throw nl_error(env, "netlink bind", e);
  }
}

int route_socket(Napi::Env env) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) throw nl_error(env, "netlink socket", errno);
  bind_socket(env, fd);
  return fd;
}

// netlinkSocket(netnsFd: number) -> fd: a NETLINK_ROUTE socket (close-on-exec) of the network namespace of
// netnsFd (-1: the current one). A socket stays in the namespace it was made in, so this thread joins the
// namespace only for socket(2) and comes back at once; a thread that cannot come back cannot go on.
Napi::Value NetlinkSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int nsfd = int_arg(info, 0, "netnsFd");
  if (nsfd < 0) return Napi::Number::New(env, route_socket(env));
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) throw nl_error(env, "open /proc/thread-self/ns/net", errno);
  if (setns(nsfd, CLONE_NEWNET) != 0) {
    int e = errno;
    close(home);
    throw nl_error(env, "setns into the container's network namespace", e);
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  int e = errno;
  if (setns(home, CLONE_NEWNET) != 0) {
    fprintf(stderr, "tsrun: cannot return to its own network namespace: %s\n", strerror(errno));
    abort();
  }
  close(home);
  if (fd < 0) throw nl_error(env, "netlink socket in the container's network namespace", e);
  bind_socket(env, fd);
  return Napi::Number::New(env, fd);
}

// netlinkTalk(fd, request: Buffer) -> Buffer[]: sends one request (its nlmsghdr's sequence number set by the
// caller) and returns every answer message with that sequence number, up to and including the NLMSG_DONE
// of a dump or the NLMSG_ERROR (an error or the ack) that ends the request. Reading the answers (an
// nlmsgerr's error among them) is the caller's.
Napi::Value NetlinkTalk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = int_arg(info, 0, "fd");
  if (info.Length() < 2 || !info[1].IsBuffer()) throw Napi::TypeError::New(env, "netlinkTalk(fd, request)");
  Napi::Buffer<uint8_t> req = info[1].As<Napi::Buffer<uint8_t>>();
  if (req.Length() < sizeof(struct nlmsghdr)) throw Napi::TypeError::New(env, "netlinkTalk: request shorter than a netlink header");
  struct nlmsghdr head;
  memcpy(&head, req.Data(), sizeof(head));
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(fd, req.Data(), req.Length(), 0, reinterpret_cast<struct sockaddr*>(&kernel), sizeof(kernel));
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw nl_error(env, "netlink send", errno);
  if (static_cast<size_t>(n) != req.Length()) throw nl_error(env, "netlink send (short)", EIO);
  Napi::Array out = Napi::Array::New(env);
  uint32_t count = 0;
  std::vector<char> buf(1 << 16);
  for (;;) {
    do {
      n = recv(fd, buf.data(), buf.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw nl_error(env, "netlink receive", errno);
    if (n == 0) throw nl_error(env, "netlink receive (end of stream)", EIO);
    size_t left = static_cast<size_t>(n);
    for (struct nlmsghdr* h = reinterpret_cast<struct nlmsghdr*>(buf.data()); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != head.nlmsg_seq) continue;  // not ours (a stale answer)
      out.Set(count++, Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(h), h->nlmsg_len));
      if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) return out;
    }
  }
}

}  // namespace

void RegisterNetlink(Napi::Env env, Napi::Object exports) {
  exports.Set("netlinkSocket", Napi::Function::New(env, NetlinkSocket));
  exports.Set("netlinkTalk", Napi::Function::New(env, NetlinkTalk));
}
