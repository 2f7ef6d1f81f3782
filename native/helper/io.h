// Small I/O pieces shared by tsrun-init's modes: whole reads and writes and framed messages
// (u32 length | u32 type | payload). fds over unix sockets: native/common/scm.h.
#pragma once
#include <stddef.h>
#include <stdint.h>

bool write_full(int fd, const void* buf, size_t len);
bool read_full(int fd, void* buf, size_t len);
bool send_frame(int fd, uint32_t type, const void* payload, uint32_t len);
// Reads one frame; the payload is malloc'd and NUL-terminated (the caller frees it).
bool recv_frame(int fd, uint32_t* type, char** payload, uint32_t* len);
