#include "io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool write_full(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool read_full(int fd, void* buf, size_t len) {
  char* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) {
      errno = EPIPE;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool send_frame(int fd, uint32_t type, const void* payload, uint32_t len) {
  if (fd < 0) return false;
  uint32_t head[2] = {4 + len, type};
  char buf[512];
  if (len <= sizeof(buf) - sizeof(head)) {  // one write, so messages never interleave
    memcpy(buf, head, sizeof(head));
    if (len) memcpy(buf + sizeof(head), payload, len);
    return write_full(fd, buf, sizeof(head) + len);
  }
  return write_full(fd, head, sizeof(head)) && write_full(fd, payload, len);
}

bool recv_frame(int fd, uint32_t* type, char** payload, uint32_t* len) {
  uint32_t head[2];
  if (!read_full(fd, head, sizeof(head))) return false;
  if (head[0] < 4 || head[0] > (64u << 20)) {
    errno = EPROTO;
    return false;
  }
  *type = head[1];
  *len = head[0] - 4;
  *payload = static_cast<char*>(malloc(*len + 1));
  if (!*payload) return false;
  if (!read_full(fd, *payload, *len)) {
    free(*payload);
    *payload = nullptr;
    return false;
  }
  (*payload)[*len] = 0;
  return true;
}

bool send_fds(int sock, const int* fds, int n, const void* data, size_t len) {
  if (n > 16) {
    errno = EINVAL;
    return false;
  }
  char dummy = 0;
  const char* p = len ? static_cast<const char*>(data) : &dummy;
  size_t left = len ? len : 1;
  bool first = true;
  // All of it, through sendmsg(2) only (the seccomp listener message is sent under the container's filter,
  // and tsrun refuses profiles that notify sendmsg); the fds go with the first chunk.
  while (left > 0) {
    struct iovec iov = {const_cast<char*>(p), left};
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    char cbuf[CMSG_SPACE(sizeof(int) * 16)];
    if (first && n > 0) {
      memset(cbuf, 0, sizeof(cbuf));
      msg.msg_control = cbuf;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
      struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * n);
      memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    }
    ssize_t r = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    first = false;
    p += r;
    left -= static_cast<size_t>(r);
  }
  return true;
}

long recv_fds(int sock, void* buf, size_t len, int* fds, int* nfds) {
  struct iovec iov = {buf, len};
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  char cbuf[CMSG_SPACE(sizeof(int) * 16)];
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);
  ssize_t r;
  do {
    r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (r < 0 && errno == EINTR);
  int max = *nfds, got = 0;
  if (r >= 0) {
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int count = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int k = 0; k < count; k++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
        if (got < max)
          fds[got++] = fd;
        else
          close(fd);
      }
    }
  }
  *nfds = got;
  return r;
}
