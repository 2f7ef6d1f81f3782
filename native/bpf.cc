// bpf(2) for cgroup v2 device control: load a BPF_PROG_TYPE_CGROUP_DEVICE program (generated in TypeScript by
// src/cgroups/devicefilter.ts), list the programs attached to a cgroup, attach one with BPF_F_ALLOW_MULTI
// (replacing a previous one in place with BPF_F_REPLACE), and detach one. The policy (which program, what to
// replace) is decided in src/cgroups/devices.ts; this file only makes the calls.
//
// Every failure throws an Error whose message names the step, with `code` set to the errno name.
#include "bpf.h"

#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

Napi::Error bpf_error(Napi::Env env, const std::string& step, int e) {
  Napi::Error err = Napi::Error::New(env, step + ": " + strerror(e));
  const char* name = strerrorname_np(e);
  err.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  err.Set("errno", Napi::Number::New(env, e));
  return err;
}

long sys_bpf(int cmd, union bpf_attr* attr) {
  long r;
  do {
    r = syscall(SYS_bpf, cmd, attr, sizeof(*attr));
  } while (r < 0 && errno == EINTR);
  return r;
}

int fd_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

// The verifier's own reason, on one line: the last non-empty line of its log.
std::string last_line(const std::vector<char>& log) {
  std::string text(log.data(), strnlen(log.data(), log.size()));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  size_t nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

// bpfLoadDeviceProgram(insns: Buffer of struct bpf_insn, license: string) -> program fd (close-on-exec).
Napi::Value LoadDeviceProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsString()) throw Napi::TypeError::New(env, "bpfLoadDeviceProgram(insns, license)");
  Napi::Buffer<uint8_t> insns = info[0].As<Napi::Buffer<uint8_t>>();
  std::string license = info[1].As<Napi::String>().Utf8Value();
  if (insns.Length() == 0 || insns.Length() % sizeof(struct bpf_insn) != 0)
    throw Napi::TypeError::New(env, "bpfLoadDeviceProgram: insns must be a whole number of 8-byte instructions");
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = reinterpret_cast<uint64_t>(insns.Data());
  attr.insn_cnt = static_cast<uint32_t>(insns.Length() / sizeof(struct bpf_insn));
  attr.license = reinterpret_cast<uint64_t>(license.c_str());
  long fd = sys_bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return Napi::Number::New(env, static_cast<double>(fd));
  int e = errno;
  // Load again with the verifier log on, to say why.
  std::vector<char> log(65536, '\0');
  attr.log_level = 1;
  attr.log_buf = reinterpret_cast<uint64_t>(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  long again = sys_bpf(BPF_PROG_LOAD, &attr);
  if (again >= 0) {
    close(static_cast<int>(again));
    throw bpf_error(env, "BPF_PROG_LOAD (cgroup device program)", e);
  }
  std::string why = last_line(log);
  throw bpf_error(env, "BPF_PROG_LOAD (cgroup device program" + (why.empty() ? std::string() : ", verifier: " + why) + ")", e);
}

// bpfQueryDevicePrograms(cgroupFd) -> ids of the BPF_CGROUP_DEVICE programs attached to that cgroup.
Napi::Value QueryDevicePrograms(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int cgfd = fd_arg(info, 0, "cgroupFd");
  std::vector<uint32_t> ids(64);
  for (int tries = 0; tries < 10; tries++) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.query.target_fd = static_cast<uint32_t>(cgfd);
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = reinterpret_cast<uint64_t>(ids.data());
    attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
    if (sys_bpf(BPF_PROG_QUERY, &attr) < 0) {
      if (errno == ENOSPC) {  // prog_cnt now holds the number attached
        ids.resize(attr.query.prog_cnt + 1);
        continue;
      }
      throw bpf_error(env, "BPF_PROG_QUERY (BPF_CGROUP_DEVICE)", errno);
    }
    Napi::Array out = Napi::Array::New(env, attr.query.prog_cnt);
    for (uint32_t i = 0; i < attr.query.prog_cnt; i++) out.Set(i, Napi::Number::New(env, ids[i]));
    return out;
  }
  throw bpf_error(env, "BPF_PROG_QUERY (BPF_CGROUP_DEVICE): the list kept changing", EAGAIN);
}

// bpfProgramFdById(id) -> fd of a loaded program (close-on-exec).
Napi::Value ProgramFdById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int id = fd_arg(info, 0, "id");
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_id = static_cast<uint32_t>(id);
  long fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
  if (fd < 0) throw bpf_error(env, "BPF_PROG_GET_FD_BY_ID " + std::to_string(id), errno);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// bpfAttachDeviceProgram(cgroupFd, progFd, replaceFd): BPF_F_ALLOW_MULTI; with replaceFd >= 0 the program
// takes that attached program's place atomically (BPF_F_REPLACE), so the cgroup is never unfiltered.
Napi::Value AttachDeviceProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int cgfd = fd_arg(info, 0, "cgroupFd"), prog = fd_arg(info, 1, "progFd"), replace = fd_arg(info, 2, "replaceFd");
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.target_fd = static_cast<uint32_t>(cgfd);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog);
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (replace >= 0) {
    attr.attach_flags |= BPF_F_REPLACE;
    attr.replace_bpf_fd = static_cast<uint32_t>(replace);
  }
  if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
    throw bpf_error(env, replace >= 0 ? "BPF_PROG_ATTACH (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI|BPF_F_REPLACE)" : "BPF_PROG_ATTACH (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)", errno);
  return env.Undefined();
}

// bpfDetachDeviceProgram(cgroupFd, progFd).
Napi::Value DetachDeviceProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int cgfd = fd_arg(info, 0, "cgroupFd"), prog = fd_arg(info, 1, "progFd");
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.target_fd = static_cast<uint32_t>(cgfd);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog);
  attr.attach_type = BPF_CGROUP_DEVICE;
  if (sys_bpf(BPF_PROG_DETACH, &attr) < 0) throw bpf_error(env, "BPF_PROG_DETACH (BPF_CGROUP_DEVICE)", errno);
  return env.Undefined();
}

}  // namespace

void RegisterBpf(Napi::Env env, Napi::Object exports) {
  exports.Set("bpfLoadDeviceProgram", Napi::Function::New(env, LoadDeviceProgram));
  exports.Set("bpfQueryDevicePrograms", Napi::Function::New(env, QueryDevicePrograms));
  exports.Set("bpfProgramFdById", Napi::Function::New(env, ProgramFdById));
  exports.Set("bpfAttachDeviceProgram", Napi::Function::New(env, AttachDeviceProgram));
  exports.Set("bpfDetachDeviceProgram", Napi::Function::New(env, DetachDeviceProgram));
}
