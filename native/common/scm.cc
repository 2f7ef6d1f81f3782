#include "scm.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int scm_send(int sock, const void* data, size_t len, const int* fds, int nfds) {
  if (nfds < 0 || nfds > kScmMaxFds) return -EINVAL;
  char zero = 0;
  const char* p = len ? static_cast<const char*>(data) : &zero;
  size_t left = len ? len : 1;
  bool first = true;
  while (left > 0) {
    struct iovec iov = {const_cast<char*>(p), left};
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kScmMaxFds)];
    if (first && nfds > 0) {
      memset(cbuf, 0, sizeof(cbuf));
      msg.msg_control = cbuf;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
      struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
      memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t r = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    first = false;
    p += r;
    left -= static_cast<size_t>(r);
  }
  return 0;
}

ssize_t scm_recv(int sock, void* buf, size_t len, int* fds, int* nfds) {
  struct iovec iov = {buf, len};
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kScmMaxFds)];
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);
  ssize_t r;
  do {
    r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (r < 0 && errno == EINTR);
  int max = *nfds, got = 0;
  *nfds = 0;
  if (r < 0) return -errno;
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
  *nfds = got;
  return r;
}
