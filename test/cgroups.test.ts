// cgroups for real on this host (hybrid: v1 controllers plus a v2 tree with no controller delegated to
// children): placement seen from inside and outside, limits the kernel enforces, device rules, and the
// errors for what the host cannot do. Each container's cgroup is under /tsrun-test-<pid>/.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { detectLayout } from "../src/cgroups/layout";
import { CGROUP_PARENT, cgroupDirsOf, cleanup, makeBundle, ok, stateRoot, tsrun } from "./helpers";

after(cleanup);

const layout = detectLayout();
const hybrid = layout.mode === "hybrid" && layout.v1.some((h) => h.controllers.includes("memory"));
const skip = hybrid ? false : "needs a hybrid host with v1 memory/cpu/pids/devices (this suite's host)";

const v1 = (controller: string, id: string, file: string) => fs.readFileSync(`/sys/fs/cgroup/${controller}/${CGROUP_PARENT}/${id}/${file}`, "utf8");
const lines = (out: string) => out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);

function stopped(id: string): boolean {
  return (JSON.parse(ok(tsrun(["state", id])).stdout) as { status: string }).status === "stopped";
}

describe("placement", { skip }, () => {
  test("the init is in every hierarchy, v2 included, before the user process runs", () => {
    const b = makeBundle(["read", "/proc/self/cgroup"]);
    ok(tsrun(["create", "--bundle", b.dir, b.id]));
    const pid = (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { pid: number }).pid;
    const dirs = [...layout.v1.map((h) => h.mountPoint), layout.unified!.mountPoint].map((m) => `${m}/${CGROUP_PARENT}/${b.id}`);
    for (const d of dirs) assert.match(fs.readFileSync(`${d}/cgroup.procs`, "utf8"), new RegExp(`^${pid}$`, "m"), d);
    ok(tsrun(["start", b.id]));
    for (let i = 0; i < 200 && !stopped(b.id); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    ok(tsrun(["delete", b.id]));
    assert.deepEqual(cgroupDirsOf(b.id), []);
  });

  test("from inside: every hierarchy shows the container's cgroup; with a cgroup namespace it is the root", () => {
    const plain = makeBundle(["read", "/proc/self/cgroup"]);
    const seen = String(lines(ok(tsrun(["run", "--bundle", plain.dir, plain.id])).stdout)[0]!.content).trim().split("\n");
    assert.equal(seen.length, layout.v1.length + 1);
    for (const l of seen) assert.match(l, new RegExp(`^\\d+:[^:]*:/${CGROUP_PARENT}/${plain.id}$`), l);
    assert.ok(seen.some((l) => l.startsWith("0::")), "the v2 tree is joined too");
    const ns = makeBundle(["read", "/proc/self/cgroup"], (s) => s.linux!.namespaces!.push({ type: "cgroup" }));
    const rooted = String(lines(ok(tsrun(["run", "--bundle", ns.dir, ns.id])).stdout)[0]!.content).trim().split("\n");
    assert.equal(rooted.length, layout.v1.length + 1);
    for (const l of rooted) assert.match(l, /^\d+:[^:]*:\/$/, l);
  });

  test("--systemd-cgroup is refused with a clear error and leaves nothing", () => {
    const b = makeBundle();
    const r = tsrun(["--systemd-cgroup", "create", "--bundle", b.dir, b.id]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^--systemd-cgroup: systemd is not running on this host; tsrun manages cgroups through cgroupfs only\n$/);
    assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false);
    assert.deepEqual(cgroupDirsOf(b.id), []);
  });
});

describe("limits the kernel enforces", { skip }, () => {
  test("a memory limit: the hog is OOM-killed, the limit and the kill are visible outside", () => {
    const b = makeBundle(["hog", "256"], (s) => (s.linux!.resources!.memory = { limit: 32 << 20, swap: 32 << 20 }));
    const r = tsrun(["run", "--keep", "--bundle", b.dir, b.id]);
    assert.equal(r.status, 137, `killed by SIGKILL: ${r.stdout} ${r.stderr}`);
    assert.equal(r.stdout, "", "it never finished allocating");
    assert.equal(v1("memory", b.id, "memory.limit_in_bytes").trim(), String(32 << 20));
    assert.equal(v1("memory", b.id, "memory.memsw.limit_in_bytes").trim(), String(32 << 20));
    assert.match(v1("memory", b.id, "memory.oom_control"), /^oom_kill [1-9]\d*$/m);
    ok(tsrun(["delete", b.id]));
    // the same hog finishes without the limit
    const free = makeBundle(["hog", "64"]);
    assert.deepEqual(lines(ok(tsrun(["run", "--bundle", free.dir, free.id])).stdout), [{ allocated_mb: 64 }]);
  });

  test("pids.limit stops a fork burst", () => {
    const b = makeBundle(["fork-orphans", "40"], (s) => (s.linux!.resources!.pids = { limit: 6 }));
    ok(tsrun(["create", "--bundle", b.dir, b.id]));
    assert.equal(v1("pids", b.id, "pids.max").trim(), "6");
    ok(tsrun(["start", b.id]));
    for (let i = 0; i < 300 && !stopped(b.id); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    assert.match(v1("pids", b.id, "pids.events"), /^max [1-9]\d*$/m, "forks were refused");
    ok(tsrun(["delete", b.id]));
    // from inside: fork fails, fewer children than asked
    const c = makeBundle(["fork-orphans", "40"], (s) => (s.linux!.resources!.pids = { limit: 6 }));
    const r = tsrun(["run", "--bundle", c.dir, c.id]);
    assert.equal(r.status, 1, "fork-orphans fails when it cannot make them all");
    const made = (lines(r.stdout)[0]!.orphans as number[]).length;
    assert.ok(made < 6, `${made} orphans under a limit of 6`);
  });

  test("cpu quota, period and shares land in the v1 files, and a busy process is throttled", () => {
    const b = makeBundle(["getppid-loop", "1000000"], (s) => (s.linux!.resources!.cpu = { quota: 10000, period: 100000, shares: 512, cpus: "0", mems: "0" }));
    const r = ok(tsrun(["run", "--keep", "--bundle", b.dir, b.id]));
    assert.equal(v1("cpu", b.id, "cpu.cfs_quota_us").trim(), "10000");
    assert.equal(v1("cpu", b.id, "cpu.cfs_period_us").trim(), "100000");
    assert.equal(v1("cpu", b.id, "cpu.shares").trim(), "512");
    assert.equal(v1("cpuset", b.id, "cpuset.cpus").trim(), "0");
    const stat = v1("cpu", b.id, "cpu.stat");
    const throttled = Number(/^nr_throttled (\d+)$/m.exec(stat)![1]);
    assert.ok(throttled > 0, `throttled in ${stat}`);
    const ns = lines(r.stdout)[0]!.ns as number;
    assert.ok(ns > 400e6, `a 10% quota stretches the loop (unthrottled it takes ~170 ms here) (${ns / 1e6} ms)`);
    ok(tsrun(["delete", b.id]));
  });

  test("memory, blkio knobs read back from their files", () => {
    const b = makeBundle(["exit", "0"], (s) => {
      s.linux!.resources!.memory = { limit: 64 << 20, reservation: 100000000, swappiness: 10, disableOOMKiller: true, useHierarchy: true };
      s.linux!.resources!.blockIO = { weight: 500, throttleReadBpsDevice: [{ major: 7, minor: 0, rate: 1048576 }], throttleWriteIOPSDevice: [{ major: 7, minor: 0, rate: 50 }] };
    });
    ok(tsrun(["create", "--bundle", b.dir, b.id]));
    assert.equal(v1("memory", b.id, "memory.soft_limit_in_bytes").trim(), "99999744"); // rounded down to pages
    assert.equal(v1("memory", b.id, "memory.swappiness").trim(), "10");
    assert.match(v1("memory", b.id, "memory.oom_control"), /^oom_kill_disable 1$/m);
    assert.equal(v1("blkio", b.id, "blkio.bfq.weight").trim(), "500");
    assert.equal(v1("blkio", b.id, "blkio.throttle.read_bps_device").trim(), "7:0 1048576");
    assert.equal(v1("blkio", b.id, "blkio.throttle.write_iops_device").trim(), "7:0 50");
    ok(tsrun(["delete", b.id]));
  });
});

describe("devices", { skip }, () => {
  const fuse = { path: "/dev/fuse", type: "c" as const, major: 10, minor: 229, fileMode: 0o666 };
  const open = (b: ReturnType<typeof makeBundle>) => lines(ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout).map((l) => [l.path, l.ok, l.errno]);

  test("runc's defaults: the default nodes open, any other device gives EPERM (devices.list shows the allow-list)", () => {
    const b = makeBundle(["multi", "open", "/dev/null", "rw", "--", "open", "/dev/zero", "r", "--", "open", "/dev/fuse", "w"], (s) => (s.linux!.devices = [fuse]));
    assert.deepEqual(open(b), [
      ["/dev/null", true, 0],
      ["/dev/zero", true, 0],
      ["/dev/fuse", false, 1],
    ]);
    const c = makeBundle(["exit", "0"]);
    ok(tsrun(["create", "--bundle", c.dir, c.id]));
    const list = v1("devices", c.id, "devices.list").trim().split("\n").sort();
    assert.deepEqual(list, ["b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 10:200 rwm", "c 136:* rwm", "c 5:0 rwm", "c 5:2 rwm"].sort());
    ok(tsrun(["delete", c.id]));
  });

  test("an allow rule opens a device for exactly its access", () => {
    const w = makeBundle(["multi", "open", "/dev/fuse", "w", "--", "open", "/dev/fuse", "rw"], (s) => {
      s.linux!.devices = [fuse];
      s.linux!.resources!.devices!.push({ allow: true, type: "c", major: 10, minor: 229, access: "w" });
    });
    assert.deepEqual(open(w), [
      ["/dev/fuse", true, 0],
      ["/dev/fuse", false, 1],
    ]);
    const rw = makeBundle(["open", "/dev/fuse", "rw"], (s) => {
      s.linux!.devices = [fuse];
      s.linux!.resources!.devices!.push({ allow: true, type: "c", major: 10, minor: 229, access: "rw" });
    });
    assert.deepEqual(open(rw), [["/dev/fuse", true, 0]]);
  });
});

describe("what this host cannot give is an error naming the setting and the file", { skip }, () => {
  const refused = (patch: Parameters<typeof makeBundle>[1], pattern: (id: string) => RegExp) => {
    const b = makeBundle(["exit", "0"], patch);
    const r = tsrun(["create", "--bundle", b.dir, b.id]);
    assert.equal(r.status, 1);
    assert.match(r.stderr.trim(), pattern(b.id));
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false, "no state left");
    assert.deepEqual(cgroupDirsOf(b.id), [], "no cgroup left");
  };

  test("hugetlb (on v2 only here, and not delegated), rdma (nowhere)", () => {
    refused(
      (s) => (s.linux!.resources!.hugepageLimits = [{ pageSize: "2MB", limit: 2 << 20 }]),
      (id) => new RegExp(`^linux\\.resources\\.hugepageLimits: this container has no hugetlb cgroup \\(the host mounts no v1 hugetlb hierarchy, and hugetlb is not in /sys/fs/cgroup/unified/${CGROUP_PARENT}/${id}/cgroup\\.controllers\\)$`),
    );
    refused((s) => (s.linux!.resources!.rdma = { mlx5_0: { hcaHandles: 1 } }), () => /^linux\.resources\.rdma: this container has no rdma cgroup/);
  });

  test("values the kernel refuses: real-time runtime over the parent's, a swap limit below memory", () => {
    refused(
      (s) => (s.linux!.resources!.cpu = { realtimeRuntime: 1000 }),
      (id) => new RegExp(`^linux\\.resources\\.cpu\\.realtimeRuntime: write "1000" to /sys/fs/cgroup/cpu/${CGROUP_PARENT}/${id}/cpu\\.rt_runtime_us: invalid argument$`, "i"),
    );
    refused(
      (s) => (s.linux!.resources!.memory = { limit: 64 << 20, swap: 32 << 20 }),
      (id) => new RegExp(`^linux\\.resources\\.memory\\.swap: write "33554432" to /sys/fs/cgroup/memory/${CGROUP_PARENT}/${id}/memory\\.memsw\\.limit_in_bytes: invalid argument$`, "i"),
    );
  });
});
