// The plan's wire format and the pure spec -> plan pieces, without starting containers.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { buildPlan } from "../src/plan/build";
import type { HostFacts } from "../src/plan/host";
import { MS, parseSignal, sysctlFile } from "../src/plan/linux";
import { containerPath, parseMountOptions } from "../src/plan/mounts";
import { native, sealedHelper } from "../src/native";
import { Msg, Op } from "../src/plan/opcodes";
import { containerProcessState } from "../src/seccomp/listener";
import { renderHeader } from "../src/plan/protocol";
import { Channel, type Frame } from "../src/runtime/channel";
import { Plan } from "../src/plan/writer";
import { defaultSpec } from "../src/spec/default";
import type { Spec } from "../src/spec/schema";
import { procMountRefusal, sysctlRefusal, validateSpec } from "../src/spec/validate";

const host: HostFacts = { uid: 0, home: "/root", hasKcore: true, sharedNamespaces: [], bindSources: {} };

const headerFile = path.resolve(__dirname, "..", "..", "native", "helper", "protocol.h");

describe("plan", () => {
  test("native/helper/protocol.h is what src/plan/protocol.ts generates (run scripts/gen-protocol.js)", () => {
    assert.equal(fs.readFileSync(headerFile, "utf8"), renderHeader());
  });

  test("encoding: count, then code/argc and tagged args", () => {
    const p = new Plan().add(Op.HOSTNAME, "box").add(Op.RLIMIT, 7, -1, 2n ** 40n, "RLIMIT_NOFILE");
    const b = p.encode();
    assert.equal(b.readUInt32LE(0), 2);
    assert.equal(b.readUInt16LE(4), Op.HOSTNAME);
    assert.equal(b.readUInt16LE(6), 1);
    assert.equal(b.readUInt8(8), 1);
    assert.equal(b.readUInt32LE(9), 3);
    assert.equal(b.toString("utf8", 13, 16), "box");
    let off = 16;
    assert.equal(b.readUInt16LE(off), Op.RLIMIT);
    assert.equal(b.readUInt16LE(off + 2), 4);
    off += 4;
    assert.equal(b.readUInt8(off), 0);
    assert.equal(b.readBigInt64LE(off + 1), 7n);
    assert.equal(b.readBigInt64LE(off + 10), -1n);
    assert.equal(b.readBigInt64LE(off + 19), 2n ** 40n);
    assert.throws(() => new Plan().add(Op.HOSTNAME, "a\0b").encode(), /NUL/);
    assert.throws(() => new Plan().add(Op.UMASK, 1.5).encode(), /non-integer/);
  });

  test("mount options: flags, clearing flags, propagation, data, refusals", () => {
    const m = parseMountOptions(["rbind", "ro", "nosuid", "rw", "ro", "rslave", "mode=755", "size=1m"], undefined, "m");
    assert.equal(m.bind, true);
    assert.equal(m.recursive, true);
    assert.equal(m.flags, MS.BIND | MS.REC | MS.RDONLY | MS.NOSUID);
    assert.equal(m.propagation, MS.SLAVE | MS.REC);
    assert.equal(m.data, "mode=755,size=1m");
    assert.equal(parseMountOptions([], "bind", "m").bind, true);
    assert.equal(parseMountOptions(["suid", "nosuid", "suid"], "tmpfs", "m").flags & MS.NOSUID, 0);
    assert.equal(parseMountOptions(["rbind", "ridmap"], "bind", "m").idmap, "ridmap");
    const rec = parseMountOptions(["rro", "rnoatime", "rsuid", "rnosuid"], "bind", "m");
    assert.deepEqual([rec.recSet, rec.recClr], [0x1 | 0x10 | 0x2, 0x70], "runc's recAttr: the last of rsuid/rnosuid wins, an atime mode clears the atime field");
  });

  test("container paths: normalised, never above the root", () => {
    assert.equal(containerPath("/a/./b//c/", "x"), "/a/b/c/");
    assert.equal(containerPath("a/b/../c", "x"), "/a/c");
    assert.throws(() => containerPath("/a/../../etc", "mounts[0]"), /mounts\[0\]: "\/a\/..\/..\/etc" escapes/);
  });

  test("signals by name, SIG name, number, real-time offset", () => {
    assert.equal(parseSignal("KILL"), 9);
    assert.equal(parseSignal("sigterm"), 15);
    assert.equal(parseSignal("10"), 10);
    assert.equal(parseSignal("RTMIN+2"), 36);
    assert.throws(() => parseSignal("0"), /invalid signal/);
    assert.throws(() => parseSignal("NOPE"), /unknown signal/);
  });

  test("seccomp: loaded after user and capabilities, right before exec; CAP_SYS_ADMIN held for it only without no_new_privs", () => {
    const SYS_ADMIN_BIT = 1 << 21;
    const build = (nnp: boolean, listener?: boolean) => {
      const spec = defaultSpec({});
      spec.process!.noNewPrivileges = nnp;
      spec.process!.terminal = false;
      return buildPlan({
        id: "c",
        spec,
        bundle: "/b",
        rootfs: "/b/rootfs",
        noPivot: false,
        noNewKeyring: false,
        extraFds: 0,
        syncFd: 3,
        stateDirFd: 4,
        cgroupProcs: [],
        cgroupDirs: {},
        cgroupMode: "v2",
        seccomp: { program: Buffer.alloc(8), flags: listener ? 8 : 0 },
        host,
        warn: () => undefined,
      }).ops;
    };
    const names = (ops: { code: number }[]) => ops.map((o) => Object.entries(Op).find(([, v]) => v === o.code)![0]);
    const nnp = build(true);
    assert.deepEqual(names(nnp).slice(-3), ["CLOEXEC_FROM", "SECCOMP", "EXEC"]);
    assert.ok(names(nnp).indexOf("SET_USER") < names(nnp).indexOf("SECCOMP") && names(nnp).indexOf("CAPS") < names(nnp).indexOf("SECCOMP"));
    assert.equal(Number(nnp.find((o) => o.code === Op.CAPS)!.args[0]) & SYS_ADMIN_BIT, 0, "with no_new_privs nothing extra is held");
    const plain = build(false);
    assert.deepEqual(names(plain).slice(-4), ["CLOEXEC_FROM", "SECCOMP", "CAPSET", "EXEC"]);
    const caps = plain.find((o) => o.code === Op.CAPS)!.args.map(Number);
    const capset = plain.find((o) => o.code === Op.CAPSET)!.args.map(Number);
    assert.equal(caps[0]! & SYS_ADMIN_BIT, SYS_ADMIN_BIT, "effective holds CAP_SYS_ADMIN until the filter is loaded");
    assert.equal(caps[2]! & SYS_ADMIN_BIT, SYS_ADMIN_BIT, "and permitted");
    assert.deepEqual(capset, [caps[0]! & ~SYS_ADMIN_BIT, caps[1], caps[2]! & ~SYS_ADMIN_BIT, caps[3], caps[4], caps[5]], "then exactly the configured sets");
    const l = build(true, true);
    assert.deepEqual(l.find((o) => o.code === Op.SECCOMP)!.args.slice(1), [8], "the notify fd goes back to tsrun: no listener fd in the plan");
  });

  test("sysctls: runc's namespaced list, its error texts, the file under a procfs root", () => {
    const spec = (ns: string[], patch?: (s: Spec) => void) => {
      const s = defaultSpec({});
      s.linux!.namespaces = ns.map((type) => ({ type: type as "pid" }));
      patch?.(s);
      return s;
    };
    const all = spec(["pid", "network", "ipc", "uts", "mount"]);
    assert.equal(sysctlRefusal(all, "kernel.shmmax", []), undefined);
    assert.equal(sysctlRefusal(all, "fs.mqueue.msg_max", []), undefined);
    assert.equal(sysctlRefusal(all, "net.ipv4.ip_forward", []), undefined);
    assert.equal(sysctlRefusal(all, "net/ipv4/conf/eth0.100/forwarding", []), undefined);
    assert.equal(sysctlRefusal(all, "kernel.domainname", []), undefined);
    assert.equal(sysctlRefusal(all, "kernel.core_pattern", []), 'sysctl "kernel.core_pattern" is not in a separate kernel namespace');
    assert.equal(sysctlRefusal(all, "kernel/core_pattern", []), 'sysctl "kernel.core_pattern" is not in a separate kernel namespace');
    assert.equal(sysctlRefusal(all, "vm.overcommit_memory", []), 'sysctl "vm.overcommit_memory" is not in a separate kernel namespace');
    assert.equal(sysctlRefusal(all, "kernel.hostname", []), 'sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field');
    assert.equal(sysctlRefusal(all, "user.max_user_namespaces", []), "setting ucounts without a user namespace not allowed: user.max_user_namespaces");
    assert.equal(sysctlRefusal(spec(["pid", "network", "uts", "mount"]), "kernel.msgmax", []), 'sysctl "kernel.msgmax" is not allowed in the hosts ipc namespace');
    assert.equal(sysctlRefusal(spec(["pid", "ipc", "uts", "mount"]), "net.core.somaxconn", []), 'sysctl "net.core.somaxconn" not allowed in host network namespace');
    const joinedHost = spec(["pid", "ipc", "mount"], (s) => s.linux!.namespaces!.push({ type: "network", path: "/proc/self/ns/net" }));
    assert.equal(sysctlRefusal(joinedHost, "net.core.somaxconn", ["network"]), 'sysctl "net.core.somaxconn" not allowed in host network namespace');
    assert.equal(sysctlRefusal(spec(["pid", "network", "ipc", "mount"]), "kernel.domainname", []), 'sysctl "kernel.domainname" is not in a separate kernel namespace');
    assert.match(sysctlRefusal(all, "net.ipv4./..kernel", [])!, /not a valid sysctl name/);
    assert.equal(sysctlFile("net.ipv4.ip_forward"), "sys/net/ipv4/ip_forward");
    assert.equal(sysctlFile("net/ipv4/conf/eth0.100/forwarding"), "sys/net/ipv4/conf/eth0.100/forwarding");
    assert.throws(() => validateSpec(spec(["pid", "uts", "mount"], (s) => (s.linux!.sysctl = { "kernel.panic": "1" })), host, { socket: false, receiver: true }), /^TsrunError: config.json: linux.sysctl: sysctl "kernel.panic" is not in a separate kernel namespace$/);
  });

  test("mounts on /proc: runc's checkProcMount, as written in config.json", () => {
    const m = (destination: string, type: string, options?: string[], source = "x") => procMountRefusal({ destination, type, source, ...(options ? { options } : {}) }, "m", source === "/proc");
    assert.equal(m("/proc", "proc"), undefined);
    assert.equal(m("/proc", "proc", undefined, "proc"), undefined);
    assert.equal(m("/proc", "bind", ["rbind"], "/proc"), undefined, "a procfs may be bound over /proc");
    assert.equal(m("/proc", "bind", ["rbind"], "/etc"), '"/proc" cannot be mounted because it is not of type proc');
    assert.equal(m("/proc", "tmpfs"), '"/proc" cannot be mounted because it is not of type proc');
    assert.equal(m("/proc/sys", "tmpfs"), '"/proc/sys" cannot be mounted because it is inside /proc');
    assert.equal(m("proc/sys/kernel/", "bind", ["bind"], "/etc"), '"/proc/sys/kernel" cannot be mounted because it is inside /proc');
    assert.equal(m("/proc/cpuinfo", "bind", ["bind"], "/etc/hostname"), undefined);
    assert.equal(m("/proc/sys/kernel/ns_last_pid", "bind", ["bind"], "/etc/hostname"), undefined);
    assert.equal(m("/proc2", "tmpfs"), undefined);
    assert.equal(m("/data", "proc"), '"/data" cannot be mounted because it is not on /proc (a proc-type mount goes only on /proc)');
  });

  test("devices: made with mknod, or bound from the host in a user namespace — the container's or tsrun's own (rootless podman)", () => {
    const devices = (facts: HostFacts, userns: boolean) => {
      const spec = defaultSpec({});
      spec.process!.terminal = false;
      spec.linux!.devices = [{ path: "/dev/fuse", type: "c", major: 10, minor: 229 }];
      if (userns) {
        spec.linux!.namespaces!.push({ type: "user" });
        spec.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
        spec.linux!.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
      }
      const ops = buildPlan({ id: "c", spec, bundle: "/b", rootfs: "/b/rootfs", noPivot: false, noNewKeyring: false, extraFds: 0, syncFd: 3, stateDirFd: 4, cgroupProcs: [], cgroupDirs: {}, cgroupMode: "v2", host: facts, warn: () => undefined }).ops.filter((o) => o.code === Op.DEVICE);
      assert.equal(ops.length, 7, "the six default nodes and /dev/fuse");
      return new Set(ops.map((o) => Number(o.args[o.args.length - 1])));
    };
    assert.deepEqual(devices(host, false), new Set([0]));
    assert.deepEqual(devices(host, true), new Set([1]));
    assert.deepEqual(devices({ ...host, inUserNamespace: true }, false), new Set([1]));
  });

  test("mounts: procfs and sysfs ask for an ordinary directory; cgroups read-only with a user namespace and no cgroup namespace", () => {
    const build = (patch: (s: Spec) => void, cgroupMode: "v1" | "v2" | "hybrid" = "v2") => {
      const spec = defaultSpec({});
      spec.process!.terminal = false;
      patch(spec);
      return buildPlan({ id: "c", spec, bundle: "/b", rootfs: "/b/rootfs", noPivot: false, noNewKeyring: false, extraFds: 0, syncFd: 3, stateDirFd: 4, cgroupProcs: [], cgroupDirs: { "": "/sys/fs/cgroup/unified/c", memory: "/sys/fs/cgroup/memory/c" }, cgroupMode, host, warn: () => undefined }).ops.filter((o) => o.code === Op.MOUNT);
    };
    const mounts = build(() => undefined);
    const opts = (dest: string) => Number(mounts.find((o) => o.args[1] === dest)!.args[7]);
    assert.equal(opts("/proc") & 8, 8);
    assert.equal(opts("/sys") & 8, 8);
    assert.equal(opts("/dev") & 8, 0);
    const userns = (s: Spec) => {
      s.linux!.namespaces!.push({ type: "user" });
      s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
      const cg = s.mounts!.find((x) => x.type === "cgroup")!;
      cg.options = ["nosuid", "rw"];
    };
    for (const mode of ["v2", "hybrid"] as const) {
      const cg = build(userns, mode).filter((o) => String(o.args[1]).startsWith("/sys/fs/cgroup") && o.args[2] !== "tmpfs");
      assert.ok(cg.length > 0);
      for (const o of cg) assert.equal(Number(o.args[3]) & MS.RDONLY, MS.RDONLY, `${mode}: ${String(o.args[1])} read-only`);
    }
    const withCgroupNs = build((s) => {
      userns(s);
      s.linux!.namespaces!.push({ type: "cgroup" });
    });
    assert.equal(Number(withCgroupNs.find((o) => o.args[1] === "/sys/fs/cgroup")!.args[3]) & MS.RDONLY, 0, "its own cgroup namespace: rw as asked");
  });
});

// Runs tsrun-init on a plan and returns what it sent back until it closed the socket (ops made by hand, so
// a malformed one can be written). Every plan here is refused before any op with an effect would run, but
// for OP_CLONE_INIT, whose child (ours, by CLONE_PARENT) reports the refusal of the op after it.
async function runHelper(ops: { code: number; args: (number | string)[] }[]): Promise<Frame[]> {
  const n = native();
  const [ours, theirs] = n.socketpair();
  const devnull = fs.openSync("/dev/null", "r+");
  const plan = new Plan();
  for (const o of ops) plan.ops.push(o as (typeof plan.ops)[number]);
  const chan = new Channel(ours);
  const frames: Frame[] = [];
  let pid = 0;
  try {
    pid = n.spawn(sealedHelper(), ["tsrun-init", "3"], [], [devnull, devnull, devnull, theirs]);
    fs.closeSync(theirs);
    chan.send(Msg.PLAN, plan.encode());
    for (let f = await chan.recv(); f; f = await chan.recv()) {
      frames.push(f);
      if (f.type === Msg.PID) n.waitpid(pid); // the helper exits once the init is cloned
      if (f.type === Msg.PID) pid = f.payload.readInt32LE(0);
    }
  } finally {
    chan.close();
    fs.closeSync(devnull);
    if (pid > 0) n.waitpid(pid);
  }
  return frames;
}

async function refusal(ops: { code: number; args: (number | string)[] }[]): Promise<string> {
  const errors = (await runHelper(ops)).filter((f) => f.type === Msg.ERROR);
  assert.equal(errors.length, 1, "one error");
  return errors[0]!.payload.toString();
}

describe("tsrun-init refuses a malformed plan, naming the op", () => {
  test("an op out of its phase", async () => {
    assert.equal(await refusal([{ code: Op.MOUNT, args: ["tmpfs", "/tmp", "tmpfs", 0, "", 0, 0, 0, 0, 0, -1] }]), "plan: OP_MOUNT before OP_CLONE_INIT (a step of the container process before pivot_root)");
    assert.equal(await refusal([{ code: Op.EXEC, args: [1, "/bin/true", 0] }]), "plan: OP_EXEC before OP_CAPS (a step of the container process with its credentials, until exec)");
    assert.equal(await refusal([{ code: Op.INIT_REAPER, args: [] }]), "plan: OP_INIT_REAPER before OP_READY (a step of the container's init after `tsrun start`)");
    // the init (after OP_CLONE_INIT) refuses a second clone and host-context steps
    const second = await runHelper([{ code: Op.CLONE_INIT, args: [] }, { code: Op.CLONE_INIT, args: [] }]);
    assert.deepEqual(
      second.map((f) => f.type),
      [Msg.PID, Msg.ERROR],
    );
    assert.equal(second[1]!.payload.toString(), "plan: OP_CLONE_INIT after OP_CLONE_INIT (a step of the set-up helper (host context))");
    assert.equal(await refusal([{ code: Op.CLONE_INIT, args: [] }, { code: Op.SYMLINK, args: ["a", "/b"] }]), "plan: OP_SYMLINK before OP_ROOTFS or OP_ROOT_DIR (it acts on the rootfs)");
  });

  test("arguments that do not match the op's signature", async () => {
    assert.equal(await refusal([{ code: Op.UMASK, args: ["022"] }]), "plan: OP_UMASK: argument 0 is a string, its signature (i) wants an int");
    assert.equal(await refusal([{ code: Op.UMASK, args: [] }]), "plan: OP_UMASK: 0 arguments, its signature (i) wants more");
    assert.equal(await refusal([{ code: Op.CLOSE_FROM, args: [100, 1] }]), "plan: OP_CLOSE_FROM: 2 arguments, its signature (i) takes 1");
    assert.equal(await refusal([{ code: Op.CGROUP_JOIN, args: [1] }]), "plan: OP_CGROUP_JOIN: argument 0 is an int, its signature (s) wants a string");
    assert.equal(await refusal([{ code: Op.RLIMIT, args: [7, 1, 1, "RLIMIT_NOFILE", "x"] }]), "plan: OP_RLIMIT: 5 arguments, its signature (iiis) takes 4");
    assert.equal(await refusal([{ code: Op.EXEC, args: [2, "/bin/true", 0] }]), "plan: OP_EXEC: argument 2 is an int in a list of strings");
    assert.equal(await refusal([{ code: Op.EXEC, args: [5, "/bin/true"] }]), "plan: OP_EXEC: argument 0: bad list length 5");
    assert.equal(await refusal([{ code: 99, args: [] }]), "plan: unknown op 99");
  });
});

describe("seccomp listener", () => {
  test("the container process state: runc's fields, in its order", () => {
    const state = { ociVersion: "1.2.0", id: "c", pid: 42, status: "created" as const, bundle: "/b", rootfs: "/b/rootfs", created: "t", owner: "" };
    assert.equal(containerProcessState(42, state, "m"), `{"ociVersion":"1.3.0","fds":["seccompFd"],"pid":42,"metadata":"m","state":${JSON.stringify(state)}}`);
    assert.equal(containerProcessState(42, state, undefined), `{"ociVersion":"1.3.0","fds":["seccompFd"],"pid":42,"state":${JSON.stringify(state)}}`);
  });
});
