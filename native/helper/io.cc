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
