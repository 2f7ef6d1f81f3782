// The systemd cgroup driver end to end against a fake systemd (test/fake-systemd.ts) on a private
// dbus-daemon: tsrun finds "systemd" through DBUS_SYSTEM_BUS_ADDRESS and TSRUN_SYSTEMD_RUN_DIR, and a real
// container with --systemd-cgroup and a memory limit goes through create, start, update, pause, resume,
// kill and delete. The fake logs every D-Bus call; the test checks the calls, their properties and the
// cgroup files. The fake makes the scope's cgroup in the v2 tree (as systemd on a hybrid host), tsrun the v1
// hierarchies' (as runc's legacy systemd manager); everything is below slices this test names and removes.
import * as assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { detectLayout } from "../src/cgroups/layout";
import { cleanup, makeBundle, ok, stateRoot, tsrun, uniqueId, waitFor } from "./helpers";

const layout = detectLayout();
const skip = process.getuid?.() !== 0 || !fs.existsSync("/usr/bin/dbus-daemon") || !layout.unified ? "needs root, dbus-daemon and a v2 tree" : false;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-systemd-"));
const log = path.join(tmp, "calls.jsonl");
const TOP = `tsrunsd${process.pid}`;
const SLICE = `${TOP}-a.slice`; // nested: /TOP.slice/TOP-a.slice
const mounts = [...layout.v1.map((h) => h.mountPoint), ...(layout.unified ? [layout.unified.mountPoint] : [])];
const children: ChildProcess[] = [];

interface Call {
  member: string;
  args: { unit: string; mode?: string; props?: Record<string, unknown> };
}
const calls = (): Call[] => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Call) : []);
const callsFor = (unit: string, member: string) => calls().filter((c) => c.member === member && c.args.unit === unit);

function startChild(cmd: string, args: string[], until: RegExp): Promise<{ child: ChildProcess; line: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = until.exec(out);
      if (m) resolve({ child, line: m[0] });
    });
    child.on("exit", (code) => reject(new Error(`${cmd} exited (${code}) before it was ready: ${out}`)));
  });
}

// The user instance's fake (rootless): its own bus, its units below MANAGER.
const MANAGER = `/${TOP}.slice/user@0.service`;
let userBus = "";

before(async () => {
  if (skip) return;
  const { line } = await startChild("/usr/bin/dbus-daemon", ["--session", "--nofork", "--print-address", `--address=unix:path=${path.join(tmp, "bus")}`], /^unix:\S+$/m);
  await startChild(process.execPath, [path.join(__dirname, "fake-systemd.js"), line, layout.unified!.mountPoint, log], /^ready$/m);
  userBus = (await startChild("/usr/bin/dbus-daemon", ["--session", "--nofork", "--print-address", `--address=unix:path=${path.join(tmp, "user-bus")}`], /^unix:\S+$/m)).line;
  await startChild(process.execPath, [path.join(__dirname, "fake-systemd.js"), userBus, layout.unified!.mountPoint, log, MANAGER], /^ready$/m);
  fs.mkdirSync(path.join(tmp, "run-systemd-system"));
  process.env.DBUS_SYSTEM_BUS_ADDRESS = line;
  process.env.TSRUN_SYSTEMD_RUN_DIR = path.join(tmp, "run-systemd-system");
});

after(() => {
  if (!skip) cleanup(); // (containers first: deleting them needs the fake)
  for (const c of children.reverse()) c.kill("SIGTERM");
  // the slices of this test, in every hierarchy, deepest first (scopes left by a failed test too)
  const rmTree = (d: string): void => {
    try {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rmTree(path.join(d, e.name));
      fs.rmdirSync(d);
    } catch {
      // not there
    }
  };
  for (const m of mounts) rmTree(path.join(m, `${TOP}.slice`));
  delete process.env.DBUS_SYSTEM_BUS_ADDRESS;
  delete process.env.TSRUN_SYSTEMD_RUN_DIR;
  fs.rmSync(tmp, { recursive: true, force: true });
});

const state = (id: string) => JSON.parse(ok(tsrun(["state", id])).stdout) as { status: string; pid: number };

describe("the systemd cgroup driver against a fake systemd", { skip }, () => {
  test("create/start/update/pause/resume/kill/delete: a scope in nested slices, limits as properties and files", () => {
    const id = uniqueId("sd");
    const unit = `tsrun-${id}.scope`;
    const b = makeBundle(["sleep", "100"], (s) => {
      s.linux!.cgroupsPath = `${SLICE}:tsrun:${id}`;
      s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 << 20 }, pids: { limit: 50 } };
    });
    // (b.id is the container's id; the unit's name part is ours)
    ok(tsrun(["--systemd-cgroup", "create", "--bundle", b.dir, b.id]));
    const rel = `${TOP}.slice/${SLICE}/${unit}`;
    const dir = (m: string) => path.join(m, rel);

    // the scope: started once, with the set-up helper's pid, delegated, in the nested slice
    const [start, ...more] = callsFor(unit, "StartTransientUnit");
    assert.ok(start, `StartTransientUnit ${unit}: ${JSON.stringify(calls())}`);
    assert.equal(more.length, 0);
    assert.equal(start.args.mode, "replace");
    const p = start.args.props!;
    assert.equal(p.Slice, SLICE);
    assert.equal(p.Delegate, true);
    assert.equal(p.DefaultDependencies, false);
    assert.equal(p.Description, `libcontainer container ${id}`);
    assert.equal(p.MemoryAccounting, true);
    assert.equal(p.TasksAccounting, true);
    assert.equal(p[layout.mode === "v2" ? "IOAccounting" : "BlockIOAccounting"], true);
    assert.equal((p.PIDs as number[]).length, 1);
    // then the limits as properties (v1 names on a hybrid host), before the files
    const [set] = callsFor(unit, "SetUnitProperties");
    assert.ok(set, "SetUnitProperties");
    const memProp = layout.mode === "v2" ? "MemoryMax" : "MemoryLimit";
    assert.equal(set.args.props![memProp], String(64 << 20));
    // pids.max (and TasksMax) once the init is ready (runtime-spec 1.3: a limit of 0 or 1 would refuse its clone)
    assert.ok(callsFor(unit, "SetUnitProperties").some((c) => c.args.props?.TasksMax === "50"), "TasksMax set");
    assert.equal(set.args.props!.DevicePolicy, "strict");

    // the record says systemd; the init is in the scope's cgroup in every hierarchy
    const record = JSON.parse(fs.readFileSync(path.join(stateRoot(), b.id, "state.json"), "utf8")) as { cgroup: { systemd?: { unit: string } } };
    assert.equal(record.cgroup.systemd?.unit, unit);
    const pid = state(b.id).pid;
    for (const m of mounts) {
      if (!fs.existsSync(path.join(m, "cgroup.procs"))) continue;
      assert.ok(fs.readFileSync(path.join(dir(m), "cgroup.procs"), "utf8").split("\n").includes(String(pid)), `${pid} in ${dir(m)}`);
    }
    const memFile = layout.mode === "v2" ? path.join(dir(layout.unified!.mountPoint), "memory.max") : path.join(dir("/sys/fs/cgroup/memory"), "memory.limit_in_bytes");
    assert.equal(fs.readFileSync(memFile, "utf8").trim(), String(64 << 20));

    ok(tsrun(["start", b.id]));
    assert.equal(state(b.id).status, "running");

    // update: the property, then the file
    ok(tsrun(["update", "--memory", "128M", b.id]));
    const sets = callsFor(unit, "SetUnitProperties");
    assert.equal(sets.length, 3, "create's limits, create's pids limit at ready, update");
    assert.equal(sets[2]!.args.props![memProp], String(128 << 20));
    assert.equal(sets[2]!.args.props!.DevicePolicy, undefined, "update leaves devices alone");
    assert.equal(fs.readFileSync(memFile, "utf8").trim(), String(128 << 20));

    // pause / resume through cgroupfs
    ok(tsrun(["pause", b.id]));
    assert.equal(state(b.id).status, "paused");
    ok(tsrun(["resume", b.id]));
    assert.equal(state(b.id).status, "running");

    ok(tsrun(["kill", b.id, "KILL"]));
    waitFor(() => state(b.id).status === "stopped");
    ok(tsrun(["delete", b.id]));
    assert.equal(callsFor(unit, "StopUnit").length, 1);
    for (const m of mounts) assert.equal(fs.existsSync(dir(m)), false, `${dir(m)} removed`);
  });

  test("rootless: the user's instance on the session bus, the scope below its manager's cgroup", () => {
    const id = uniqueId("sdu");
    const unit = `tsrun-${id}.scope`;
    const b = makeBundle(["sleep", "100"], (s) => {
      s.linux!.cgroupsPath = `${SLICE}:tsrun:${id}`;
      s.linux!.resources = { ...s.linux!.resources, pids: { limit: 50 } };
    });
    process.env.DBUS_SESSION_BUS_ADDRESS = userBus;
    try {
      ok(tsrun(["--rootless", "true", "--systemd-cgroup", "create", "--bundle", b.dir, b.id]));
      const [start] = callsFor(unit, "StartTransientUnit");
      assert.ok(start, `StartTransientUnit ${unit} on the user's bus`);
      assert.equal(start.args.props!.Slice, SLICE);
      const rel = `${MANAGER}/${TOP}.slice/${SLICE}/${unit}`;
      const pid = state(b.id).pid;
      // the container is in the user instance's scope, with the limit in its files
      const v2 = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").find((l) => l.startsWith("0::"));
      assert.equal(v2, `0::${rel}`);
      assert.equal(fs.readFileSync(path.join(layout.unified!.mountPoint, rel, "cgroup.procs"), "utf8").trim(), String(pid));
      const pids = layout.v1.find((h) => h.controllers.includes("pids"));
      if (pids) assert.equal(fs.readFileSync(path.join(pids.mountPoint, rel, "pids.max"), "utf8").trim(), "50");
      ok(tsrun(["delete", "--force", b.id]));
      assert.equal(callsFor(unit, "StopUnit").length, 1);
      assert.equal(fs.existsSync(path.join(layout.unified!.mountPoint, rel)), false);
    } finally {
      delete process.env.DBUS_SESSION_BUS_ADDRESS;
    }
  });

  test("a cgroupsPath not in slice:prefix:name form is refused before anything is made", () => {
    const b = makeBundle(["exit", "0"], (s) => (s.linux!.cgroupsPath = "/not/a/unit"));
    const r = tsrun(["--systemd-cgroup", "create", "--bundle", b.dir, b.id]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "\/not\/a\/unit" instead/);
    assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false);
  });

  test("a failed create stops the scope it started", () => {
    const id = uniqueId("sdf");
    const unit = `tsrun-${id}.scope`;
    // a cpuset no host has: the unit starts, then the cpuset file write fails
    const b = makeBundle(["exit", "0"], (s) => {
      s.linux!.cgroupsPath = `${SLICE}:tsrun:${id}`;
      s.linux!.resources = { ...s.linux!.resources, cpu: { cpus: "1000-1001" } };
    });
    const r = tsrun(["--systemd-cgroup", "create", "--bundle", b.dir, b.id]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(callsFor(unit, "StartTransientUnit").length, 1);
    assert.equal(callsFor(unit, "StopUnit").length, 1);
    assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false);
    for (const m of mounts) assert.equal(fs.existsSync(path.join(m, `${TOP}.slice/${SLICE}/${unit}`)), false);
  });
});
