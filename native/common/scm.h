// fds over unix sockets (SCM_RIGHTS), shared by the addon and tsrun-init: plain C++, no exceptions, no
// Node; every call returns 0 / a count, or a negative errno value (-EINTR never: it is retried).
#pragma once
#include <stddef.h>
#include <sys/types.h>

// At most this many fds in one message.
constexpr int kScmMaxFds = 16;

// Sends all of `data` (an empty message is sent as one zero byte) with `nfds` fds attached to its first
// chunk, through sendmsg(2) only (MSG_NOSIGNAL). 0, or -errno (-EINVAL for more than kScmMaxFds fds).
int scm_send(int sock, const void* data, size_t len, const int* fds, int nfds);

// Receives one recvmsg(2)'s worth into buf: returns its length (0 at end of stream) or -errno. Up to
// *nfds fds are stored in fds (close-on-exec); *nfds is set to the number stored, any beyond are closed.
ssize_t scm_recv(int sock, void* buf, size_t len, int* fds, int* nfds);
