// Golden plans: buildPlan/buildExecPlan for the main config shapes, from fixed HostFacts, compared op by op
// (plan.describe(), one line per op) with test/golden/<name>.txt. A change to what tsrun does for a config
// shows up here as a diff to review. After an intended change: TSRUN_UPDATE_GOLDEN=1 rewrites the files
// (then read the diff: it must read as what runc would do).
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { type BuildOptions, type ExecBuildOptions, buildExecPlan, buildPlan } from "../src/plan/build";
import type { HostFacts } from "../src/plan/host";
import { CLONE } from "../src/plan/linux";
import type { Plan } from "../src/plan/writer";
import { defaultSpec } from "../src/spec/default";
import type { Process, Spec } from "../src/spec/schema";
import { validateProcess, validateSpec } from "../src/spec/validate";

const GOLDEN = path.resolve(__dirname, "..", "..", "test", "golden");
const BUNDLE = "/run/bundles/c1";

// A root tsrun on a host with /proc/kcore; the rootfs's /etc/passwd gives uid 0 the home /root.
export const HOST: HostFacts = {
  uid: 0,
  home: "/root",
  hasKcore: true,
  sharedNamespaces: [],
  bindSources: {
    "/srv/data": { path: "/srv/data", exists: true, procfs: false },
    "volumes/cache": { path: `${BUNDLE}/volumes/cache`, exists: true, procfs: false },
    "/sys": { path: "/sys", exists: true, procfs: false },
  },
};

// The options create passes, for a container "c1" on a hybrid host (v1 controllers + v2 at unified).
function createOptions(spec: Spec, more: Partial<BuildOptions> = {}): BuildOptions {
  return {
    id: "c1",
    spec,
    bundle: BUNDLE,
    rootfs: `${BUNDLE}/rootfs`,
    noPivot: false,
    noNewKeyring: false,
    extraFds: 0,
    syncFd: 3,
    stateDirFd: 4,
    ...(spec.process?.terminal ? { consoleFd: 5 } : {}),
    cgroupProcs: ["/sys/fs/cgroup/memory/tsrun/c1/cgroup.procs", "/sys/fs/cgroup/unified/tsrun/c1/cgroup.procs"],
    cgroupDirs: { memory: "/sys/fs/cgroup/memory/tsrun/c1", "cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/tsrun/c1", "": "/sys/fs/cgroup/unified/tsrun/c1" },
    cgroupMode: "hybrid",
    host: HOST,
    warn: () => undefined,
    ...more,
  };
}

function spec(patch: (s: Spec) => void = () => undefined, cgroupNamespace = false): Spec {
  const s = defaultSpec({ cgroupNamespace });
  patch(s);
  return s;
}

export interface GoldenCase {
  name: string;
  what: string;
  plan: (host: HostFacts) => Plan;
}

function create(name: string, what: string, s: Spec, more: Partial<BuildOptions> = {}, facts: Partial<HostFacts> = {}): GoldenCase {
  return {
    name,
    what,
    plan: (base) => {
      const host = { ...base, ...facts };
      validateSpec(s, host, { socket: s.process?.terminal === true, receiver: false });
      return buildPlan({ ...createOptions(s, more), host });
    },
  };
}

export const CASES: GoldenCase[] = [
  create("default", "the `tsrun spec` config (terminal, read-only root, the default mounts, masked and read-only paths)", spec()),
  create(
    "userns",
    "new user, cgroup and time namespaces with mappings; an id-mapped bind (prepared on the host); a non-root user with groups; hostname and domainname; a v2 host; no /proc/kcore",
    spec((s) => {
      s.process!.terminal = false;
      s.process!.user = { uid: 1000, gid: 1000, additionalGids: [10, 27] };
      s.domainname = "example.org";
      s.linux!.namespaces!.push({ type: "user" }, { type: "time" });
      s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.linux!.timeOffsets = { monotonic: { secs: 86400, nanosecs: 0 }, boottime: { secs: -60, nanosecs: 500 } };
      s.mounts!.push({ destination: "/shared", type: "bind", source: "/srv/data", options: ["rbind", "ridmap"] }); // id-mapped with the container's maps
    }, true),
    { cgroupMode: "v2", cgroupDirs: { "": "/sys/fs/cgroup/tsrun/c1" }, cgroupProcs: ["/sys/fs/cgroup/tsrun/c1/cgroup.procs"] },
    { home: "/home/app", hasKcore: false }, // uid 1000's home in the rootfs's /etc/passwd; a kernel without /proc/kcore
  ),
  create(
    "no-mount-ns",
    "no mount namespace (and so no mounts, masked or read-only paths, read-only root): no mount made, the rootfs entered by chroot; a terminal without /dev/console",
    spec((s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "mount");
      s.mounts = [];
      s.linux!.maskedPaths = [];
      s.linux!.readonlyPaths = [];
      s.root!.readonly = false;
    }),
  ),
  {
    name: "rootless",
    what: "`tsrun spec --rootless` run by uid 1000: /sys bound from the host, no setgroups in the user namespace (additional gids are refused there, as runc)",
    plan: (host) => {
      const s = defaultSpec({ rootless: true, cgroupNamespace: false });
      s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
      s.process!.terminal = false;
      const rootless = { ...host, uid: 1000 };
      validateSpec(s, rootless, { socket: false, receiver: false });
      return buildPlan({ ...createOptions(s), host: rootless });
    },
  },
  create(
    "joined-namespaces",
    "network and ipc joined by path (not tsrun's own), a new uts; net and ipc sysctls; oom_score_adj, rlimits",
    spec((s) => {
      s.process!.terminal = false;
      s.process!.oomScoreAdj = -500;
      s.process!.rlimits = [
        { type: "RLIMIT_NOFILE", hard: 4096, soft: 1024 },
        { type: "RLIMIT_CORE", hard: 2 ** 64 - 1, soft: 0 },
      ];
      s.linux!.namespaces = [{ type: "pid" }, { type: "network", path: "/var/run/netns/blue" }, { type: "ipc", path: "/proc/4242/ns/ipc" }, { type: "uts" }, { type: "mount" }];
      s.linux!.sysctl = { "net.ipv4.ip_forward": "1", "net/ipv4/conf/eth0.100/forwarding": "0", "kernel.shmmax": "65536", "kernel.domainname": "example.org" };
    }),
  ),
  create(
    "mounts",
    "read-only root, extra masked/read-only paths, tmpfs with tmpcopyup, a read-only tmpfs (remounted read-only after pivot_root), absolute and bundle-relative binds (one with recursive attributes), a device, rshared root propagation, personality",
    spec((s) => {
      s.process!.terminal = false;
      s.process!.cwd = "/work/dir";
      s.process!.env = ["PATH=/bin", "HOME=/home/app"];
      s.linux!.maskedPaths!.push("/proc/mystery");
      s.linux!.readonlyPaths!.push("/etc");
      s.linux!.rootfsPropagation = "rshared";
      s.linux!.personality = { domain: "LINUX32" };
      s.linux!.devices = [{ path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o600, uid: 0, gid: 0 }];
      s.mounts!.push(
        { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "tmpcopyup", "mode=1777", "size=10m"] },
        { destination: "/data", type: "bind", source: "/srv/data", options: ["rbind", "ro", "rprivate", "rnosuid", "rnoatime"] },
        { destination: "/cache/", type: "none", source: "volumes/cache", options: ["bind", "nosuid", "x-tsrun.comment"] },
        { destination: "/run", type: "tmpfs", source: "tmpfs", options: ["ro", "nosuid"] },
      );
    }),
  ),
  create(
    "seccomp-listener",
    "a seccomp filter with an SCMP_ACT_NOTIFY listener and no no_new_privs: CAP_SYS_ADMIN held until the filter is loaded",
    spec((s) => {
      s.process!.terminal = false;
      s.process!.noNewPrivileges = false;
    }),
    { seccomp: { program: Buffer.alloc(8 * 12), flags: 8 } },
  ),
  create(
    "hooks",
    "prestart/createRuntime (run by tsrun at SYNC_HOOKS), createContainer and startContainer (run by the init)",
    spec((s) => {
      s.process!.terminal = false;
      s.hooks = {
        prestart: [{ path: "/usr/bin/netsetup" }],
        createRuntime: [{ path: "/usr/bin/true" }],
        createContainer: [{ path: "/usr/libexec/oci/hooks/ldconfig", args: ["ldconfig", "-r"], env: ["LANG=C"], timeout: 5 }],
        startContainer: [{ path: "/bin/echo" }, { path: "/bin/sh", args: ["sh", "-c", "date"] }],
        poststart: [{ path: "/bin/true" }],
        poststop: [{ path: "/bin/true" }],
      };
    }),
  ),
  create(
    "seccomp-hooks",
    "a seccomp filter (no no_new_privs) and a startContainer hook: the filter loaded (and CAP_SYS_ADMIN dropped) before the hook runs, as in runc",
    spec((s) => {
      s.process!.terminal = false;
      s.process!.noNewPrivileges = false;
      s.hooks = { startContainer: [{ path: "/bin/true", env: [] }] };
    }),
    { seccomp: { program: Buffer.alloc(8 * 12), flags: 0 } },
  ),
  create(
    "sched",
    "process.scheduler and process.ioPriority (set as root before the user, runc's setupScheduler/setupIOPriority); execCPUAffinity is for exec only",
    spec((s) => {
      s.process!.terminal = false;
      s.process!.scheduler = { policy: "SCHED_FIFO", priority: 10, flags: ["SCHED_FLAG_RESET_ON_FORK"] };
      s.process!.ioPriority = { class: "IOPRIO_CLASS_RT", priority: 2 };
      s.process!.execCPUAffinity = { initial: "0-1", final: "1" };
    }),
  ),
  create("no-pivot", "--no-pivot and --no-new-keyring, with two --preserve-fds", spec((s) => (s.process!.terminal = false)), { noPivot: true, noNewKeyring: true, extraFds: 2, syncFd: 5, stateDirFd: 6 }),
  create("init", "--init: a reaping PID 1 in front of the user process", spec((s) => (s.process!.terminal = false)), { init: true }),
  {
    name: "exec-tty",
    what: "exec -t --cap CAP_SYS_PTRACE --user 1000:1000 into the default container (its pid, net, ipc, uts, mount namespaces differ from tsrun's)",
    plan: (host) => {
      const s = spec();
      const proc: Process = JSON.parse(JSON.stringify(s.process)) as Process;
      proc.args = ["/bin/sh", "-l"];
      proc.terminal = true;
      proc.user = { uid: 1000, gid: 1000 };
      proc.env = [...(proc.env ?? []), "FOO=bar"];
      for (const set of ["bounding", "effective", "permitted"] as const) proc.capabilities![set] = [...proc.capabilities![set]!, "CAP_SYS_PTRACE"];
      validateProcess(proc, { socket: false, receiver: true });
      const o: ExecBuildOptions = {
        spec: s,
        proc,
        host: { uid: host.uid, home: "/home/app" },
        extraFds: 0,
        syncFd: 3,
        pidFd: 4,
        rootFd: 5,
        consoleFd: 6,
        nsFlags: CLONE.NEWPID | CLONE.NEWNET | CLONE.NEWIPC | CLONE.NEWUTS | CLONE.NEWNS,
        cgroupProcs: ["/sys/fs/cgroup/memory/tsrun/c1/cgroup.procs", "/sys/fs/cgroup/unified/tsrun/c1/cgroup.procs"],
        warn: () => undefined,
      };
      return buildExecPlan(o);
    },
  },
];

function render(c: GoldenCase): string {
  return `# ${c.name}: ${c.what}\n` + c.plan(HOST).describe().join("\n") + "\n";
}

describe("golden plans", () => {
  for (const c of CASES) {
    test(`${c.name}: ${c.what}`, () => {
      const file = path.join(GOLDEN, `${c.name}.txt`);
      const text = render(c);
      if (process.env.TSRUN_UPDATE_GOLDEN === "1") {
        fs.mkdirSync(GOLDEN, { recursive: true });
        fs.writeFileSync(file, text);
        return;
      }
      assert.ok(fs.existsSync(file), `${file} is missing: run with TSRUN_UPDATE_GOLDEN=1 to write it`);
      assert.equal(text, fs.readFileSync(file, "utf8"), `the plan differs from ${file} (TSRUN_UPDATE_GOLDEN=1 rewrites it after an intended change)`);
    });
  }

  test("every golden file belongs to a case", () => {
    const names = new Set(CASES.map((c) => `${c.name}.txt`));
    for (const f of fs.readdirSync(GOLDEN)) assert.ok(names.has(f), `test/golden/${f} has no case`);
  });

  test("a plan depends only on its arguments: the same inputs give the same bytes", () => {
    for (const c of CASES) assert.deepEqual(c.plan(HOST).encode(), c.plan(HOST).encode(), c.name);
  });
});
