// The plan: decoding the bytes tsrun sent (bounds-checked), and the checks every op passes before it runs:
// its arguments against the signature protocol.h declares for it, and its place in the order of phases
// (host context, init before pivot_root, in the root, credentials set, started). A malformed plan is a bug
// in tsrun, but it is refused with one line naming the op, never executed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper.h"

namespace {

// Bounds-checked cursor over the plan bytes.
struct Reader {
  const unsigned char* p;
  const unsigned char* end;
  bool take(void* out, size_t n) {
    if (static_cast<size_t>(end - p) < n) return false;
    memcpy(out, p, n);
    p += n;
    return true;
  }
};

const TsrunPhaseSpec& phase_spec(unsigned bit) {
  for (const auto& p : kTsrunPhases)
    if (p.bit == bit) return p;
  return kTsrunPhases[0];
}

// Ops that act on the rootfs the plan named with OP_ROOTFS.
bool needs_rootfs(uint16_t code) {
  switch (code) {
    case OP_MOUNT:
    case OP_DEVICE:
    case OP_SYMLINK:
    case OP_MKDIR:
    case OP_PIVOT_ROOT:
    case OP_MOVE_ROOT:
    case OP_CHROOT:
      return true;
    default:
      return false;
  }
}

const char* kind_name(char kind) {
  switch (kind) {
    case 'i': return "an int";
    case 's': return "a string";
    case 'S': return "a list of strings";
    default: return "a list of ints";
  }
}

}  // namespace

Plan parse_plan(char* buf, uint32_t len) {
  Reader r{reinterpret_cast<unsigned char*>(buf), reinterpret_cast<unsigned char*>(buf) + len};
  Plan plan{nullptr, 0};
  if (!r.take(&plan.count, 4) || plan.count > 100000) die("plan: bad op count");
  plan.ops = static_cast<Op*>(calloc(plan.count, sizeof(Op)));
  if (!plan.ops) die("plan: out of memory");
  for (uint32_t k = 0; k < plan.count; k++) {
    Op& op = plan.ops[k];
    if (!r.take(&op.code, 2) || !r.take(&op.argc, 2)) die("plan: truncated op %u", k);
    op.args = static_cast<Arg*>(calloc(op.argc ? op.argc : 1, sizeof(Arg)));
    if (!op.args) die("plan: out of memory");
    for (uint16_t a = 0; a < op.argc; a++) {
      uint8_t tag;
      if (!r.take(&tag, 1)) die("plan: truncated arg %u of op %u", a, k);
      Arg& arg = op.args[a];
      if (tag == 0) {
        if (!r.take(&arg.i, 8)) die("plan: truncated int of op %u", k);
      } else if (tag == 1) {
        if (!r.take(&arg.len, 4) || static_cast<size_t>(r.end - r.p) < arg.len) die("plan: truncated string of op %u", k);
        char* s = static_cast<char*>(malloc(arg.len + 1));
        if (!s) die("plan: out of memory");
        memcpy(s, r.p, arg.len);
        s[arg.len] = 0;
        r.p += arg.len;
        arg.s = s;
        arg.is_str = true;
      } else {
        die("plan: bad arg tag %u in op %u", tag, k);
      }
    }
  }
  if (r.p != r.end) die("plan: %zu trailing bytes", static_cast<size_t>(r.end - r.p));
  return plan;
}

const TsrunOpSpec* op_spec(uint16_t code) {
  for (const auto& s : kTsrunOps)
    if (s.code == code) return &s;
  return nullptr;
}

const char* op_name(uint16_t code) {
  const TsrunOpSpec* s = op_spec(code);
  return s ? s->name : "an unknown op";
}

void check_op(const Op& op, const TsrunOpSpec& spec) {
  // The signature: every argument of the kind declared, and nothing more.
  uint16_t k = 0;
  for (const char* c = spec.sig; *c; c++) {
    bool is_int = *c != 's';
    if (k >= op.argc) die("plan: %s: %u arguments, its signature (%s) wants more", spec.name, op.argc, spec.sig);
    if (op.args[k].is_str == is_int) die("plan: %s: argument %u is %s, its signature (%s) wants %s", spec.name, k, op.args[k].is_str ? "a string" : "an int", spec.sig, kind_name(*c));
    if (*c == 'S' || *c == 'I') {
      int64_t n = op.args[k].i;
      if (n < (*c == 'I' ? -1 : 0) || n > op.argc - k - 1) die("plan: %s: argument %u: bad list length %lld", spec.name, k, static_cast<long long>(n));
      k++;
      for (int64_t e = 0; e < n; e++, k++)
        if (op.args[k].is_str != (*c == 'S')) die("plan: %s: argument %u is %s in %s", spec.name, k, op.args[k].is_str ? "a string" : "an int", kind_name(*c));
    } else {
      k++;
    }
  }
  if (k != op.argc) die("plan: %s: %u arguments, its signature (%s) takes %u", spec.name, op.argc, spec.sig, k);

  // The phase: an op before the one that opens its phase, or after the one that closed it, is refused.
  if (!(spec.phases & g.phase)) {
    unsigned later = spec.phases & ~((g.phase << 1) - 1);
    if (later) {
      const TsrunPhaseSpec& want = phase_spec(later & -later);
      die("plan: %s before %s (a step of %s)", spec.name, want.entered_by, want.doc);
    }
    unsigned last = spec.phases;
    while (last & (last - 1)) last &= last - 1;
    die("plan: %s after %s (a step of %s)", spec.name, op_name(g.phase_op), phase_spec(last).doc);
  }
  if (needs_rootfs(op.code) && g.rootfd < 0) die("plan: %s before OP_ROOTFS or OP_ROOT_DIR (it acts on the rootfs)", spec.name);
}

void advance_phase(const Op& op, const TsrunOpSpec& spec) {
  if (!spec.enters) return;
  g.phase = spec.enters;
  g.phase_op = op.code;
}

int64_t Args::i() {
  if (next >= op.argc || op.args[next].is_str) die("plan: %s: expected an int at arg %u", op_name(op.code), next);
  return op.args[next++].i;
}

const char* Args::s() {
  if (next >= op.argc || !op.args[next].is_str) die("plan: %s: expected a string at arg %u", op_name(op.code), next);
  return op.args[next++].s;
}

const Arg& Args::raw_s() {
  if (next >= op.argc || !op.args[next].is_str) die("plan: %s: expected bytes at arg %u", op_name(op.code), next);
  return op.args[next++];
}

char** Args::strv() {
  int64_t n = i();
  if (n < 0 || n > op.argc) die("plan: %s: bad list length", op_name(op.code));
  char** v = static_cast<char**>(calloc(static_cast<size_t>(n) + 1, sizeof(char*)));
  if (!v) die("plan: out of memory");
  for (int64_t k = 0; k < n; k++) v[k] = const_cast<char*>(s());
  return v;
}
