// The cgroup manager over fake trees (temporary directories holding the files a cgroup has): the layout
// read from a state.json record, the record it produces, creation and removal, the files a process joins,
// the freezer, pids, kill, the OOM count, and the controller seam (each controller's "needed" and "apply"
// against one directory). Nothing here touches a real cgroup.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, afterEach, describe, mock, test } from "node:test";
import { Writer } from "../src/cgroups/controller";
import { blkio } from "../src/cgroups/controllers/blkio";
import { cpu } from "../src/cgroups/controllers/cpu";
import { memory } from "../src/cgroups/controllers/memory";
import { pids } from "../src/cgroups/controllers/pids";
import * as files from "../src/cgroups/files";
import { detectLayout } from "../src/cgroups/layout";
import { subCgroupPaths } from "../src/runtime/exec";
import { CgroupKillError, CgroupManager } from "../src/cgroups/manager";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-manager-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => mock.restoreAll());

let seq = 0;
// A directory with the given files (name -> initial content); "dir/" names make sub-directories.
function cgroup(contents: Record<string, string> = {}): string {
  const d = path.join(tmp, `cg${seq++}`);
  fs.mkdirSync(d);
  for (const [f, v] of Object.entries(contents)) {
    if (f.endsWith("/")) fs.mkdirSync(path.join(d, f), { recursive: true });
    else {
      fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
      fs.writeFileSync(path.join(d, f), v);
    }
  }
  return d;
}

const manager = (dirs: Record<string, string>) => CgroupManager.fromRecord({ dirs, created: [] });

// Every cgroup file write, in order.
function recordWrites(): string[] {
  const writes: string[] = [];
  const real = files.writeCgroupFile;
  mock.method(files, "writeCgroupFile", (dir: string, file: string, value: string) => {
    writes.push(`${path.basename(dir)}/${file}=${value}`);
    real(dir, file, value);
  });
  return writes;
}

describe("the layout from the record", () => {
  test("v1, hybrid, v2 by the keys; an empty record is a v1 manager with nothing in it", async () => {
    assert.equal(manager({ memory: "/m", "cpu,cpuacct": "/c" }).mode, "v1");
    assert.equal(manager({ memory: "/m", "": "/u" }).mode, "hybrid");
    assert.equal(manager({ "": "/u" }).mode, "v2");
    const empty = manager({});
    assert.equal(empty.mode, "v1");
    assert.deepEqual(empty.pids(), []);
    assert.equal(empty.isFrozen(), false);
    assert.equal(empty.oomKillCount(), undefined);
    await empty.remove();
  });

  test("the record round-trips; the plan's directories are the record's", () => {
    const rec = { dirs: { "cpu,cpuacct": "/a/cpu", memory: "/a/mem", "": "/a/u" }, created: ["/a/mem/x"] };
    const m = CgroupManager.fromRecord(rec);
    assert.deepEqual(m.record(), rec);
    assert.deepEqual(m.directories(), rec.dirs);
    assert.notEqual(m.record().dirs, rec.dirs, "a copy: the manager's record cannot be changed from outside");
  });

  test("forContainer: runc's cgroupsPath rules on the given layout; systemd refused without systemd", () => {
    const layout = detectLayout(
      "32 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
      "4:memory:/own\n0::/\n",
      () => true,
    );
    const m = CgroupManager.forContainer("/p/c1", "c1", layout);
    assert.equal(m.mode, "hybrid");
    assert.deepEqual(m.directories(), { memory: "/sys/fs/cgroup/memory/p/c1", "": "/sys/fs/cgroup/unified/p/c1" });
    assert.deepEqual(m.record().created, []);
    assert.throws(() => CgroupManager.forContainer(undefined, "c1", layout, { systemd: true }), /^Error: systemd cgroup flag passed, but systemd support for managing cgroups is not available/);
  });
});

describe("create and remove", () => {
  test("planned() lists what create() makes, before it is made; remove() takes exactly that", async () => {
    const root = cgroup({ "memory/": "", "unified/": "" });
    const dirs = { memory: path.join(root, "memory/p/c"), "": path.join(root, "unified/p/c") };
    const m = manager(dirs);
    const planned = m.planned();
    assert.deepEqual(planned.created, [path.join(root, "memory/p"), path.join(root, "memory/p/c"), path.join(root, "unified/p"), path.join(root, "unified/p/c")]);
    for (const d of planned.created) assert.equal(fs.existsSync(d), false, `${d} is not made by planned()`);
    await m.create();
    assert.deepEqual(m.record(), planned);
    for (const d of planned.created) assert.equal(fs.statSync(d).isDirectory(), true, `${d} made`);
    fs.mkdirSync(path.join(dirs.memory, "nested")); // made by the container's processes: goes with it
    await CgroupManager.fromRecord(m.record()).remove();
    for (const d of planned.created) assert.equal(fs.existsSync(d), false, `${d} removed`);
    for (const d of ["memory", "unified"]) assert.equal(fs.existsSync(path.join(root, d)), true, `${d}: not ours, kept`);
  });

  test("a create that fails removes what it made and names the directory", async () => {
    const root = cgroup({ "memory/": "", blocker: "a file where a directory should be" });
    const dirs = { memory: path.join(root, "memory/c"), pids: path.join(root, "blocker/c") };
    const m = manager(dirs);
    await assert.rejects(m.create(), new RegExp(`^Error: create cgroup ${path.join(root, "blocker/c")}: ENOTDIR`));
    assert.equal(fs.existsSync(dirs.memory), false, "the memory directory made before the failure is gone");
    assert.deepEqual(m.record().created, [], "nothing recorded as created");
  });
});

describe("join files", () => {
  const dirs = () => {
    const u = cgroup({ "cgroup.procs": "", "sub/cgroup.procs": "" });
    const mem = cgroup({ "cgroup.procs": "", "sub/cgroup.procs": "" });
    const cpu = cgroup({ "cgroup.procs": "", "sub/cgroup.procs": "" });
    return { "": u, memory: mem, "cpu,cpuacct": cpu };
  };
  test("every hierarchy, v2 last", () => {
    const d = dirs();
    assert.deepEqual(manager(d).joinFiles(), [path.join(d.memory, "cgroup.procs"), path.join(d["cpu,cpuacct"], "cgroup.procs"), path.join(d[""], "cgroup.procs")]);
  });
  test("exec --cgroup as runc's SubCgroupPaths: per v1 controller (co-mounted ones by either name), or one path for all", () => {
    const d = dirs();
    const own = (k: keyof typeof d) => path.join(d[k], "cgroup.procs");
    assert.deepEqual(manager(d).joinFiles({ memory: "sub" }), [path.join(d.memory, "sub/cgroup.procs"), own("cpu,cpuacct"), own("")], "the others: the container's own");
    assert.deepEqual(manager(d).joinFiles(subCgroupPaths(["cpu,cpuacct:sub"])), [own("memory"), path.join(d["cpu,cpuacct"], "sub/cgroup.procs"), own("")]);
    assert.deepEqual(manager(d).joinFiles(subCgroupPaths(["cpuacct:sub", "memory:/"])), [own("memory"), path.join(d["cpu,cpuacct"], "sub/cgroup.procs"), own("")], "/ is the container's own cgroup");
    assert.deepEqual(manager(d).joinFiles(subCgroupPaths(["/"])), [own("memory"), own("cpu,cpuacct"), own("")]);
    assert.throws(() => manager(d).joinFiles(subCgroupPaths(["blkio:sub"])), { message: "unknown controller blkio in SubCgroupPaths" });
    assert.deepEqual(manager(d).joinFiles(subCgroupPaths(["sub"])), [path.join(d.memory, "sub/cgroup.procs"), path.join(d["cpu,cpuacct"], "sub/cgroup.procs"), path.join(d[""], "sub/cgroup.procs")]);
    assert.throws(() => manager(d).joinFiles(subCgroupPaths(["nosuch"])), { message: `--cgroup: ${path.join(d.memory, "nosuch")} does not exist` });
    assert.throws(() => manager(d).joinFiles({ memory: "../../x" }), { message: "bad sub cgroup path: ../../x" });
    assert.deepEqual(manager({ "": d[""]! }).joinFiles({ memory: "sub" }), [own("")], "v2: a controller's path is not used (runc)");
    assert.throws(() => subCgroupPaths(["a", "b"]), { message: "invalid --cgroup argument: a (missing <controller>: prefix)" });
    assert.throws(() => subCgroupPaths([":x"]), { message: "invalid --cgroup argument: :x (empty <controller> prefix)" });
    assert.throws(() => subCgroupPaths(["memory:a", "memory,pids:b"]), { message: "invalid --cgroup argument(s): controller memory specified multiple times" });
  });
});

describe("freezer", () => {
  test("the v1 freezer hierarchy when there is one, else cgroup.freeze; neither: an error", async () => {
    const f1 = cgroup({ "freezer.state": "THAWED\n", "freezer.self_freezing": "0\n" });
    const u = cgroup({ "cgroup.freeze": "0\n", "cgroup.events": "populated 1\nfrozen 1\n" });
    assert.deepEqual(manager({ freezer: f1, "": u }).freezer(), { version: 1, dir: f1 });
    assert.deepEqual(manager({ memory: "/x", "": u }).freezer(), { version: 2, dir: u }, "hybrid without a v1 freezer: v2");
    assert.equal(manager({ memory: "/x", "": cgroup() }).freezer(), undefined);
    await assert.rejects(manager({ memory: "/x" }).freeze(), /^Error: cannot toggle freezer: cgroups not configured for container/);
  });

  test("v2: cgroup.freeze written, cgroup.events read; isFrozen (and state.json's paused) follow it", async () => {
    const u = cgroup({ "cgroup.freeze": "0", "cgroup.events": "populated 1\nfrozen 1\n" });
    const writes = recordWrites();
    await manager({ "": u }).freeze();
    assert.deepEqual(writes, [`${path.basename(u)}/cgroup.freeze=1`]);
    assert.equal(manager({ "": u }).isFrozen(), true);
    assert.equal(CgroupManager.fromRecord({ dirs: { "": u }, created: [] }).isFrozen(), true, "the record-based check store.ts uses");
    fs.writeFileSync(path.join(u, "cgroup.events"), "populated 1\nfrozen 0\n");
    assert.equal(manager({ "": u }).isFrozen(), false);
  });

  test("v1: FROZEN by itself only (a parent's freeze is not the container's)", () => {
    const f1 = cgroup({ "freezer.state": "FROZEN\n", "freezer.self_freezing": "0\n" });
    assert.equal(manager({ freezer: f1 }).isFrozen(), false);
    fs.writeFileSync(path.join(f1, "freezer.self_freezing"), "1\n");
    assert.equal(manager({ freezer: f1 }).isFrozen(), true);
  });
});

describe("pids and kill", () => {
  test("pids: every cgroup.procs below the container's directory, from the first hierarchy that has any", () => {
    const mem = cgroup({ "cgroup.procs": "", "a/cgroup.procs": "", "a/b/cgroup.procs": "" });
    const cpu = cgroup({ "cgroup.procs": "30\n10\n", "a/cgroup.procs": "20\n" });
    assert.deepEqual(manager({ memory: mem, cpu }).pids(), [10, 20, 30]);
    fs.writeFileSync(path.join(mem, "a/b/cgroup.procs"), "7\n");
    assert.deepEqual(manager({ memory: mem, cpu }).pids(), [7]);
    assert.deepEqual(manager({ memory: path.join(mem, "gone") }).pids(), []);
  });

  test("SIGKILL through cgroup.kill where there is one; its failure is a CgroupKillError", async () => {
    const u = cgroup({ "cgroup.kill": "", "cgroup.procs": `${process.pid}\n` });
    const signalled: number[] = [];
    mock.method(process, "kill", (pid: number) => void signalled.push(pid));
    await manager({ "": u }).kill(9, () => assert.fail("no warning"));
    assert.equal(fs.readFileSync(path.join(u, "cgroup.kill"), "utf8"), "1");
    assert.deepEqual(signalled, [], "no pid signalled one by one");
    const bad = cgroup({ "cgroup.kill/": "" });
    await assert.rejects(
      manager({ "": bad }).kill(9, () => {}),
      (e: unknown) => e instanceof CgroupKillError && e.message.startsWith(`write ${bad}/cgroup.kill: EISDIR`),
    );
  });

  // Signal 0 to our own pid and our parent's: harmless even if the mock were not in place.
  test("other signals: frozen while the pids are read and signalled, thawed after (v1)", async () => {
    const [a, b] = [process.pid, process.ppid].sort((x, y) => x - y) as [number, number];
    const f1 = cgroup({ "freezer.state": "THAWED", "freezer.self_freezing": "0" });
    const mem = cgroup({ "cgroup.procs": `${b}\n${a}\n` });
    const writes = recordWrites();
    const signalled: string[] = [];
    mock.method(process, "kill", (pid: number, sig: number) => {
      signalled.push(`${pid}:${sig}:${fs.readFileSync(path.join(f1, "freezer.state"), "utf8")}`);
      const e = new Error("no such process") as NodeJS.ErrnoException;
      e.code = "ESRCH";
      if (pid === b) throw e; // gone meanwhile: not worth a warning
    });
    await manager({ memory: mem, freezer: f1 }).kill(0, (m) => assert.fail(m));
    assert.deepEqual(signalled, [`${a}:0:FROZEN`, `${b}:0:FROZEN`]);
    assert.deepEqual(writes, [`${path.basename(f1)}/freezer.state=FROZEN`, `${path.basename(f1)}/freezer.state=THAWED`]);
  });
});

describe("statistics and the OOM count", () => {
  test("the OOM count: v1 memory.oom_control, v2 memory.events, none without a memory controller", () => {
    assert.equal(manager({ memory: cgroup({ "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n" }) }).oomKillCount(), 3n);
    assert.equal(manager({ "": cgroup({ "cgroup.controllers": "memory", "memory.events": "low 0\noom 1\noom_kill 2\n" }) }).oomKillCount(), 2n);
    assert.equal(manager({ "": cgroup({ "cgroup.controllers": "pids" }) }).oomKillCount(), undefined);
    assert.equal(manager({ memory: cgroup() }).oomKillCount(), undefined, "no oom_control file");
  });

  test("hybrid: statistics from the v1 hierarchies, never from v2 (except hugetlb)", () => {
    const u = cgroup({ "cgroup.controllers": "pids memory", "pids.current": "5\n", "pids.max": "max\n", "memory.stat": "file 1\n", "memory.current": "1\n", "memory.max": "max\n" });
    const s = manager({ cpu: cgroup(), "": u }).stats();
    assert.deepEqual(s.pids, {});
    assert.deepEqual(s.memory, {});
    const v2 = manager({ "": u }).stats();
    assert.deepEqual(v2.pids, { current: 5n, limit: undefined });
  });
});

describe("the controller seam", () => {
  test("needed: 0 is unset, as runc (but pids.limit 0 is a limit since runtime-spec 1.3)", () => {
    assert.equal(pids.needed({ pids: { limit: 0 } }, { warn: () => {} }), true);
    assert.equal(pids.needed({ pids: {} }, { warn: () => {} }), false);
    assert.equal(pids.needed({ pids: { limit: -1 } }, { warn: () => {} }), true);
    assert.equal(memory.needed({ memory: { limit: 0, reservation: 0 } }, { warn: () => {} }), false);
    assert.equal(memory.needed({ memory: { swappiness: 0 } }, { warn: () => {} }), true);
    assert.equal(cpu.needed({ cpu: { cpus: "0" } }, { warn: () => {} }), false, "cpus are cpuset's");
    assert.equal(blkio.needed({ blockIO: { weightDevice: [] } }, { warn: () => {} }), false);
  });

  test("apply: the directory's version picks the files; the writer names the setting and the file", () => {
    const d1 = cgroup({ "pids.max": "" });
    const d2 = cgroup({ "cpu.max": "", "cpu.weight": "" });
    pids.apply(new Writer(d1, 1, () => {}), { pids: { limit: -1 } }, { warn: () => {} });
    assert.equal(fs.readFileSync(path.join(d1, "pids.max"), "utf8"), "max");
    cpu.apply(new Writer(d2, 2, () => {}), { cpu: { shares: 1024, quota: 50000 } }, { warn: () => {} });
    assert.equal(fs.readFileSync(path.join(d2, "cpu.weight"), "utf8"), "100");
    assert.equal(fs.readFileSync(path.join(d2, "cpu.max"), "utf8"), "50000 100000");
    assert.throws(() => memory.apply(new Writer(d2, 2, () => {}), { memory: { limit: 1 << 20 } }, { warn: () => {} }), new RegExp(`^Error: linux.resources.memory.limit: write "1048576" to ${d2}/memory.max: no such file or directory$`));
  });
});
