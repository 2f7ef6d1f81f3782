// A seeded config fuzzer: configs a careless or hostile author could write, mutated from runc's default.
// Whatever the config, `create` ends within a few seconds; a refusal is one line naming the cause, with
// nothing left behind (state, cgroups, processes, mounts); a success is removed whole by `delete -f`; and
// nothing outside the bundle changes. TSRUN_FUZZ_SEED replays a run, TSRUN_FUZZ_CASES runs more.
//
// Safety of the host while fuzzing: bind sources are inside this test's work directory, joined namespaces are
// never the host's mount namespace, sysctl values are the host's current ones, cgroupsPath stays under the
// test's cgroup parent, and hooks are short commands.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import type { Spec } from "../src/spec/schema";
import { CGROUP_PARENT, cleanup, makeBundle, tsrun, work } from "./helpers";
import { leftovers, prng, settle, treeSnapshot } from "./faults";

after(cleanup);

const SEED = Number(process.env.TSRUN_FUZZ_SEED ?? Date.now() % 100000);
const CASES = Number(process.env.TSRUN_FUZZ_CASES ?? 200);

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const some = <T>(r: Rand, xs: readonly T[], max: number): T[] => Array.from({ length: 1 + Math.floor(r() * max) }, () => pick(r, xs));

function hostSysctl(key: string): string {
  try {
    return fs.readFileSync(`/proc/sys/${key.replace(/\./g, "/")}`, "utf8").trim().split("\n")[0]!;
  } catch {
    return "1";
  }
}

// The config as the fuzzer sees it: the same shape as Spec, but enum fields are any string (it writes what
// the schema may refuse).
type Loose<T> = T extends string ? string : T extends number | boolean ? T : T extends readonly (infer U)[] ? Loose<U>[] : T extends object ? { -readonly [K in keyof T]?: Loose<T[K]> } : T;
type FuzzSpec = Loose<Spec>;

// One mutation of the config, described for the failure message.
function mutate(r: Rand, spec: Spec, volume: string): string {
  const s = spec as FuzzSpec;
  const linux = (s.linux ??= {});
  const proc = s.process!;
  const paths = ["/proc", "/proc/sys", "/proc/sys/kernel", "/proc/cpuinfo", "/proc/self", "/sys", "/sys/kernel", "/dev", "/dev/null", "/dev/console", "/dev/pts", "/tmp/x", "/escape/new", "/escape", "../../../../etc", "relative/dir", "/etc/passwd", "", "/", "/a/../../b", `/${"d".repeat(300)}`];
  const kind = Math.floor(r() * 16);
  switch (kind) {
    case 0: {
      const m = {
        destination: pick(r, paths),
        type: pick(r, ["proc", "sysfs", "tmpfs", "bind", "none", "", "mqueue", "devpts", "cgroup", "ext4"]),
        source: pick(r, ["proc", "tmpfs", "sysfs", volume, path.join(volume, "file"), path.join(volume, "link-to-dir"), "/nonexistent", "", "relative"]),
        options: some(r, ["ro", "rw", "rbind", "bind", "nosuid", "nodev", "noexec", "rprivate", "rshared", "rslave", "size=1k", "mode=0", "tmpcopyup", "garbage=1", "idmap", "x-foo", "remount", "nosymfollow"], 4),
      };
      (s.mounts ??= []).push(m);
      return `mount ${JSON.stringify(m)}`;
    }
    case 1: {
      const key = pick(r, ["kernel.shmmax", "kernel.msgmax", "fs.mqueue.msg_max", "net.ipv4.ip_forward", "net.core.somaxconn", "kernel.hostname", "kernel.domainname", "kernel.pid_max", "vm.swappiness", "kernel.no_such_key", "../../../../tmp/x", "net/ipv4/ip_forward", ""]);
      (linux.sysctl ??= {})[key] = hostSysctl(key);
      return `sysctl ${key}`;
    }
    case 2:
      proc.cwd = pick(r, ["/", "/tmp", "relative", "/proc/self/fd/3", "/proc/self/fd/5", "/../../..", "/nonexistent/deep", "/probe", "/escape"]);
      return `cwd ${proc.cwd}`;
    case 3:
      proc.args = pick(r, [["/probe", "facts"], ["/nonexistent"], [""], ["probe", "facts"], ["/proc"], ["/escape"], ["/probe", "x".repeat(100_000)], ["/dev/null"]]);
      return `args ${proc.args[0]}`;
    case 4: {
      const type = pick(r, ["RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_FOO", "RLIMIT_CORE", "RLIMIT_AS"]);
      const soft = pick(r, [0, 1, 1024, 2 ** 40, 2 ** 64 - 1]);
      const hard = pick(r, [0, 1024, 2 ** 64 - 1]);
      (proc.rlimits ??= []).push({ type, soft, hard });
      return `rlimit ${type} ${soft}/${hard}`;
    }
    case 5: {
      const cap = pick(r, ["CAP_SYS_ADMIN", "CAP_NOPE", "cap_chown", "", "CAP_BPF", "CAP_MAC_ADMIN"]);
      const set = pick(r, ["bounding", "effective", "permitted", "inheritable", "ambient"] as const);
      ((proc.capabilities ??= {})[set] ??= []).push(cap);
      return `capability ${set} ${cap}`;
    }
    case 6: {
      const which = pick(r, ["oom", "user", "env", "terminal", "apparmor", "nnp", "umask"]);
      if (which === "oom") proc.oomScoreAdj = pick(r, [0, 500, 1000, -1000, 1001]);
      else if (which === "user") proc.user = { uid: pick(r, [0, 1, 65534, 4294967294]), gid: pick(r, [0, 5, 4294967294]), additionalGids: some(r, [0, 1, 100, 4294967294], 3) };
      else if (which === "env") proc.env = [...(proc.env ?? []), pick(r, ["=", "A", "B=1\nC=2", "PATH=", `L=${"v".repeat(50_000)}`])];
      else if (which === "terminal") proc.terminal = true;
      else if (which === "apparmor") proc.apparmorProfile = "fuzz";
      else if (which === "nnp") proc.noNewPrivileges = r() < 0.5;
      else proc.user = { ...(proc.user ?? { uid: 0, gid: 0 }), umask: pick(r, [0, 0o777, 0o22]) };
      return `process ${which}`;
    }
    case 7: {
      const p = pick(r, ["/", "/proc", "/etc/passwd", "../../../../..", "relative", "/dev/null", "/nonexistent", "/proc/self/fd/0", "/escape", "/sys"]);
      if (r() < 0.5) (linux.maskedPaths ??= []).push(p);
      else (linux.readonlyPaths ??= []).push(p);
      return `masked/readonly ${p}`;
    }
    case 8: {
      const d = { path: pick(r, ["/dev/fuzz", "/dev/../etc/x", "/tmp/x", "/dev/null", "/dev/console", "/escape/dev"]), type: pick(r, ["c", "b", "p", "u", "x"]), major: pick(r, [1, 5, 4095, 0]), minor: pick(r, [3, 1, 0, 1048575]), fileMode: pick(r, [0o666, 0o4777, 0]), uid: 0, gid: 0 };
      (linux.devices ??= []).push(d);
      return `device ${JSON.stringify(d)}`;
    }
    case 9: {
      const which = pick(r, ["drop", "dup", "time", "user", "cgroup", "path"]);
      const ns = (linux.namespaces ??= []);
      if (which === "drop" && ns.length) ns.splice(Math.floor(r() * ns.length), 1);
      else if (which === "dup" && ns.length) ns.push({ ...ns[0]! });
      else if (which === "time" || which === "cgroup") ns.push({ type: which });
      else if (which === "user") {
        ns.push({ type: "user" });
        if (r() < 0.6) {
          linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
          linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        }
      } else {
        const t = pick(r, ["network", "ipc", "uts"]);
        const i = ns.findIndex((n) => n.type === t);
        const entry = { type: t, path: pick(r, [`/proc/1/ns/${t === "network" ? "net" : t}`, "/nonexistent", "/proc/self/ns/mnt", "relative"]) };
        if (i >= 0) ns[i] = entry;
        else ns.push(entry);
      }
      return `namespace ${which}`;
    }
    case 10: {
      const res = (linux.resources ??= {});
      const which = pick(r, ["pids", "memory", "cpu", "blkio", "devices", "hugepages"]);
      if (which === "pids") res.pids = { limit: pick(r, [1, 0, -1, 10]) };
      else if (which === "memory") res.memory = { limit: pick(r, [4096, 1 << 20, 1 << 30, -1]), ...(r() < 0.3 ? { swap: pick(r, [0, 1 << 20, -1]) } : {}) };
      else if (which === "cpu") res.cpu = { shares: pick(r, [0, 2, 1024, 262145]), quota: pick(r, [-1, 10000, 100000]), period: pick(r, [100000, 1000, 1000001]), cpus: pick(r, ["0", "0-1", "99", "x"]) };
      else if (which === "blkio") res.blockIO = { weight: pick(r, [0, 10, 1000, 65535]) };
      else if (which === "hugepages") res.hugepageLimits = [{ pageSize: pick(r, ["2MB", "1GB", "3KB"]), limit: 0 }];
      else (res.devices ??= []).push({ allow: r() < 0.5, type: pick(r, ["a", "c", "b", "z"]), major: pick(r, [1, -1, 5]), minor: pick(r, [3, -1]), access: pick(r, ["rwm", "r", "q", ""]) });
      return `resources ${which}`;
    }
    case 11: {
      const kind = pick(r, ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] as const);
      const h = pick(r, [{ path: "/bin/true" }, { path: "/bin/false" }, { path: "/nonexistent" }, { path: "relative/hook" }, { path: "/bin/sh", args: ["sh", "-c", "sleep 5"], timeout: 1 }, { path: "/bin/sh", args: ["sh", "-c", "echo line1; echo line2 >&2; exit 3"] }]);
      ((s.hooks ??= {})[kind] ??= []).push(h);
      return `hook ${kind} ${h.path}`;
    }
    case 12:
      s.hostname = pick(r, ["h".repeat(65), "a\nb", "", "ok-name", "\u00e9"]);
      if (r() < 0.5) s.domainname = pick(r, ["d".repeat(65), "dom"]);
      return `hostname ${JSON.stringify(s.hostname).slice(0, 20)}`;
    case 13:
      linux.rootfsPropagation = pick(r, ["shared", "private", "slave", "unbindable", "rshared", "garbage"]);
      return `rootfsPropagation ${linux.rootfsPropagation}`;
    case 14: {
      const which = pick(r, ["bad-action", "unknown-syscall", "notify", "args", "arch"]);
      if (which === "bad-action") linux.seccomp = { defaultAction: "SCMP_ACT_NOPE" };
      else if (which === "unknown-syscall") linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["no_such_syscall", "getppid"], action: "SCMP_ACT_ERRNO" }] };
      else if (which === "notify") linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", listenerPath: pick(r, ["/nonexistent.sock", path.join(volume, "file")]), syscalls: [{ names: ["getppid"], action: "SCMP_ACT_NOTIFY" }] };
      else if (which === "args") linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["personality"], action: "SCMP_ACT_ERRNO", args: [{ index: pick(r, [0, 5, 6]), value: 1, op: pick(r, ["SCMP_CMP_EQ", "SCMP_CMP_NOPE", "SCMP_CMP_MASKED_EQ"]) }] }] };
      else linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", architectures: [pick(r, ["SCMP_ARCH_X86_64", "SCMP_ARCH_NOPE", "SCMP_ARCH_AARCH64"])] };
      return `seccomp ${which}`;
    }
    default: {
      const which = pick(r, ["readonly", "timeoffsets", "personality", "annotations"]);
      if (which === "readonly") s.root!.readonly = !s.root!.readonly;
      else if (which === "timeoffsets") linux.timeOffsets = { monotonic: { secs: pick(r, [1, -1, 2 ** 40]), nanosecs: 0 } };
      else if (which === "personality") linux.personality = { domain: pick(r, ["LINUX", "LINUX32", "NOPE"]) };
      else s.annotations = { [pick(r, ["a", "", "x".repeat(1000)])]: "v" };
      return `other ${which}`;
    }
  }
}

test(`fuzzed configs: bounded time, one-line errors, nothing left behind (seed ${SEED}, ${CASES} cases)`, () => {
  const r = prng(SEED);
  // a "volume" outside every bundle: bind sources point here, and it must never change
  const volume = path.join(work(), "fuzz-volume");
  fs.mkdirSync(path.join(volume, "dir"), { recursive: true });
  fs.writeFileSync(path.join(volume, "file"), "canary");
  fs.symlinkSync("dir", path.join(volume, "link-to-dir"));
  const before = treeSnapshot(volume);
  const failures: string[] = [];
  for (let i = 0; i < CASES && failures.length < 10; i++) {
    const changes: string[] = [];
    const b = makeBundle(["facts"], (s) => {
      const n = 1 + Math.floor(r() * 4);
      for (let k = 0; k < n; k++) changes.push(mutate(r, s, volume));
      s.linux!.cgroupsPath = `/${CGROUP_PARENT}/${s.linux!.cgroupsPath!.split("/").pop()}`;
    });
    // a symlink in the image that points out of it, into the volume
    fs.symlinkSync(path.relative(b.rootfs, volume), path.join(b.rootfs, "escape"));
    fs.writeFileSync(path.join(b.rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    const what = `case ${i}: ${changes.join(" | ")}`;
    const t0 = Date.now();
    const c = tsrun(["create", "--bundle", b.dir, b.id], { timeout: 15_000 });
    const took = Date.now() - t0;
    if (took > 10_000) failures.push(`${what}: create took ${took} ms`);
    if (c.status !== 0) {
      // warnings (a skipped unknown capability, say) are lines of their own; the error is one line
      const lines = c.stderr.split("\n").filter((l) => l && !/^time="[^"]*" level=warning /.test(l));
      if (lines.length !== 1) failures.push(`${what}: the error is ${lines.length} lines: ${JSON.stringify(c.stderr.slice(0, 300))}`);
      else if (/RangeError|TypeError|ReferenceError|^\s+at |Cannot read properties|undefined/.test(lines[0]!)) failures.push(`${what}: a raw error: ${lines[0]}`);
    }
    tsrun(["delete", "-f", b.id]);
    const left = settle(() => leftovers(b.id, b.dir), 3000);
    if (left.length) failures.push(`${what}: left behind: ${left.join("; ")}`);
    if (treeSnapshot(volume) !== before) {
      failures.push(`${what}: the volume outside the bundle changed`);
      break;
    }
    // (never a recursive removal through a mount left behind: that would reach the volume)
    if (left.length === 0) fs.rmSync(b.dir, { recursive: true, force: true });
  }
  assert.deepEqual(failures, [], `seed ${SEED}`);
});
