// cgroups for real on this host (hybrid: v1 controllers plus a v2 tree with no controller delegated to
// children): placement seen from inside and outside, limits the kernel enforces, device rules, and the
// errors for what the host cannot do. Each container's cgroup is under /tsrun-test-<pid>/.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { detectLayout } from "../src/cgroups/layout";
import { CGROUP_PARENT, cgroupDirsOf, cleanup, makeBundle, ok, stateRoot, TSRUN, tsrun, tsrunAsync } from "./helpers";

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

  test("--systemd-cgroup without systemd is refused with a clear error and leaves nothing", () => {
    const b = makeBundle();
    const r = tsrun(["--systemd-cgroup", "create", "--bundle", b.dir, b.id]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^systemd cgroup flag passed, but systemd support for managing cgroups is not available \(systemd is not running: no \/run\/systemd\/system\)\n$/);
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

  test("rdma: no such controller anywhere on this host", () => {
    refused((s) => (s.linux!.resources!.rdma = { mlx5_0: { hcaHandles: 1 } }), () => /^linux\.resources\.rdma: this container has no rdma cgroup/);
  });

  // hugetlb exists only in the v2 tree here. Whether a new cgroup gets it depends on the root's
  // cgroup.subtree_control, which tsrun never writes (and which other software on this machine may change),
  // so both outcomes are checked against what the host delegates at the time.
  test("hugetlb on a hybrid host: written to the v2 cgroup when the host delegates it, else refused naming cgroup.controllers", () => {
    const limits = [{ pageSize: "2MB", limit: 4 << 20 }];
    const b = makeBundle(["exit", "0"], (s) => (s.linux!.resources!.hugepageLimits = limits));
    const r = tsrun(["create", "--bundle", b.dir, b.id]);
    const dir = `/sys/fs/cgroup/unified/${CGROUP_PARENT}/${b.id}`;
    if (r.status === 0) {
      assert.match(fs.readFileSync(`${dir}/cgroup.controllers`, "utf8"), /\bhugetlb\b/);
      assert.equal(fs.readFileSync(`${dir}/hugetlb.2MB.max`, "utf8").trim(), String(4 << 20));
      assert.equal(fs.readFileSync(`${dir}/hugetlb.2MB.rsvd.max`, "utf8").trim(), String(4 << 20));
      ok(tsrun(["delete", b.id]));
    } else {
      assert.match(
        r.stderr.trim(),
        new RegExp(`^linux\\.resources\\.hugepageLimits: this container has no hugetlb cgroup \\(the host mounts no v1 hugetlb hierarchy, and hugetlb is not in ${dir}/cgroup\\.controllers\\)$`),
      );
      assert.doesNotMatch(fs.readFileSync("/sys/fs/cgroup/unified/cgroup.subtree_control", "utf8"), /\bhugetlb\b/, "refused only when the root does not delegate hugetlb");
      assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false, "no state left");
      assert.deepEqual(cgroupDirsOf(b.id), [], "no cgroup left");
    }
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

describe("freezer, kill --all, delete", { skip }, () => {
  const wait = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  const status = (id: string) => (JSON.parse(ok(tsrun(["state", id])).stdout) as { status: string }).status;
  const cpuTicks = (pid: number) => {
    const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return Number(rest[11]) + Number(rest[12]); // utime + stime
  };
  const procs = (id: string) => v1("pids", id, "cgroup.procs").trim().split("\n").filter(Boolean).map(Number);
  const until = (what: string, cond: () => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      wait(10);
    }
  };
  const noPidNs = (s: Parameters<NonNullable<Parameters<typeof makeBundle>[1]>>[0]) => {
    s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "pid");
  };

  test("pause stops a busy process (state and list say paused); resume lets it run; runc's errors", () => {
    const b = makeBundle(["getppid-loop", "2000000000"]);
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    const pid = (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { pid: number }).pid;
    const resumeErr = tsrun(["resume", b.id]);
    assert.equal(resumeErr.status, 1);
    assert.match(resumeErr.stderr, /^container not paused\n$/);
    ok(tsrun(["pause", b.id]));
    assert.equal(v1("freezer", b.id, "freezer.state").trim(), "FROZEN");
    assert.equal(status(b.id), "paused");
    const listed = JSON.parse(ok(tsrun(["list", "--format", "json"])).stdout) as { id: string; status: string }[];
    assert.equal(listed.find((c) => c.id === b.id)?.status, "paused");
    assert.match(ok(tsrun(["list"])).stdout, new RegExp(`^${b.id}\\s+${pid}\\s+paused\\s`, "m"));
    const t0 = cpuTicks(pid);
    wait(300);
    assert.equal(cpuTicks(pid), t0, "no CPU time while frozen");
    const again = tsrun(["pause", b.id]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /^container not running\n$/);
    ok(tsrun(["resume", b.id]));
    assert.equal(status(b.id), "running");
    const t1 = cpuTicks(pid);
    wait(300);
    assert.ok(cpuTicks(pid) > t1, "running again");
    ok(tsrun(["kill", b.id, "KILL"]));
    until("stop", () => status(b.id) === "stopped");
    const stoppedPause = tsrun(["pause", b.id]);
    assert.equal(stoppedPause.status, 1);
    assert.match(stoppedPause.stderr, /^container not running\n$/);
    ok(tsrun(["delete", b.id]));
  });

  test("kill --all signals every process (frozen meanwhile on v1), and SIGKILL goes through cgroup.kill", () => {
    const b = makeBundle(["sleepers", "3", "60"], noPidNs);
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    until("4 processes", () => procs(b.id).length === 4);
    ok(tsrun(["kill", "--all", b.id, "TERM"]));
    until("every process gone", () => procs(b.id).length === 0);
    assert.equal(v1("freezer", b.id, "freezer.state").trim(), "THAWED", "thawed after signalling");
    assert.equal(status(b.id), "stopped");
    ok(tsrun(["kill", "--all", b.id, "KILL"])); // --all on a stopped container is not an error (runc 1.2+)
    ok(tsrun(["delete", b.id]));

    const k = makeBundle(["sleepers", "3", "60"], noPidNs);
    ok(tsrun(["run", "--detach", "--bundle", k.dir, k.id]));
    until("4 processes", () => procs(k.id).length === 4);
    const v2dir = `/sys/fs/cgroup/unified/${CGROUP_PARENT}/${k.id}`;
    assert.ok(fs.existsSync(`${v2dir}/cgroup.kill`), "the v2 tree has cgroup.kill");
    ok(tsrun(["kill", "--all", k.id, "KILL"]));
    until("every process gone", () => procs(k.id).length === 0);
    ok(tsrun(["delete", k.id]));
  });

  test("a signal to a paused container waits for resume; SIGKILL kills a paused one; delete -f of paused", () => {
    const b = makeBundle(["sleepers", "2", "60"], noPidNs);
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    until("3 processes", () => procs(b.id).length === 3);
    ok(tsrun(["pause", b.id]));
    ok(tsrun(["kill", "--all", b.id, "TERM"]));
    wait(200);
    assert.equal(status(b.id), "paused", "still paused: kill --all left the freezer as it was");
    assert.equal(procs(b.id).length, 3, "frozen processes have not acted on the signal yet");
    ok(tsrun(["resume", b.id]));
    until("every process gone", () => procs(b.id).length === 0);
    ok(tsrun(["delete", b.id]));

    const k = makeBundle(["sleepers", "2", "60"], noPidNs);
    ok(tsrun(["run", "--detach", "--bundle", k.dir, k.id]));
    until("3 processes", () => procs(k.id).length === 3);
    ok(tsrun(["pause", k.id]));
    ok(tsrun(["kill", "--all", k.id, "KILL"]));
    until("every process gone", () => procs(k.id).length === 0);
    ok(tsrun(["delete", k.id]));

    const d = makeBundle(["sleep", "60"]);
    ok(tsrun(["run", "--detach", "--bundle", d.dir, d.id]));
    ok(tsrun(["pause", d.id]));
    const refused = tsrun(["delete", d.id]);
    assert.match(refused.stderr, /cannot delete container .* that is not stopped: paused/);
    ok(tsrun(["delete", "--force", d.id]));
    assert.deepEqual(cgroupDirsOf(d.id), []);
  });

  test("delete removes the container's cgroups and the parent it created, never a sibling's", () => {
    const a = makeBundle(["sleep", "60"], (s) => (s.linux!.cgroupsPath = `/${CGROUP_PARENT}/shared-${process.pid}/a`));
    const b = makeBundle(["sleep", "60"], (s) => (s.linux!.cgroupsPath = `/${CGROUP_PARENT}/shared-${process.pid}/b`));
    ok(tsrun(["run", "--detach", "--bundle", a.dir, a.id]));
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    const shared = `/sys/fs/cgroup/memory/${CGROUP_PARENT}/shared-${process.pid}`;
    ok(tsrun(["delete", "--force", a.id]));
    assert.equal(fs.existsSync(`${shared}/a`), false);
    assert.equal(fs.existsSync(`${shared}/b`), true, "b's cgroup stays");
    assert.equal(status(b.id), "running");
    ok(tsrun(["delete", "--force", b.id]));
    assert.equal(fs.existsSync(`${shared}/b`), false);
    assert.equal(fs.existsSync(shared), true, "the shared parent was a's, and a is gone: it stays for whoever still uses it");
    fs.rmdirSync(shared);
    for (const c of ["cpu", "pids", "freezer", "devices", "blkio", "cpuset", "unified", "systemd"]) {
      const d = `/sys/fs/cgroup/${c}/${CGROUP_PARENT}/shared-${process.pid}`;
      if (fs.existsSync(d)) fs.rmdirSync(d);
    }
  });
});

describe("ps, events, update", { skip }, () => {
  const wait = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  const procs = (id: string) => v1("pids", id, "cgroup.procs").trim().split("\n").filter(Boolean).map(Number).sort((a, b) => a - b);
  const until = (what: string, cond: () => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      wait(10);
    }
  };
  const recorded = (id: string) => (JSON.parse(fs.readFileSync(path.join(stateRoot(), id, "state.json"), "utf8")) as { config: { linux: { resources: Record<string, unknown> } } }).config.linux.resources;

  test("ps: the container's pids as JSON, and ps(1)'s table (default -ef, or given options) with only its rows", () => {
    const b = makeBundle(["sleepers", "2", "60"]);
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    until("3 processes", () => procs(b.id).length === 3);
    const pids = procs(b.id);
    assert.deepEqual(JSON.parse(ok(tsrun(["ps", "--format", "json", b.id])).stdout), pids);
    const table = ok(tsrun(["ps", b.id])).stdout.trimEnd().split("\n");
    assert.match(table[0]!, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
    assert.deepEqual(
      table.slice(1).map((l) => Number(l.trim().split(/\s+/)[1])),
      pids,
    );
    for (const l of table.slice(1)) assert.match(l, /\/probe sleepers 2 60$/);
    const custom = ok(tsrun(["ps", b.id, "-o", "pid,comm"])).stdout.trimEnd().split("\n");
    assert.match(custom[0]!, /^\s*PID COMMAND$/);
    assert.deepEqual(custom.slice(1).map((l) => l.trim()), pids.map((p) => `${p} probe`));
    ok(tsrun(["delete", "--force", b.id]));
  });

  test("events --stats: one object in runc's shape, with the limits and the processes", () => {
    const b = makeBundle(["sleepers", "2", "60"], (s) => {
      s.linux!.resources!.memory = { limit: 64 << 20 };
      s.linux!.resources!.pids = { limit: 20 };
      s.linux!.resources!.cpu = { quota: 50000, period: 100000 };
    });
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    until("3 processes", () => procs(b.id).length === 3);
    const out = ok(tsrun(["events", "--stats", b.id])).stdout;
    assert.equal(out.split("\n").length, 2, "one line");
    const e = JSON.parse(out) as { type: string; id: string; data: Record<string, Record<string, unknown>> };
    assert.deepEqual(Object.keys(e), ["type", "id", "data"]);
    assert.equal(e.type, "stats");
    assert.equal(e.id, b.id);
    assert.deepEqual(Object.keys(e.data), ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]);
    assert.deepEqual(e.data.pids, { current: 3, limit: 20 });
    const mem = e.data.memory as { usage: { limit: number; usage: number }; raw: Record<string, number> };
    assert.equal(mem.usage.limit, 64 << 20);
    assert.ok(mem.usage.usage > 0);
    assert.equal(mem.raw.hierarchical_memory_limit, 64 << 20);
    const cpu = e.data.cpu as { usage: { total: number; percpu: number[] } };
    assert.ok(cpu.usage.total > 0 && cpu.usage.percpu.length > 0);
    assert.match(out, /"memory":\{("cache":\d+,)?"usage":\{"limit":67108864,/, "Go's field order (cache is omitempty)");
    assert.match(out, /"swap":\{"limit":9223372036854771712,/, "uint64 values exact");
    ok(tsrun(["kill", b.id, "KILL"]));
    until("stopped", () => (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { status: string }).status === "stopped");
    const gone = tsrun(["events", "--stats", b.id]);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, new RegExp(`^container with id ${b.id} is not running\\n$`));
    ok(tsrun(["delete", b.id]));
  });

  test("events: stats every --interval, an oom event when the OOM killer strikes, then the stream ends", async () => {
    const b = makeBundle(["hog", "256", "3"], (s) => (s.linux!.resources!.memory = { limit: 32 << 20, swap: 32 << 20 }));
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    const child = tsrunAsync(["events", "--interval", "300ms", b.id]);
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 0);
    const events = out.trim().split("\n").map((l) => JSON.parse(l) as { type: string; id: string; data?: unknown });
    assert.ok(events.filter((e) => e.type === "stats").length >= 2, `stats events: ${out.slice(0, 200)}`);
    assert.deepEqual(events.filter((e) => e.type === "oom"), [{ type: "oom", id: b.id }]);
    assert.ok(events.every((e) => e.id === b.id));
    ok(tsrun(["delete", b.id]));
    const bad = tsrun(["events", "--interval", "0s", b.id]);
    assert.match(bad.stderr, /duration interval must be greater than 0|does not exist/);
  });

  test("update with runc's flags changes the files and state.json; a quota alone keeps the period", () => {
    const b = makeBundle(["sleep", "60"], (s) => {
      s.linux!.resources!.memory = { limit: 64 << 20 };
      s.linux!.resources!.cpu = { quota: 50000, period: 200000, shares: 512 };
      s.linux!.resources!.pids = { limit: 20 };
    });
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    ok(tsrun(["update", "--memory", "128m", "--memory-swap", "256m", "--pids-limit", "99", "--cpu-quota", "20000", "--cpu-share", "256", "--cpuset-cpus", "1", "--blkio-weight", "300", b.id]));
    assert.equal(v1("memory", b.id, "memory.limit_in_bytes").trim(), String(128 << 20));
    assert.equal(v1("memory", b.id, "memory.memsw.limit_in_bytes").trim(), String(256 << 20));
    assert.equal(v1("pids", b.id, "pids.max").trim(), "99");
    assert.equal(v1("cpu", b.id, "cpu.cfs_quota_us").trim(), "20000");
    assert.equal(v1("cpu", b.id, "cpu.cfs_period_us").trim(), "200000");
    assert.equal(v1("cpu", b.id, "cpu.shares").trim(), "256");
    assert.equal(v1("cpuset", b.id, "cpuset.cpus").trim(), "1");
    assert.equal(v1("blkio", b.id, "blkio.bfq.weight").trim(), "300");
    assert.deepEqual(recorded(b.id), {
      devices: [{ allow: false, access: "rwm" }],
      memory: { limit: 128 << 20, swap: 256 << 20, checkBeforeUpdate: false },
      cpu: { quota: 20000, period: 200000, shares: 256, cpus: "1" },
      pids: { limit: 99 },
      blockIO: { weight: 300 },
    });
    // stats read what update wrote
    const stats = JSON.parse(ok(tsrun(["events", "--stats", b.id])).stdout) as { data: { pids: { limit: number }; memory: { usage: { limit: number } } } };
    assert.equal(stats.data.pids.limit, 99);
    assert.equal(stats.data.memory.usage.limit, 128 << 20);
    // --cpu-shares is taken too; --kernel-memory is ignored with runc's warning
    const km = ok(tsrun(["update", "--cpu-shares", "1024", "--kernel-memory", "100m", b.id]));
    assert.match(km.stderr, /level=warning msg="Kernel memory settings are ignored and will be removed"/);
    assert.equal(v1("cpu", b.id, "cpu.shares").trim(), "1024");
    for (const [flag, msg] of [
      ["--l3-cache-schema", /^Intel RDT\/CAT: l3 cache schema is not enabled\n$/],
      ["--mem-bw-schema", /^Intel RDT\/MBA: memory bandwidth schema is not enabled\n$/],
    ] as const) {
      const r = tsrun(["update", flag, "L3:0=ff", b.id]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, msg);
    }
    ok(tsrun(["delete", "--force", b.id]));
    const stopped = tsrun(["update", "--memory", "1m", b.id]);
    assert.equal(stopped.status, 1);
    assert.match(stopped.stderr, /does not exist/);
  });

  test("update -r FILE and -r - (stdin, as containerd sends it); a refused value changes nothing", () => {
    const b = makeBundle(["sleep", "60"], (s) => (s.linux!.resources!.memory = { limit: 64 << 20 }));
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    const file = path.join(path.dirname(b.dir), `${b.id}-resources.json`);
    fs.writeFileSync(file, JSON.stringify({ memory: { limit: 96 << 20, reservation: 32 << 20 }, cpu: { quota: 30000, period: 100000 }, pids: { limit: 42 } }));
    ok(tsrun(["update", "-r", file, b.id]));
    assert.equal(v1("memory", b.id, "memory.limit_in_bytes").trim(), String(96 << 20));
    assert.equal(v1("memory", b.id, "memory.soft_limit_in_bytes").trim(), String(32 << 20));
    assert.equal(v1("cpu", b.id, "cpu.cfs_quota_us").trim(), "30000");
    assert.equal(v1("pids", b.id, "pids.max").trim(), "42");
    const stdin = spawnSync(TSRUN, ["--root", stateRoot(), "update", "--resources", "-", b.id], { input: JSON.stringify({ pids: { limit: 7 }, memory: { limit: 80 << 20 } }) });
    assert.equal(stdin.status, 0, stdin.stderr.toString());
    assert.equal(v1("pids", b.id, "pids.max").trim(), "7");
    assert.equal(v1("memory", b.id, "memory.limit_in_bytes").trim(), String(80 << 20));
    assert.deepEqual(recorded(b.id).pids, { limit: 7 });
    // below what the container uses: the kernel refuses, runc's message, and the old limit stays
    const low = tsrun(["update", "--memory", "4096", b.id]);
    assert.equal(low.status, 1);
    assert.match(low.stderr, new RegExp(`^linux\\.resources\\.memory\\.limit: unable to set memory limit to 4096 \\(current usage: \\d+, peak usage: \\d+\\) in /sys/fs/cgroup/memory/${CGROUP_PARENT}/${b.id}/memory\\.limit_in_bytes\\n$`));
    assert.equal(v1("memory", b.id, "memory.limit_in_bytes").trim(), String(80 << 20));
    assert.equal((recorded(b.id).memory as { limit: number }).limit, 80 << 20);
    // a bad document names the path
    fs.writeFileSync(file, JSON.stringify({ memory: { limit: "lots" } }));
    const bad = tsrun(["update", "-r", file, b.id]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /-resources\.json: memory\.limit: expected an integer \(int64\), got string\n$/);
    ok(tsrun(["delete", "--force", b.id]));
  });

  test("update -r with devices replaces the device rules of a running container (seen from inside)", async () => {
    const fuse = { path: "/dev/fuse", type: "c" as const, major: 10, minor: 229, fileMode: 0o666 };
    const b = makeBundle(["multi", "open", "/dev/fuse", "w", "--", "delay", "4", "--", "open", "/dev/fuse", "w"], (s) => (s.linux!.devices = [fuse]));
    const child = tsrunAsync(["run", "--bundle", b.dir, b.id]);
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 300 && !out.includes("\n"); i++) await new Promise((r) => setTimeout(r, 10));
    const file = path.join(path.dirname(b.dir), `${b.id}-devices.json`);
    fs.writeFileSync(file, JSON.stringify({ devices: [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 10, minor: 229, access: "w" }] }));
    ok(tsrun(["update", "-r", file, b.id]));
    assert.match(v1("devices", b.id, "devices.list"), /^c 10:229 w$/m);
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 0);
    assert.deepEqual(
      lines(out).map((l) => [l.path, l.ok, l.errno]),
      [
        ["/dev/fuse", false, 1],
        ["/dev/fuse", true, 0],
      ],
    );
  });
});
