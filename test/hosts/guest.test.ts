// The systemd test host (scripts/hosts/run.js, `npm run test:hosts`) is what it claims: systemd as PID 1, a pure
// cgroup v2 tree at /sys/fs/cgroup offering every controller, AppArmor enabled; and a container with memory and
// cpu limits goes through its whole lifecycle there, the limits read back from its cgroup. Skipped unless
// TSRUN_GUEST=1 (set by the guest runner only).
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import type { Spec } from "../../src/spec/schema";
import { CGROUP_PARENT, cleanup, makeBundle, ok, stateRoot, tsrun, waitFor } from "../helpers";

const skip = process.env.TSRUN_GUEST === "1" ? false : "runs only in the systemd test host (npm run test:hosts)";
after(cleanup);

const V2 = "/sys/fs/cgroup";
const words = (file: string) => fs.readFileSync(file, "utf8").trim().split(/\s+/).filter(Boolean);
function mounts(): { point: string; type: string }[] {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const f = l.split(" ");
      return { point: f[4]!, type: f[f.indexOf("-") + 1]! };
    });
}

describe("the guest", { skip }, () => {
  test("systemd is PID 1", () => {
    assert.equal(fs.readFileSync("/proc/1/comm", "utf8").trim(), "systemd");
    assert.match(fs.readlinkSync("/proc/1/exe"), /\/lib\/systemd\/systemd$/);
    const v = spawnSync("systemctl", ["--version"], { encoding: "utf8" });
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /^systemd (\d+)/);
    // the bus the systemd cgroup driver talks to
    assert.ok(fs.existsSync("/run/dbus/system_bus_socket"), "no D-Bus system bus");
  });

  test("pure cgroup v2 at /sys/fs/cgroup with every controller, and no v1 hierarchy", () => {
    const ms = mounts();
    assert.deepEqual(
      ms.filter((m) => m.point === V2).map((m) => m.type),
      ["cgroup2"],
    );
    assert.deepEqual(
      ms.filter((m) => m.type === "cgroup"),
      [],
      "a v1 hierarchy is mounted",
    );
    const ctrls = words(`${V2}/cgroup.controllers`);
    for (const c of ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"]) assert.ok(ctrls.includes(c), `${c} is not in ${V2}/cgroup.controllers (${ctrls.join(" ")})`);
    // this process lives in a systemd unit's cgroup, not at the root
    const own = fs.readFileSync("/proc/self/cgroup", "utf8").trim();
    assert.match(own, /^0::\/.+\.(service|scope)$/);
  });

  test("AppArmor is the enabled LSM", () => {
    assert.equal(fs.readFileSync("/sys/module/apparmor/parameters/enabled", "utf8").trim(), "Y");
    assert.ok(words("/sys/kernel/security/lsm").join(" ").split(",").includes("apparmor"), "apparmor is not in /sys/kernel/security/lsm");
    assert.ok(fs.existsSync("/sys/kernel/security/apparmor/profiles"), "no apparmor securityfs");
  });
});

// every tsrun command takes seconds under TCG on a busy machine
const slow = { timeout: 180_000 };

// A container's whole lifecycle with limits; the files are read from outside while it runs.
function limitsLifecycle(resources: NonNullable<NonNullable<Spec["linux"]>["resources"]>, expect: Record<string, string>): void {
  const b = makeBundle(["sleep", "60"], (s) => {
    s.linux!.resources = { ...s.linux!.resources, ...resources };
  });
  const dir = path.join(V2, CGROUP_PARENT, b.id);
  ok(tsrun(["create", "--bundle", b.dir, b.id], slow));
  const st = JSON.parse(ok(tsrun(["state", b.id], slow)).stdout) as { status: string; pid: number };
  assert.equal(st.status, "created");
  assert.ok(words(path.join(dir, "cgroup.procs")).includes(String(st.pid)), `the init ${st.pid} is not in ${dir}`);
  ok(tsrun(["start", b.id], slow));
  for (const [file, want] of Object.entries(expect)) assert.equal(fs.readFileSync(path.join(dir, file), "utf8").trim(), want, file);
  ok(tsrun(["kill", b.id, "KILL"], slow));
  waitFor(() => (JSON.parse(ok(tsrun(["state", b.id], slow)).stdout) as { status: string }).status === "stopped", 120_000, 100);
  ok(tsrun(["delete", b.id], slow));
  assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false);
  assert.equal(fs.existsSync(dir), false, `${dir} is left`);
}

describe("a container on the guest", { skip }, () => {
  test("lifecycle with memory, pids and cpu limits, read back from memory.max, pids.max and cpu.max", () => {
    limitsLifecycle({ memory: { limit: 64 << 20 }, pids: { limit: 100 }, cpu: { quota: 50_000, period: 100_000 } }, { "memory.max": String(64 << 20), "pids.max": "100", "cpu.max": "50000 100000" });
  });

  // systemd 252 enables cpuset cpu io memory pids in /sys/fs/cgroup/cgroup.subtree_control, not hugetlb, rdma or
  // misc: tsrun enables every controller the root offers in each ancestor, as runc's fs2 (src/cgroups/tree.ts).
  test("a hugetlb limit, read back from hugetlb.2MB.max (hugetlb enabled in the ancestors by tsrun)", () => {
    limitsLifecycle({ hugepageLimits: [{ pageSize: "2MB", limit: 8 << 20 }] }, { "hugetlb.2MB.max": String(8 << 20) });
  });
});
