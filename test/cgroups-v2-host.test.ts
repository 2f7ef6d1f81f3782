// A systemd host's pure cgroup v2 tree, faked in a temporary directory: the root offers every controller but
// enables only "memory pids" for its children, and tsrun runs in a session scope that holds processes. Shows
// where a container's cgroup goes (runc's fs2 defaultDirPath), what creating it writes (runc's fs2
// CreateCgroupPath: every controller enabled in the root and each ancestor), each linux.resources field in
// its v2 file, and PSI in the statistics. Every write is recorded with its directory.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, afterEach, beforeEach, describe, mock, test } from "node:test";
import * as files from "../src/cgroups/files";
import type { CgroupLayout } from "../src/cgroups/layout";
import { CgroupManager } from "../src/cgroups/manager";
import { resolveCgroupPaths } from "../src/cgroups/paths";
import { goJson } from "../src/gojson";
import { memoryEventsOom } from "../src/runtime/events";
import type { LinuxResources } from "../src/spec/schema";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-v2host-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ALL = "cpuset cpu io memory hugetlb pids rdma misc";
const ENABLE_ALL = "+cpuset +cpu +io +memory +hugetlb +pids +rdma +misc";
const SESSION = "/user.slice/user-0.slice/session-1.scope";

let seq = 0;
// A fresh systemd-like tree: root (all controllers, "memory pids" enabled), user.slice, user-0.slice, the
// session scope holding a process (tsrun's own cgroup), and system.slice.
function systemdTree(): string {
  const root = path.join(tmp, `root${seq++}`);
  const dir = (rel: string, f: Record<string, string>) => {
    fs.mkdirSync(path.join(root, rel), { recursive: true });
    for (const [k, v] of Object.entries(f)) fs.writeFileSync(path.join(root, rel, k), v);
  };
  dir(".", { "cgroup.controllers": `${ALL}\n`, "cgroup.subtree_control": "memory pids\n", "cgroup.procs": "1\n" });
  const inner = { "cgroup.controllers": "memory pids\n", "cgroup.subtree_control": "memory pids\n", "cgroup.type": "domain\n", "cgroup.procs": "" };
  dir("user.slice", inner);
  dir("user.slice/user-0.slice", inner);
  dir("user.slice/user-0.slice/session-1.scope", { ...inner, "cgroup.subtree_control": "", "cgroup.procs": "4242\n" });
  dir("system.slice", inner);
  return root;
}

const layoutOf = (root: string, own = SESSION, mode: CgroupLayout["mode"] = "v2"): CgroupLayout => ({ mode, v1: [], unified: { mountPoint: root, root: "/" }, own: new Map([["", own]]) });

interface Write {
  dir: string;
  file: string;
  value: string;
}
let writes: Write[] = [];
let root = "";
let refuse = new Map<string, string>(); // "relative dir|file=value" -> errno name (that write fails once)
const realWrite = files.writeCgroupFile;

beforeEach(() => {
  writes = [];
  refuse = new Map();
  mock.method(files, "writeCgroupFile", (dir: string, file: string, value: string) => {
    const rel = path.relative(root, dir) || ".";
    const code = refuse.get(`${rel}|${file}=${value}`);
    if (code) {
      refuse.delete(`${rel}|${file}=${value}`);
      writes.push({ dir: rel, file, value: `${value} (refused: ${code})` });
      throw new files.CgroupFileError(`write ${JSON.stringify(value)} to ${path.join(dir, file)}: simulated ${code}`, code, path.join(dir, file));
    }
    if (!fs.existsSync(path.join(dir, file))) return realWrite(dir, file, value);
    writes.push({ dir: rel, file, value });
    fs.writeFileSync(path.join(dir, file), value);
  });
});
afterEach(() => mock.restoreAll());

const triples = () => writes.map((w) => `${w.dir} ${w.file}=${w.value}`);

// The files the kernel gives a new v2 cgroup with every controller enabled.
function kernelFiles(dir: string): void {
  const f: Record<string, string> = {
    "cgroup.controllers": ALL,
    "cgroup.type": "domain\n",
    "cgroup.procs": "",
    "memory.max": "max\n",
    "memory.swap.max": "max\n",
    "memory.low": "0\n",
    "memory.high": "max\n",
    "memory.current": "0\n",
    "cpu.weight": "100\n",
    "cpu.max": "max 100000\n",
    "cpu.max.burst": "0\n",
    "cpu.idle": "0\n",
    "cpuset.cpus": "",
    "cpuset.mems": "",
    "io.weight": "default 100\n",
    "io.max": "",
    "pids.max": "max\n",
    "hugetlb.2MB.max": "max\n",
    "hugetlb.2MB.rsvd.max": "max\n",
    "rdma.max": "",
    "cgroup.max.depth": "max\n",
  };
  for (const [k, v] of Object.entries(f)) fs.writeFileSync(path.join(dir, k), v);
}

describe("where the container's cgroup goes on a v2-only host (runc's fs2 defaultDirPath)", () => {
  test("unset and relative cgroupsPath: under the parent of tsrun's own cgroup; absolute: from the root", () => {
    const r = "/sys/fs/cgroup";
    const l = layoutOf(r);
    assert.deepEqual(resolveCgroupPaths(undefined, "c1", l), { "": `${r}/user.slice/user-0.slice/c1` });
    assert.deepEqual(resolveCgroupPaths("", "c1", l), { "": `${r}/user.slice/user-0.slice/c1` });
    assert.equal(resolveCgroupPaths("pods/c1", "c1", l)[""], `${r}/user.slice/user-0.slice/pods/c1`);
    assert.equal(resolveCgroupPaths("../../../x", "c1", l)[""], `${r}/user.slice/user-0.slice/x`, "cleaned as if rooted: never above the parent");
    assert.equal(resolveCgroupPaths("/machine.slice/c1", "c1", l)[""], `${r}/machine.slice/c1`);
    // run from the root cgroup (a container's cgroup namespace): the root's parent is the root
    assert.equal(resolveCgroupPaths(undefined, "c1", layoutOf(r, "/"))[""], `${r}/c1`);
    assert.equal(resolveCgroupPaths(undefined, "c1", layoutOf(r, "/system.slice"))[""], `${r}/c1`);
    // a hybrid host's v2 tree: under its root (runc's fs: the hybrid mount point, whatever our own cgroup)
    assert.equal(resolveCgroupPaths(undefined, "c1", layoutOf("/sys/fs/cgroup/unified", SESSION, "hybrid"))[""], "/sys/fs/cgroup/unified/c1");
    assert.equal(resolveCgroupPaths("/abs/c1", "c1", layoutOf("/sys/fs/cgroup/unified", SESSION, "hybrid"))[""], "/sys/fs/cgroup/unified/abs/c1");
  });
});

describe("creating the cgroup on a systemd host (runc's fs2 CreateCgroupPath)", () => {
  test("every controller the root offers is enabled in the root and each ancestor; the new leaf is not written", async () => {
    root = systemdTree();
    const m = CgroupManager.forContainer(undefined, "c1", layoutOf(root));
    const leaf = path.join(root, "user.slice/user-0.slice/c1");
    assert.deepEqual(m.directories(), { "": leaf });
    assert.deepEqual(m.planned().created, [leaf]);
    await m.create({ resources: { cpu: { quota: 50000 } } });
    assert.deepEqual(triples(), [`. cgroup.subtree_control=${ENABLE_ALL}`, `user.slice cgroup.subtree_control=${ENABLE_ALL}`, `user.slice/user-0.slice cgroup.subtree_control=${ENABLE_ALL}`]);
    assert.deepEqual(m.record().created, [leaf]);
    assert.equal(fs.readFileSync(path.join(root, SESSION, "cgroup.subtree_control"), "utf8"), "", "tsrun's own cgroup (it holds processes) is left alone");
    await m.remove();
    assert.equal(fs.existsSync(leaf), false);
    assert.equal(fs.existsSync(path.join(root, "user.slice/user-0.slice")), true, "a pre-existing ancestor stays");
  });

  test("an absolute path: missing ancestors are made and enabled too, deepest last", async () => {
    root = systemdTree();
    const m = CgroupManager.forContainer("/machine.slice/pod1/c1", "c1", layoutOf(root));
    await m.create();
    assert.deepEqual(triples(), [`. cgroup.subtree_control=${ENABLE_ALL}`]);
    assert.deepEqual(
      m.record().created.map((d) => path.relative(root, d)),
      ["machine.slice", "machine.slice/pod1", "machine.slice/pod1/c1"],
    );
    // (a real kernel gives the new directories their files: a fake one without subtree_control fails
    // the write, which runc and tsrun both ignore — the one-by-one retries are refused as well)
    await m.remove();
    assert.equal(fs.existsSync(path.join(root, "machine.slice")), false, "created ancestors go with it");
  });

  test("a refused all-at-once write is retried one controller at a time, each refusal ignored", async () => {
    root = systemdTree();
    refuse.set(`user.slice|cgroup.subtree_control=${ENABLE_ALL}`, "ENOENT");
    refuse.set("user.slice|cgroup.subtree_control=+rdma", "ENOENT");
    const m = CgroupManager.forContainer("/user.slice/c2", "c2", layoutOf(root));
    await m.create({ resources: { memory: { limit: 1 << 20 } } });
    assert.deepEqual(triples(), [
      `. cgroup.subtree_control=${ENABLE_ALL}`,
      `user.slice cgroup.subtree_control=${ENABLE_ALL} (refused: ENOENT)`,
      "user.slice cgroup.subtree_control=+cpuset",
      "user.slice cgroup.subtree_control=+cpu",
      "user.slice cgroup.subtree_control=+io",
      "user.slice cgroup.subtree_control=+memory",
      "user.slice cgroup.subtree_control=+hugetlb",
      "user.slice cgroup.subtree_control=+pids",
      "user.slice cgroup.subtree_control=+rdma (refused: ENOENT)",
      "user.slice cgroup.subtree_control=+misc",
    ]);
  });

  test("a 'domain invalid' ancestor: refused with domain controllers, made threaded without", async () => {
    root = systemdTree();
    fs.writeFileSync(path.join(root, "system.slice/cgroup.type"), "domain invalid\n");
    const m = CgroupManager.forContainer("/system.slice/c3", "c3", layoutOf(root));
    await assert.rejects(m.create({ resources: { memory: { limit: 1 << 20 } } }), new Error(`cannot enter cgroupv2 "${path.join(root, "system.slice")}" with domain controllers -- it is in an invalid state`));
    writes = [];
    await m.create({ resources: { pids: { limit: 10 }, cpu: { cpus: "0" } } });
    assert.deepEqual(triples(), [`. cgroup.subtree_control=${ENABLE_ALL}`, "system.slice cgroup.type=threaded", `system.slice cgroup.subtree_control=${ENABLE_ALL}`]);
    await m.remove();
  });

  test("a threaded ancestor takes no domain controller; the new directory is removed on failure", async () => {
    root = systemdTree();
    fs.mkdirSync(path.join(root, "system.slice/t"));
    fs.writeFileSync(path.join(root, "system.slice/t/cgroup.type"), "threaded\n");
    const m = CgroupManager.forContainer("/system.slice/t/x/c4", "c4", layoutOf(root));
    for (const r of [{ cpu: { shares: 1024 } }, { cpu: { idle: 1 } }, { blockIO: { weight: 100 } }, { hugepageLimits: [{ pageSize: "2MB", limit: 0 }] }] as LinuxResources[]) {
      await assert.rejects(m.create({ resources: r }), /^Error: cannot enter cgroupv2 ".*\/system\.slice\/t" with domain controllers -- it is in threaded mode$/);
    }
    assert.equal(fs.existsSync(path.join(root, "system.slice/t/x")), false);
    await m.create({ resources: { pids: { limit: 3 } } });
    await m.remove();
  });

  test("without the root's cgroup.controllers nothing is made", async () => {
    root = systemdTree();
    fs.rmSync(path.join(root, "cgroup.controllers"));
    const m = CgroupManager.forContainer("/a/b", "b", layoutOf(root));
    await assert.rejects(m.create(), /read .*cgroup\.controllers: no such file or directory/i);
    assert.equal(fs.existsSync(path.join(root, "a")), false);
  });
});

describe("every linux.resources field in its v2 file, then update", () => {
  test("memory (+swap, low), checkBeforeUpdate, cpu (weight, max, burst, idle), cpuset, io (weight, throttles), pids, hugetlb (+rsvd), rdma, unified", async () => {
    root = systemdTree();
    const m = CgroupManager.forContainer("rel", "c5", layoutOf(root));
    await m.create();
    const dir = path.join(root, "user.slice/user-0.slice/rel");
    kernelFiles(dir);
    writes = [];
    const warnings: string[] = [];
    const resources: LinuxResources = {
      memory: { limit: 256 << 20, swap: 512 << 20, reservation: 64 << 20 },
      cpu: { shares: 2048, quota: 20000, period: 50000, burst: 10000, idle: 0, cpus: "0-1", mems: "0" },
      blockIO: { weight: 500, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1 << 20 }], throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 100 }] },
      pids: { limit: 32 },
      hugepageLimits: [{ pageSize: "2MB", limit: 4 << 20 }],
      rdma: { mlx5_0: { hcaHandles: 3 } },
      unified: { "memory.high": String(200 << 20), "cgroup.max.depth": "3" },
    };
    m.apply(resources, { warn: (w) => warnings.push(w), skipDevices: true });
    const rel = "user.slice/user-0.slice/rel";
    assert.deepEqual(
      triples(),
      [
        "pids.max=32",
        `memory.swap.max=${256 << 20}`,
        `memory.max=${256 << 20}`,
        `memory.low=${64 << 20}`,
        "io.weight=4950",
        "io.max=8:0 rbps=1048576",
        "io.max=8:0 wiops=100",
        "cpu.idle=0",
        "cpu.weight=174",
        "cpu.max.burst=10000",
        "cpu.max=20000 50000",
        "cpuset.cpus=0-1",
        "cpuset.mems=0",
        `hugetlb.2MB.max=${4 << 20}`,
        `hugetlb.2MB.rsvd.max=${4 << 20}`,
        "rdma.max=mlx5_0 hca_handle=3",
        `memory.high=${200 << 20}`,
        "cgroup.max.depth=3",
      ].map((w) => `${rel} ${w}`),
    );
    assert.deepEqual(warnings, []);
    // update: unlimited memory and swap, cpu quota off keeping the period, a lower pid limit
    writes = [];
    await m.update({ memory: { limit: -1, swap: -1 }, cpu: { quota: -1, period: 50000 }, pids: { limit: -1 } }, { warn: () => {}, skipDevices: true });
    assert.deepEqual(triples(), ["pids.max=max", "memory.swap.max=max", "memory.max=max", "cpu.max=max 50000"].map((w) => `${rel} ${w}`));
    // checkBeforeUpdate refuses a limit at or below memory.current
    fs.writeFileSync(path.join(dir, "memory.current"), "8388608\n");
    await assert.rejects(m.update({ memory: { limit: 4 << 20, checkBeforeUpdate: true } }, { warn: () => {}, skipDevices: true }), /rejecting memory limit 4194304 <= usage 8388608/);
    // unified refuses a path and names a controller the cgroup lacks
    await assert.rejects(m.update({ unified: { "../cgroup.procs": "1" } }, { warn: () => {}, skipDevices: true }), /unified resource must be a file name \(no slashes\)/);
    fs.writeFileSync(path.join(dir, "cgroup.controllers"), "memory pids\n");
    await assert.rejects(m.update({ unified: { "io.latency": "8:0 target=10" } }, { warn: () => {}, skipDevices: true }), /controller "io" not available/);
    await assert.rejects(m.update({ cpu: { quota: 1000 } }, { warn: () => {}, skipDevices: true }), /linux\.resources\.cpu: this container has no cpu cgroup \(cpu is not in .*\/rel\/cgroup\.controllers\)/);
    fs.rmSync(dir, { recursive: true }); // a fake cgroup's files are regular files: rmdir would refuse it
  });
});

describe("statistics on v2: PSI for cpu, memory and io, as runc's events prints them", () => {
  test("some/full per resource; zeros leave {}; no file, none; a malformed value names the file", () => {
    const dir = path.join(tmp, `stats${seq++}`);
    fs.mkdirSync(dir);
    const put = (f: string, v: string) => fs.writeFileSync(path.join(dir, f), v);
    put("cgroup.controllers", "cpu memory io pids");
    put("cgroup.procs", "");
    put("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n");
    put("cpu.pressure", "some avg10=0.50 avg60=0.25 avg300=0.10 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    put("memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    put("memory.stat", "anon 4096\nfile 0\n");
    put("memory.current", "4096\n");
    put("memory.max", "8192\n");
    put("memory.events", "low 0\nhigh 3\nmax 2\noom 1\noom_kill 1\n");
    put("io.pressure", "some avg10=1.00 avg60=0.00 avg300=0.00 total=7\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=5\n");
    put("io.stat", "");
    put("pids.current", "0\n");
    put("pids.max", "max\n");
    const m = CgroupManager.fromRecord({ dirs: { "": dir }, created: [] });
    const s = m.stats();
    assert.equal(goJson(s.cpu), '{"usage":{"total":10000,"kernel":4000,"user":6000},"psi":{"some":{"avg10":0.5,"avg60":0.25,"avg300":0.1,"total":12345}}}');
    assert.equal(goJson(s.memory), '{"usage":{"limit":8192,"usage":4096,"failcnt":0},"swap":{"limit":8192,"usage":4096,"failcnt":0},"raw":{"anon":4096,"file":0},"psi":{}}');
    assert.equal(goJson(s.blkio), '{"psi":{"some":{"avg10":1,"avg60":0,"avg300":0,"total":7},"full":{"avg10":1,"avg60":0,"avg300":0,"total":5}}}');
    assert.equal(m.oomKillCount(), 1n, "memory.events oom_kill: the count `events` turns into oom events");
    fs.rmSync(path.join(dir, "io.pressure"));
    assert.equal(m.stats().blkio.psi, undefined);
    put("cpu.pressure", "some avg10=x avg60=0 avg300=0 total=0\n");
    assert.throws(() => m.stats(), /unable to parse .*\/cpu\.pressure: invalid avg10 PSI value: "x"/);
    put("cpu.pressure", "some avg10\n");
    assert.throws(() => m.stats(), /invalid psi data: "avg10"/);
  });
});

describe("events: memory.events as runc's inotify watch reads it", () => {
  test("an oom event each time memory.events changes while oom_kill is above zero", () => {
    const ev = (high: number, oom: number, kill: number) => `low 0\nhigh ${high}\nmax ${oom}\noom ${oom}\noom_kill ${kill}\noom_group_kill 0\n`;
    assert.equal(memoryEventsOom(ev(0, 0, 0), ev(5, 0, 0)), false, "high events alone: no oom");
    assert.equal(memoryEventsOom(ev(5, 0, 0), ev(5, 1, 1)), true, "the first kill");
    assert.equal(memoryEventsOom(ev(5, 1, 1), ev(5, 1, 1)), false, "no change");
    assert.equal(memoryEventsOom(ev(5, 1, 1), ev(6, 1, 1)), true, "any change once a kill happened (runc reads oom_kill > 0 on every IN_MODIFY)");
    assert.equal(memoryEventsOom(ev(5, 1, 1), undefined), false, "the cgroup is gone");
    assert.equal(memoryEventsOom(undefined, ev(0, 1, 1)), true);
  });
});
