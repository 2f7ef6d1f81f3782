// Small I/O pieces shared by tsrun-init's modes: whole reads and writes, framed messages
// (u32 length | u32 type | payload), and fds over unix sockets.
#pragma once
#include <stddef.h>
#include <stdint.h>

bool write_full(int fd, const void* buf, size_t len);
bool read_full(int fd, void* buf, size_t len);
bool send_frame(int fd, uint32_t type, const void* payload, uint32_t len);
// Reads one frame; the payload is malloc'd and NUL-terminated (the caller frees it).
bool recv_frame(int fd, uint32_t* type, char** payload, uint32_t* len);
// SCM_RIGHTS: sends all of `data` (at least one byte) with `n` fds attached to its first chunk.
bool send_fds(int sock, const int* fds, int n, const void* data, size_t len);
// Receives one message: body into buf (returns its length, 0 at end of stream, -1 on error) and up to
// *nfds fds (set to the number received, close-on-exec).
long recv_fds(int sock, void* buf, size_t len, int* fds, int* nfds);
