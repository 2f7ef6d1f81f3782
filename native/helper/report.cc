// Reporting: every failure becomes one line to tsrun (MSG_ERROR, or MSG_HOOK_ERROR for a failed hook) on
// the connection that is current (the sync socket during set-up, the start connection after it), and the
// process exits. Debug lines go to the sync socket with --debug.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"
#include "io.h"

HelperState g;

namespace {

[[noreturn]] void vdie(uint32_t type, const char* fmt, va_list ap) {
  char msg[2048];
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  if (n < 0) n = 0;
  if (n >= static_cast<int>(sizeof(msg))) n = sizeof(msg) - 1;
  if (!send_frame(g.report, type, msg, static_cast<uint32_t>(n))) {
    // Nobody to tell (tsrun went away): stderr is the container's, but it is the only place left.
    dprintf(2, "tsrun-init: %s\n", msg);
  }
  _exit(1);
}

}  // namespace

void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdie(MSG_ERROR, fmt, ap);
}

void die_as(uint32_t type, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdie(type, fmt, ap);
}

void debugf(const char* fmt, ...) {
  if (!g.debug || g.sync < 0) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n >= static_cast<int>(sizeof(msg))) n = sizeof(msg) - 1;
  send_frame(g.sync, MSG_LOG, msg, static_cast<uint32_t>(n));
}

const char* err() { return strerror(errno); }
