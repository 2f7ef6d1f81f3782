// src/spec/validate.ts: every rule of a config (create) and a process (exec) refused with its one-line
// message (the texts runc users and engines see); src/plan/host.ts: the host facts they depend on.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { TsrunError } from "../src/errors";
import { type HostFacts, hostFacts, processFacts } from "../src/plan/host";
import { defaultSpec } from "../src/spec/default";
import type { Process, Spec } from "../src/spec/schema";
import { type ConsoleRoute, validateProcess, validateSpec } from "../src/spec/validate";

const HOST: HostFacts = {
  uid: 0,
  home: "/root",
  hasKcore: true,
  sharedNamespaces: [],
  bindSources: {
    "/srv/data": { path: "/srv/data", exists: true, procfs: false },
    "/gone": { path: "/gone", exists: false, procfs: false },
    "/proc": { path: "/proc", exists: true, procfs: true },
    "rel/gone": { path: "/bundle/rel/gone", exists: false, procfs: false },
  },
};
const TTY_OK: ConsoleRoute = { socket: true, receiver: false };

function spec(patch: (s: Spec) => void): Spec {
  const s = defaultSpec({ cgroupNamespace: false });
  patch(s);
  return s;
}

function refused(f: () => void, message: string): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof TsrunError, `a TsrunError, not ${String(e)}`);
    assert.equal(e.message, message);
    return true;
  });
}

function refusedSpec(patch: (s: Spec) => void, message: string, host: HostFacts = HOST, console: ConsoleRoute = TTY_OK): void {
  refused(() => validateSpec(spec(patch), host, console), message);
}

describe("validateSpec (create)", () => {
  test("the `tsrun spec` config passes, and so does the rootless one", () => {
    validateSpec(defaultSpec({ cgroupNamespace: false }), HOST, TTY_OK);
    const rootless = defaultSpec({ rootless: true, cgroupNamespace: true });
    validateSpec(rootless, { ...HOST, bindSources: { "/sys": { path: "/sys", exists: true, procfs: false } } }, TTY_OK);
  });

  test("namespaces: hostname, domainname, time offsets, user mappings, a mount namespace", () => {
    const drop = (s: Spec, type: string) => (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== type));
    refusedSpec((s) => drop(s, "uts"), "config.json: unable to set hostname without a private UTS namespace");
    // a uts namespace joined by a path: the names are set in it (runc), unless it is tsrun's own
    const joinedUts = (s: Spec) => (s.linux!.namespaces!.find((n) => n.type === "uts")!.path = "/var/run/utsns/blue");
    validateSpec(spec(joinedUts), HOST, TTY_OK);
    refusedSpec(joinedUts, "config.json: unable to set hostname without a private UTS namespace", { ...HOST, sharedNamespaces: ["uts"] });
    refusedSpec((s) => {
      delete s.hostname;
      s.domainname = "example.org";
      drop(s, "uts");
    }, "config.json: unable to set domainname without a private UTS namespace");
    refusedSpec((s) => (s.linux!.timeOffsets = { monotonic: { secs: 1 } }), "config.json: linux.timeOffsets is set but the container has no new time namespace");
    refusedSpec((s) => s.linux!.namespaces!.push({ type: "user" }), "config.json: a new user namespace needs linux.uidMappings and linux.gidMappings");
    refusedSpec((s) => {
      s.linux!.namespaces!.push({ type: "user" });
      s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
    }, "config.json: a new user namespace needs linux.uidMappings and linux.gidMappings");
    refusedSpec((s) => (s.linux!.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]), "config.json: linux.uidMappings are set but there is no user namespace");
    // no mount namespace: runc runs it (in tsrun's); what would need a mount is refused (runc's words for masked paths)
    refusedSpec((s) => drop(s, "mount"), "config.json: unable to restrict sys entries without a private MNT namespace");
    const noMounts = (s: Spec) => {
      drop(s, "mount");
      s.linux!.maskedPaths = [];
      s.linux!.readonlyPaths = [];
    };
    refusedSpec(noMounts, "config.json: mounts need a mount namespace: without one tsrun mounts nothing (the mounts would be made in the host's mount namespace and outlive the container)");
    refusedSpec((s) => {
      noMounts(s);
      s.mounts = [];
    }, "config.json: root.readonly needs a mount namespace (the remount would change the host's mount)");
    validateSpec(spec((s) => {
      noMounts(s);
      s.mounts = [];
      s.root!.readonly = false;
    }), HOST, TTY_OK);
  });

  test("sysctls: only in a namespace of the container's own; a joined one that is tsrun's own is the host's", () => {
    refusedSpec((s) => (s.linux!.sysctl = { "kernel.panic": "1" }), 'config.json: linux.sysctl: sysctl "kernel.panic" is not in a separate kernel namespace');
    const joined = (s: Spec) => {
      s.linux!.namespaces!.find((n) => n.type === "network")!.path = "/var/run/netns/blue";
      s.linux!.sysctl = { "net.ipv4.ip_forward": "1" };
    };
    validateSpec(spec(joined), HOST, TTY_OK);
    refusedSpec(joined, 'config.json: linux.sysctl: sysctl "net.ipv4.ip_forward" not allowed in host network namespace', { ...HOST, sharedNamespaces: ["network"] });
  });

  test("process fields tsrun does not implement", () => {
    // an AppArmor profile is never refused here (runc 1.4: the kernel refuses the write on a host without
    // AppArmor); an SELinux label is refused without SELinux (runc's security() rule)
    validateSpec(spec((s) => (s.process!.apparmorProfile = "docker-default")), HOST, TTY_OK);
    refusedSpec((s) => (s.process!.selinuxLabel = "system_u:system_r:container_t:s0"), "config.json: process.selinuxLabel is set but SELinux is not enabled on this host");
    validateSpec(spec((s) => (s.process!.selinuxLabel = "system_u:system_r:container_t:s0")), { ...HOST, lsm: { apparmor: false, apparmorAttr: "exec", selinux: true } }, TTY_OK);
    // scheduler, ioPriority and execCPUAffinity are applied (runc 1.2+), with runc's checks and words
    validateSpec(spec((s) => {
      s.process!.scheduler = { policy: "SCHED_BATCH", nice: 5 };
      s.process!.ioPriority = { class: "IOPRIO_CLASS_IDLE" };
      s.process!.execCPUAffinity = { initial: "0", final: " 0-1, " };
    }), HOST, TTY_OK);
    refusedSpec((s) => (s.process!.scheduler = { policy: "SCHED_OTHER", nice: 20 }), "config.json: invalid scheduler.nice: 20 when scheduler.policy is SCHED_OTHER");
    refusedSpec((s) => (s.process!.scheduler = { policy: "SCHED_OTHER", priority: 1 }), "config.json: scheduler.priority can only be specified for SchedFIFO or SchedRR policy");
    refusedSpec((s) => (s.process!.scheduler = { policy: "SCHED_RR", runtime: 10 }), "config.json: scheduler runtime/deadline/period can only be specified for SchedDeadline policy");
    refusedSpec((s) => (s.process!.execCPUAffinity = { initial: "3-1" }), "config.json: bad CPUAffinity.Initial: invalid range: 3-1");
    refusedSpec((s) => (s.process!.execCPUAffinity = { final: "70000" }), "config.json: bad CPUAffinity.Final: values larger than 65536 are not supported");
    validateSpec(spec((s) => (s.process!.apparmorProfile = "")), HOST, TTY_OK);
  });

  test("linux fields: process required, personality flags, intelRdt; Windows-only process fields", () => {
    refusedSpec((s) => delete s.process, "config.json: process is required to create a container");
    refusedSpec((s) => (s.linux!.personality = { domain: "LINUX", flags: ["SOMETHING"] }), "config.json: linux.personality.flags: no personality flag is defined (runtime-spec), so none can be applied");
    refusedSpec((s) => (s.process!.commandLine = "cmd.exe /c dir"), "config.json: process.commandLine is for Windows containers only; tsrun does not apply it");
    refusedSpec((s) => (s.process!.user!.username = "ContainerUser"), "config.json: process.user.username is for Windows containers only; tsrun does not apply it");
    refusedSpec((s) => (s.linux!.intelRdt = { closID: "x" }), "config.json: linux.intelRdt is not supported by tsrun");
  });

  test("runtime-spec 1.3: memoryPolicy and netDevices in runc's words", () => {
    validateSpec(spec((s) => (s.linux!.memoryPolicy = { mode: "MPOL_BIND", nodes: "0", flags: ["MPOL_F_STATIC_NODES"] })), HOST, TTY_OK);
    validateSpec(spec((s) => (s.linux!.memoryPolicy = { mode: "MPOL_PREFERRED" })), HOST, TTY_OK);
    refusedSpec((s) => (s.linux!.memoryPolicy = { mode: "MPOL_X" }), 'config.json: invalid memory policy mode "MPOL_X"');
    refusedSpec((s) => (s.linux!.memoryPolicy = { mode: "MPOL_BIND", nodes: "0", flags: ["MPOL_F_X"] }), 'config.json: invalid memory policy flag "MPOL_F_X"');
    refusedSpec((s) => (s.linux!.memoryPolicy = { mode: "MPOL_BIND", nodes: "3-1" }), 'config.json: invalid memory policy nodes "3-1": invalid range: 3-1');
    refusedSpec((s) => (s.linux!.memoryPolicy = { mode: "MPOL_INTERLEAVE", nodes: "" }), "config.json: memory policy mode requires at least one node but got 0");
    refusedSpec((s) => (s.linux!.memoryPolicy = { mode: "MPOL_DEFAULT", nodes: "0,2" }), "config.json: memory policy mode requires 0 nodes but got 2");
    validateSpec(spec((s) => (s.linux!.netDevices = { eth1: { name: "eth0" }, eth2: {} })), HOST, TTY_OK);
    refusedSpec((s) => ((s.linux!.netDevices = { eth1: {} }), (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "network"))), "config.json: unable to move network devices without a NET namespace");
    refused(() => validateSpec(spec((s) => (s.linux!.netDevices = { eth1: {} })), { ...HOST, uid: 1000 }, TTY_OK), "config.json: network devices are not supported for rootless containers");
    refusedSpec((s) => (s.linux!.netDevices = { "eth 1": {} }), 'config.json: invalid network device name "eth 1"');
    refusedSpec((s) => (s.linux!.netDevices = { eth1: { name: "a:b" } }), 'config.json: invalid network device name "a:b"');
    refusedSpec((s) => (s.linux!.netDevices = { eth1: { name: "x" }, x: {} }), 'config.json: linux.netDevices: "eth1" and "x" would both be named "x" in the container');
  });

  test("mounts: idmapped, proc-safety, options, destinations, bind sources", () => {
    const add = (m: NonNullable<Spec["mounts"]>[number]) => (s: Spec) => s.mounts!.push(m);
    const n = defaultSpec({ cgroupNamespace: false }).mounts!.length;
    const idmap = [{ containerID: 0, hostID: 1000, size: 1 }];
    validateSpec(spec(add({ destination: "/data", type: "bind", source: "/srv/data", uidMappings: idmap, gidMappings: idmap })), HOST, TTY_OK);
    refusedSpec(add({ destination: "/data", type: "tmpfs", source: "tmpfs", uidMappings: idmap, gidMappings: idmap }), `config.json: mounts[${n}]: invalid mount /data: id-mapped mounts are only supported for bind-mounts`);
    refusedSpec(add({ destination: "/data", type: "bind", source: "/srv/data", options: ["ridmap"] }), `config.json: mounts[${n}]: invalid mount /data: id-mapped mounts must have both uid and gid mappings specified`);
    refusedSpec(add({ destination: "/proc/sys", type: "tmpfs", source: "tmpfs" }), `config.json: mounts[${n}]: check proc-safety of /proc/sys mount: "/proc/sys" cannot be mounted because it is inside /proc`);
    refusedSpec((s) => (s.mounts![0] = { destination: "/proc", type: "bind", source: "/srv/data", options: ["rbind"] }), 'config.json: mounts[0]: check proc-safety of /proc mount: "/proc" cannot be mounted because it is not of type proc');
    validateSpec(spec((s) => (s.mounts![0] = { destination: "/proc", type: "bind", source: "/proc", options: ["rbind"] })), HOST, TTY_OK); // a procfs may be bound over /proc
    validateSpec(spec(add({ destination: "/data", type: "bind", source: "/srv/data", options: ["rbind", "rro", "rnosuid"] })), HOST, TTY_OK); // the recursive options (mount_setattr)
    refusedSpec(add({ destination: "/data", type: "bind", source: "/srv/data", options: ["tmpcopyup"] }), `config.json: mounts[${n}]: mount option "tmpcopyup" is for tmpfs mounts only`);
    refusedSpec(add({ destination: "/../../etc", type: "tmpfs", source: "tmpfs" }), `config.json: mounts[${n}]: "/../../etc" escapes the container's root filesystem`);
    refusedSpec(add({ destination: "/data", type: "none", options: ["bind"] }), `config.json: mounts[${n}]: a bind mount needs a source`);
    refusedSpec(add({ destination: "/data", type: "bind", source: "/gone" }), `config.json: mounts[${n}]: bind source /gone does not exist`);
    refusedSpec(add({ destination: "/data", type: "none", source: "rel/gone", options: ["rbind"] }), `config.json: mounts[${n}]: bind source /bundle/rel/gone does not exist`);
  });

  test("devices and cwd: inside the container, devices under /dev", () => {
    refusedSpec((s) => (s.linux!.devices = [{ path: "/etc/fuse", type: "c", major: 10, minor: 229 }]), "config.json: linux.devices[0]: path /etc/fuse is not under /dev");
    refusedSpec((s) => (s.linux!.devices = [{ path: "/dev/../../x", type: "c", major: 10, minor: 229 }]), 'config.json: linux.devices[0]: "/dev/../../x" escapes the container\'s root filesystem');
    // with the host's /dev bound in, no device is made, so none is checked (as before)
    validateSpec(
      spec((s) => {
        s.mounts![1] = { destination: "/dev", type: "bind", source: "/srv/data", options: ["rbind"] };
        s.linux!.devices = [{ path: "/etc/fuse", type: "c", major: 10, minor: 229 }];
      }),
      HOST,
      TTY_OK,
    );
    refusedSpec((s) => (s.process!.cwd = "/../.."), 'config.json: process.cwd: "/../.." escapes the container\'s root filesystem');
  });

  test("console: a terminal needs a socket or tsrun as receiver; a socket needs a terminal", () => {
    const tty = "cannot allocate tty if runc will detach without setting console socket";
    const notty = "cannot use console socket if runc will not detach or allocate tty";
    refusedSpec(() => undefined, tty, HOST, { socket: false, receiver: false });
    validateSpec(spec(() => undefined), HOST, { socket: false, receiver: true }); // run in the foreground, or the shim
    refusedSpec((s) => (s.process!.terminal = false), notty, HOST, { socket: true, receiver: false });
    validateSpec(spec((s) => (s.process!.terminal = false)), HOST, { socket: false, receiver: false });
  });
});

describe("validateProcess (exec)", () => {
  const proc = (patch: (p: Process) => void): Process => {
    const p = JSON.parse(JSON.stringify(defaultSpec({}).process)) as Process;
    patch(p);
    return p;
  };
  test("unsupported fields, as exec words them", () => {
    const cases: [(p: Process) => void, string][] = [
      [(p) => (p.execCPUAffinity = { final: "1-0" }), "exec: bad CPUAffinity.Final: invalid range: 1-0"],
      [(p) => (p.scheduler = { policy: "SCHED_IDLE", priority: 3 }), "exec: scheduler.priority can only be specified for SchedFIFO or SchedRR policy"],
      [(p) => (p.selinuxLabel = "x"), "exec: process.selinuxLabel is set but SELinux is not enabled on this host"],
    ];
    for (const [patch, message] of cases) refused(() => validateProcess(proc(patch), { socket: false, receiver: true }), message);
    validateProcess(proc((p) => (p.apparmorProfile = "x")), { socket: false, receiver: true });
    validateProcess(proc((p) => (p.selinuxLabel = "x")), { socket: false, receiver: true }, { apparmor: false, apparmorAttr: "exec", selinux: true });
  });
  test("exec -t -d needs --console-socket; --console-socket needs -t", () => {
    refused(() => validateProcess(proc(() => undefined), { socket: false, receiver: false }), "cannot allocate tty if runc will detach without setting console socket");
    refused(() => validateProcess(proc((p) => (p.terminal = false)), { socket: true, receiver: true }), "cannot use console socket if runc will not detach or allocate tty");
    validateProcess(proc(() => undefined), { socket: false, receiver: true });
    validateProcess(proc(() => undefined), { socket: true, receiver: false });
  });
});

describe("hostFacts", () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-facts-"));
    dirs.push(d);
    return d;
  };

  test("bind sources (as written, resolved against the bundle), kcore, uid, namespaces joined that are tsrun's own", () => {
    const bundle = tmp();
    fs.mkdirSync(path.join(bundle, "rootfs"));
    fs.mkdirSync(path.join(bundle, "vol"));
    const s = spec((x) => {
      x.mounts!.push(
        { destination: "/a", type: "bind", source: "vol" },
        { destination: "/b", type: "none", source: "/nonexistent/tsrun-facts", options: ["rbind"] },
        { destination: "/c", type: "bind", source: "/proc" },
        { destination: "/d", type: "tmpfs", source: "tmpfs" },
      );
      x.linux!.namespaces!.find((n) => n.type === "network")!.path = "/proc/self/ns/net";
      x.linux!.namespaces!.find((n) => n.type === "ipc")!.path = "/nonexistent/ns/ipc";
    });
    const f = hostFacts(s, bundle, path.join(bundle, "rootfs"));
    assert.deepEqual(f.bindSources, {
      vol: { path: path.join(bundle, "vol"), exists: true, procfs: false },
      "/nonexistent/tsrun-facts": { path: "/nonexistent/tsrun-facts", exists: false, procfs: false },
      "/proc": { path: "/proc", exists: true, procfs: true },
    });
    assert.deepEqual(f.sharedNamespaces, ["network"], "tsrun's own network namespace; a path that cannot be opened is not");
    assert.equal(f.hasKcore, fs.existsSync("/proc/kcore"));
    assert.equal(f.uid, process.getuid!());
    assert.equal(f.home, "/", "no /etc/passwd in the rootfs");
  });

  test("HOME: the process user's entry in the rootfs's /etc/passwd, never a file outside the rootfs", () => {
    const rootfs = tmp();
    fs.mkdirSync(path.join(rootfs, "etc"));
    fs.writeFileSync(path.join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnohome:x:1001:1001:::/bin/sh\n");
    const user = (uid: number) => ({ cwd: "/", args: ["sh"], user: { uid, gid: 0 } });
    assert.equal(processFacts(rootfs, user(0)).home, "/root");
    assert.equal(processFacts(rootfs, user(1000)).home, "/home/app");
    assert.equal(processFacts(rootfs, user(1001)).home, "/");
    assert.equal(processFacts(rootfs, user(4242)).home, "/");
    const other = tmp();
    const outside = tmp();
    fs.mkdirSync(path.join(other, "etc"));
    fs.writeFileSync(path.join(outside, "passwd"), "root:x:0:0:root:/outside:/bin/sh\n");
    fs.symlinkSync(path.join(outside, "passwd"), path.join(other, "etc/passwd"));
    assert.equal(processFacts(other, user(0)).home, "/", "a passwd that resolves outside the rootfs is not read");
  });
});
