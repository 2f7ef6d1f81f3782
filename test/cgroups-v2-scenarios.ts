// Scenarios run by cgroups-v2.test.ts inside `unshare -m` after `mount -t cgroup2 none /sys/fs/cgroup`:
// tsrun then sees a v2-only host (the same cgroup2 hierarchy as the host's /sys/fs/cgroup/unified, where
// only the controllers the root delegates exist). Each scenario asserts and throws on failure; nothing
// happens when this module is merely loaded.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { attachedDevicePrograms } from "../src/cgroups/controllers/devices";
import { detectLayout } from "../src/cgroups/layout";
import { CGROUP_PARENT, cgroupDirsOf, cleanup, makeBundle, ok, stateRoot, tsrun, tsrunAsync } from "./helpers";

const V2 = "/sys/fs/cgroup";
const dirOf = (id: string) => `${V2}/${CGROUP_PARENT}/${id}`;
const read = (id: string, file: string) => fs.readFileSync(`${dirOf(id)}/${file}`, "utf8");
const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const lines = (out: string) => out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
const status = (id: string) => (JSON.parse(ok(tsrun(["state", id])).stdout) as { status: string; pid: number }).status;
const procs = (id: string) => read(id, "cgroup.procs").trim().split("\n").filter(Boolean).map(Number);
function until(what: string, cond: () => boolean, ms = 5000): void {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    sleep(10);
  }
}
const noPidNs = (s: Parameters<NonNullable<Parameters<typeof makeBundle>[1]>>[0]) => {
  s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "pid");
};
const fuse = { path: "/dev/fuse", type: "c" as const, major: 10, minor: 229, fileMode: 0o666 };

const scenarios: Record<string, () => void | Promise<void>> = {
  // The view is v2 only; the init is in the container's v2 cgroup before start; the core files are
  // there; inside, a cgroup namespace is rooted at it; delete removes it.
  placement() {
    const layout = detectLayout();
    assert.equal(layout.mode, "v2");
    assert.equal(layout.unified?.mountPoint, V2);
    const b = makeBundle(["exit", "0"]);
    assert.ok(b.spec.linux!.namespaces!.some((n) => n.type === "cgroup"), "the default config has a cgroup namespace on a v2 host (as runc's)");
    ok(tsrun(["create", "--bundle", b.dir, b.id]));
    const pid = (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { pid: number }).pid;
    assert.deepEqual(procs(b.id), [pid]);
    assert.match(read(b.id, "cgroup.events"), /^populated 1$/m);
    for (const f of ["cgroup.freeze", "cgroup.kill", "cgroup.controllers", "cgroup.subtree_control", "cgroup.type", "cpu.stat"]) assert.ok(fs.existsSync(`${dirOf(b.id)}/${f}`), f);
    assert.equal(Object.keys(JSON.parse(fs.readFileSync(path.join(stateRoot(), b.id, "state.json"), "utf8")).cgroup.dirs as object).join(), "", "one v2 directory recorded");
    ok(tsrun(["start", b.id]));
    until("exit", () => status(b.id) === "stopped");
    ok(tsrun(["delete", b.id]));
    assert.equal(fs.existsSync(dirOf(b.id)), false, "removed");
    // from inside: the v2 line is "0::/", and the cgroup mount is the container's own cgroup (only its init)
    const r = makeBundle(["multi", "read", "/proc/self/cgroup", "--", "read", "/sys/fs/cgroup/cgroup.procs", "--", "ls", "/sys/fs/cgroup/cgroup.freeze", "/sys/fs/cgroup/cgroup.kill"]);
    const [cg, own, ls] = ok(tsrun(["run", "--bundle", r.dir, r.id])).stdout.trim().split("\n").map((l) => JSON.parse(l) as unknown);
    assert.match(String((cg as { content: string }).content), /^0::\/$/m);
    assert.equal((own as { content: string }).content, "1\n");
    assert.deepEqual((ls as { exists: boolean }[]).map((e) => e.exists), [true, true]);
  },

  // runc's fs2 placement and creation for real: tsrun runs in a cgroup holding a process (…/self, as a login
  // session's scope), so an unset or relative cgroupsPath goes under that cgroup's parent; the ancestors get
  // the root's controllers (hugetlb here) enabled, so a hugetlb limit works there — under tsrun's own cgroup
  // it could not (v2's no-internal-process rule).
  relative() {
    const parent = `${V2}/${CGROUP_PARENT}`;
    const self = `${parent}/self`;
    const started = /^0::(.*)$/m.exec(fs.readFileSync("/proc/self/cgroup", "utf8"))?.[1] ?? "/";
    fs.mkdirSync(self, { recursive: true });
    fs.writeFileSync(`${self}/cgroup.procs`, String(process.pid));
    try {
      const hp = (s: Parameters<NonNullable<Parameters<typeof makeBundle>[1]>>[0]) => {
        s.linux!.resources!.hugepageLimits = [{ pageSize: "2MB", limit: 4 << 20 }];
      };
      const unset = makeBundle(["exit", "0"], (s) => (hp(s), delete s.linux!.cgroupsPath));
      ok(tsrun(["create", "--bundle", unset.dir, unset.id]));
      assert.equal(fs.readFileSync(`${parent}/${unset.id}/hugetlb.2MB.max`, "utf8").trim(), String(4 << 20), "the unset path: <parent of own cgroup>/<id>");
      assert.match(fs.readFileSync(`${parent}/cgroup.subtree_control`, "utf8"), /\bhugetlb\b/);
      assert.equal(fs.existsSync(`${self}/${unset.id}`), false, "not under tsrun's own cgroup");
      const rel = makeBundle(["exit", "0"], (s) => (hp(s), (s.linux!.cgroupsPath = `nest/${CGROUP_PARENT}-r`)));
      ok(tsrun(["create", "--bundle", rel.dir, rel.id]));
      assert.equal(fs.readFileSync(`${parent}/nest/${CGROUP_PARENT}-r/hugetlb.2MB.max`, "utf8").trim(), String(4 << 20), "a relative path: under the parent");
      assert.match(fs.readFileSync(`${parent}/nest/cgroup.subtree_control`, "utf8"), /\bhugetlb\b/, "each ancestor enabled");
      const stats = JSON.parse(ok(tsrun(["events", "--stats", rel.id])).stdout) as { data: { hugetlb: Record<string, unknown> } };
      assert.deepEqual(stats.data.hugetlb["2MB"], { failcnt: 0 });
      ok(tsrun(["delete", unset.id]));
      ok(tsrun(["delete", rel.id]));
      assert.equal(fs.existsSync(`${parent}/${unset.id}`), false);
      assert.equal(fs.existsSync(`${parent}/nest`), false, "the created ancestor goes with it");
    } finally {
      fs.writeFileSync(path.join(V2, started, "cgroup.procs"), String(process.pid)); // back where the test started
      fs.rmdirSync(self);
    }
  },

  // pause/resume through cgroup.freeze and cgroup.events.
  freezer() {
    const b = makeBundle(["getppid-loop", "2000000000"]);
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    const pid = (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { pid: number }).pid;
    const ticks = () => {
      const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").slice(fs.readFileSync(`/proc/${pid}/stat`, "utf8").lastIndexOf(")") + 2).split(" ");
      return Number(f[11]) + Number(f[12]);
    };
    ok(tsrun(["pause", b.id]));
    assert.equal(read(b.id, "cgroup.freeze").trim(), "1");
    assert.match(read(b.id, "cgroup.events"), /^frozen 1$/m);
    assert.equal(status(b.id), "paused");
    const t0 = ticks();
    sleep(300);
    assert.equal(ticks(), t0, "no CPU while frozen");
    ok(tsrun(["resume", b.id]));
    assert.match(read(b.id, "cgroup.events"), /^frozen 0$/m);
    assert.equal(status(b.id), "running");
    const t1 = ticks();
    sleep(300);
    assert.ok(ticks() > t1, "running again");
    ok(tsrun(["delete", "--force", b.id]));
    assert.equal(fs.existsSync(dirOf(b.id)), false);
  },

  // kill --all: SIGKILL by cgroup.kill, another signal with the cgroup frozen meanwhile.
  kill() {
    for (const sig of ["KILL", "TERM"]) {
      const b = makeBundle(["sleepers", "3", "60"], noPidNs);
      ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
      until("4 processes", () => procs(b.id).length === 4);
      ok(tsrun(["kill", "--all", b.id, sig]));
      until(`every process gone after ${sig}`, () => procs(b.id).length === 0);
      assert.match(read(b.id, "cgroup.events"), /^frozen 0$/m, "not left frozen");
      ok(tsrun(["delete", b.id]));
    }
  },

  // The BPF device program: allowed devices open, others give EPERM, access is per rule; one program is
  // attached and an update replaces it.
  async devices() {
    const d = makeBundle(["multi", "open", "/dev/null", "rw", "--", "open", "/dev/zero", "r", "--", "open", "/dev/fuse", "w"], (s) => (s.linux!.devices = [fuse]));
    assert.deepEqual(
      lines(ok(tsrun(["run", "--bundle", d.dir, d.id])).stdout).map((l) => [l.path, l.ok, l.errno]),
      [
        ["/dev/null", true, 0],
        ["/dev/zero", true, 0],
        ["/dev/fuse", false, 1],
      ],
    );
    const w = makeBundle(["multi", "open", "/dev/fuse", "w", "--", "open", "/dev/fuse", "rw"], (s) => {
      s.linux!.devices = [fuse];
      s.linux!.resources!.devices!.push({ allow: true, type: "c", major: 10, minor: 229, access: "w" });
    });
    assert.deepEqual(
      lines(ok(tsrun(["run", "--bundle", w.dir, w.id])).stdout).map((l) => [l.path, l.ok, l.errno]),
      [
        ["/dev/fuse", true, 0],
        ["/dev/fuse", false, 1],
      ],
    );
    // replaced under a running container: one program before and after, a different one
    // (the container outlives one `tsrun update`: node runs ~25x slower in the emulated systemd guest)
    const delay = process.env.TSRUN_GUEST === "1" ? "40" : "4";
    const u = makeBundle(["multi", "open", "/dev/fuse", "w", "--", "delay", delay, "--", "open", "/dev/fuse", "w"], (s) => (s.linux!.devices = [fuse]));
    const child = tsrunAsync(["run", "--bundle", u.dir, u.id]);
    let out = "";
    child.stdout.on("data", (x: Buffer) => (out += x.toString()));
    for (let i = 0; i < 6000 && !out.includes("\n"); i++) await new Promise((r) => setTimeout(r, 10));
    const before = attachedDevicePrograms(dirOf(u.id));
    assert.equal(before.length, 1);
    const file = path.join(path.dirname(u.dir), `${u.id}-devices.json`);
    fs.writeFileSync(file, JSON.stringify({ devices: [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 10, minor: 229, access: "w" }] }));
    ok(tsrun(["update", "-r", file, u.id]));
    const after = attachedDevicePrograms(dirOf(u.id));
    assert.equal(after.length, 1, "replaced, not added");
    assert.notEqual(after[0], before[0]);
    assert.equal(await new Promise<number | null>((resolve) => child.on("exit", resolve)), 0);
    assert.deepEqual(
      lines(out).map((l) => [l.path, l.ok, l.errno]),
      [
        ["/dev/fuse", false, 1],
        ["/dev/fuse", true, 0],
      ],
    );
  },

  // hugetlb is the only controller the host may delegate on v2: its limit is written when the container's
  // cgroup has it, and refused naming cgroup.controllers when it does not. memory is never there.
  limits() {
    const h = makeBundle(["exit", "0"], (s) => (s.linux!.resources!.hugepageLimits = [{ pageSize: "2MB", limit: 8 << 20 }]));
    const r = tsrun(["create", "--bundle", h.dir, h.id]);
    if (r.status === 0) {
      assert.match(read(h.id, "cgroup.controllers"), /\bhugetlb\b/);
      assert.equal(read(h.id, "hugetlb.2MB.max").trim(), String(8 << 20));
      assert.equal(read(h.id, "hugetlb.2MB.rsvd.max").trim(), String(8 << 20));
      const stats = JSON.parse(ok(tsrun(["events", "--stats", h.id])).stdout) as { data: { hugetlb: Record<string, unknown> } };
      assert.deepEqual(stats.data.hugetlb["2MB"], { failcnt: 0 });
      ok(tsrun(["delete", h.id]));
    } else {
      assert.match(r.stderr, new RegExp(`^linux\\.resources\\.hugepageLimits: this container has no hugetlb cgroup \\(hugetlb is not in ${dirOf(h.id)}/cgroup\\.controllers\\)\\n$`));
      assert.doesNotMatch(fs.readFileSync(`${V2}/cgroup.subtree_control`, "utf8"), /\bhugetlb\b/);
    }
    const m = makeBundle(["exit", "0"], (s) => (s.linux!.resources!.memory = { limit: 64 << 20 }));
    const mr = tsrun(["create", "--bundle", m.dir, m.id]);
    if (fs.readFileSync(`${V2}/cgroup.controllers`, "utf8").split(/\s+/).includes("memory")) {
      // a host with every controller (the systemd test host): enabled down from the root, so it just works
      ok(mr);
      assert.equal(read(m.id, "memory.max").trim(), String(64 << 20));
      ok(tsrun(["delete", m.id]));
    } else {
      assert.equal(mr.status, 1);
      assert.match(mr.stderr, new RegExp(`^linux\\.resources\\.memory: this container has no memory cgroup \\(memory is not in ${dirOf(m.id)}/cgroup\\.controllers\\)\\n$`));
      assert.deepEqual(cgroupDirsOf(m.id), []);
      assert.equal(fs.existsSync(dirOf(m.id)), false, "nothing left");
    }
    // unified: core cgroup.* knobs work without controllers; an absent controller is named
    const u = makeBundle(["exit", "0"], (s) => (s.linux!.resources!.unified = { "cgroup.max.descendants": "5", "cgroup.max.depth": "2" }));
    ok(tsrun(["create", "--bundle", u.dir, u.id]));
    assert.equal(read(u.id, "cgroup.max.descendants").trim(), "5");
    assert.equal(read(u.id, "cgroup.max.depth").trim(), "2");
    ok(tsrun(["delete", u.id]));
    const bad = makeBundle(["exit", "0"], (s) => (s.linux!.resources!.unified = { "memory.high": "1000000" }));
    const br = tsrun(["create", "--bundle", bad.dir, bad.id]);
    if (br.status === 0) return; // a host with every controller: memory.high is there
    assert.match(br.stderr, /^linux\.resources\.unified\["memory\.high"\]: unified resource can't be set: controller "memory" not available in .*\/cgroup\.controllers\n$/);
  },

  // events --stats and ps on v2: cpu from cpu.stat, pids from cgroup.procs, PSI.
  stats() {
    const b = makeBundle(["sleepers", "2", "60"]);
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    until("3 processes", () => procs(b.id).length === 3);
    const e = JSON.parse(ok(tsrun(["events", "--stats", b.id])).stdout) as { type: string; data: { cpu: { usage: { total: number }; psi?: unknown }; pids: { current: number } } };
    assert.equal(e.type, "stats");
    assert.equal(e.data.pids.current, 3);
    assert.ok(e.data.cpu.usage.total > 0);
    if (fs.existsSync(`${dirOf(b.id)}/cpu.pressure`)) assert.ok(e.data.cpu.psi !== undefined, "PSI read");
    assert.deepEqual(JSON.parse(ok(tsrun(["ps", "--format", "json", b.id])).stdout), procs(b.id).sort((x, y) => x - y));
    ok(tsrun(["delete", "--force", b.id]));
  },
};

export async function runScenario(name: string): Promise<void> {
  const s = scenarios[name];
  if (!s) throw new Error(`no scenario ${name}`);
  try {
    await s();
  } finally {
    cleanup();
  }
}

export const scenarioNames = Object.keys(scenarios);
