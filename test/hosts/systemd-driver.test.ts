// The systemd cgroup driver for real, in the systemd test host (systemd 252, pure cgroup v2): a container
// created with --systemd-cgroup is a transient scope in a nested slice that `systemctl show` knows, with the
// limits as unit properties and in the scope's cgroup files; update changes both; pause and resume work on
// it; delete stops the scope. Skipped unless TSRUN_GUEST=1 (set by the guest runner only).
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { after, describe, test } from "node:test";
import { cleanup, makeBundle, ok, tsrun, uniqueId, waitFor } from "../helpers";

const skip = process.env.TSRUN_GUEST === "1" ? false : "runs only in the systemd test host (npm run test:hosts)";
after(cleanup);

const SLICE = "tsruntest-sd.slice"; // /tsruntest.slice/tsruntest-sd.slice
function show(unit: string, props: string[]): Record<string, string> {
  const r = spawnSync("systemctl", ["show", unit, ...props.map((p) => `--property=${p}`)], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return Object.fromEntries(
    r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

describe("systemd cgroup driver (systemd 252, cgroup v2)", { skip }, () => {
  test("a scope with MemoryMax, TasksMax, CPUQuota: systemctl and the files agree; update; pause; delete", () => {
    const name = uniqueId("sd");
    const unit = `tsrun-${name}.scope`;
    const b = makeBundle(["sleep", "300"], (s) => {
      s.linux!.cgroupsPath = `${SLICE}:tsrun:${name}`;
      s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 << 20 }, pids: { limit: 40 }, cpu: { quota: 50000, period: 100000, shares: 1024 } };
    });
    const dir = `/sys/fs/cgroup/tsruntest.slice/${SLICE}/${unit}`;
    ok(tsrun(["--systemd-cgroup", "create", "--bundle", b.dir, b.id]));
    try {
      const p = show(unit, ["ActiveState", "Slice", "Delegate", "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec", "CPUWeight", "ControlGroup"]);
      assert.equal(p.ActiveState, "active");
      assert.equal(p.Slice, SLICE);
      assert.equal(p.Delegate, "yes");
      assert.equal(p.MemoryMax, String(64 << 20));
      assert.equal(p.TasksMax, "40");
      assert.equal(p.CPUQuotaPerSecUSec, "500ms");
      assert.equal(p.CPUWeight, "100");
      assert.equal(p.ControlGroup, `/tsruntest.slice/${SLICE}/${unit}`);
      assert.equal(fs.readFileSync(`${dir}/memory.max`, "utf8").trim(), String(64 << 20));
      assert.equal(fs.readFileSync(`${dir}/pids.max`, "utf8").trim(), "40");
      assert.equal(fs.readFileSync(`${dir}/cpu.max`, "utf8").trim(), "50000 100000");
      ok(tsrun(["start", b.id]));

      ok(tsrun(["update", "--memory", "96M", "--pids-limit", "30", b.id]));
      const u = show(unit, ["MemoryMax", "TasksMax"]);
      assert.equal(u.MemoryMax, String(96 << 20));
      assert.equal(u.TasksMax, "30");
      assert.equal(fs.readFileSync(`${dir}/memory.max`, "utf8").trim(), String(96 << 20));

      ok(tsrun(["pause", b.id]));
      assert.equal(fs.readFileSync(`${dir}/cgroup.freeze`, "utf8").trim(), "1");
      ok(tsrun(["resume", b.id]));
      assert.equal(fs.readFileSync(`${dir}/cgroup.freeze`, "utf8").trim(), "0");
    } finally {
      tsrun(["delete", "--force", b.id]);
    }
    waitFor(() => !fs.existsSync(dir));
    const gone = spawnSync("systemctl", ["show", unit, "--property=LoadState"], { encoding: "utf8" });
    assert.equal(gone.stdout.trim(), "LoadState=not-found");
  });
});
