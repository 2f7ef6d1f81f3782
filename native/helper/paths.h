// Paths inside the container's root filesystem, resolved by fd and never outside it.
//
// Every entry point takes the root as an fd and a path relative to it (a leading "/" is fine), and returns
// an O_PATH | O_CLOEXEC fd of what it found or made, or -1 with errno set. Symlinks met on the way resolve
// as if the root were "/" (openat2 RESOLVE_IN_ROOT); magic links (/proc/<pid>/fd/...) are refused. The
// "_real" entry points never follow the last component: a symlink there is ELOOP, whatever it points to.
// Callers act on the returned fd from then on (mount onto it, stat it), never on the path again.
#pragma once
#include <stddef.h>

// What `rel` names, following symlinks inside the root.
int root_open(int root, const char* rel);
// The last component itself: ELOOP if it is a symlink.
int root_open_real(int root, const char* rel);
// A directory; missing components are created (mkdir -p, dangling symlinks followed inside the root).
// ENOTDIR if it exists and is not a directory.
int root_make_dir(int root, const char* rel);
// As root_make_dir, but the last component must be a directory of its own, not a symlink to one (ELOOP).
int root_make_real_dir(int root, const char* rel);
// A file: the parents are made as directories, the last component an empty file (0644) if missing.
int root_make_file(int root, const char* rel);
// As root_make_file, but the last component may not be a symlink (ELOOP); it is created with O_NOFOLLOW.
int root_make_real_file(int root, const char* rel);
// The parent directory of `rel`, made if missing (as root_make_dir); its last component is copied to
// name (at most `size` bytes, ENAMETOOLONG beyond). "", "." and ".." are not names (EINVAL).
int root_make_parent(int root, const char* rel, char* name, size_t size);

// A file beneath a procfs root the helper holds (see OP_OPEN_PROC): no symlink, no ".." above it, no other
// mount on the way. Opened with `flags` (O_CLOEXEC is added).
int proc_open(int proc, const char* rel, int flags);
