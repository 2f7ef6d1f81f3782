// The OCI lifecycle from outside: create/start/state/list/kill/delete/run, pid files, exit codes, signals,
// the waiting init (sealed helper, small RSS), and the state directory.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { CGROUP_PARENT, cgroupDirsOf, cleanup, makeBundle, ok, sleep, stateRoot, tsrun, tsrunAsync, work, waitFor } from "./helpers";

after(cleanup);

function stateOf(id: string): Record<string, unknown> {
  return JSON.parse(ok(tsrun(["state", id])).stdout) as Record<string, unknown>;
}

describe("lifecycle", () => {
  test("create waits in a sealed helper; start runs; kill stops; delete removes everything", () => {
    const b = makeBundle(["wait-signal"]);
    const pidFile = path.join(work(), `${b.id}.pid`);
    ok(tsrun(["create", "--bundle", b.dir, "--pid-file", pidFile, b.id]));
    const pid = Number(fs.readFileSync(pidFile, "utf8"));
    let s = stateOf(b.id);
    assert.equal(s.status, "created");
    assert.equal(s.pid, pid);
    assert.equal(s.bundle, b.dir);
    assert.equal(s.rootfs, b.rootfs);
    assert.equal(s.ociVersion, "1.3.0");
    assert.match(String(s.created), /^\d{4}-\d\d-\d\dT/);
    assert.equal(s.owner, "");
    // The waiting init is the sealed memfd copy of tsrun-init, never a host binary, and small.
    assert.match(fs.readlinkSync(`/proc/${pid}/exe`), /^\/memfd:tsrun-init/);
    const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
    assert.ok(rss < 10 * 1024, `waiting init RSS ${rss} kB`);
    assert.ok(cgroupDirsOf(b.id).length > 0, "cgroup created");
    assert.match(fs.readFileSync(`/sys/fs/cgroup/memory/${CGROUP_PARENT}/${b.id}/cgroup.procs`, "utf8"), new RegExp(`^${pid}$`, "m"));

    ok(tsrun(["start", b.id]));
    s = stateOf(b.id);
    assert.equal(s.status, "running");
    assert.notEqual(fs.readlinkSync(`/proc/${pid}/exe`), "/memfd:tsrun-init (deleted)");

    const list = JSON.parse(ok(tsrun(["list", "--format", "json"])).stdout) as { id: string; status: string }[];
    assert.ok(list.some((c) => c.id === b.id && c.status === "running"));
    assert.match(ok(tsrun(["list"])).stdout, /^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER\n/);
    assert.ok(ok(tsrun(["list", "-q"])).stdout.split("\n").includes(b.id));

    ok(tsrun(["kill", b.id, "KILL"]));
    waitFor(() => stateOf(b.id).status === "stopped", 2000);
    s = stateOf(b.id);
    assert.equal(s.status, "stopped");
    assert.equal(s.pid, 0);
    const k = tsrun(["kill", b.id]);
    assert.equal(k.status, 1);
    assert.match(k.stderr, /container not running/);

    ok(tsrun(["delete", b.id]));
    assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false);
    assert.deepEqual(cgroupDirsOf(b.id), []);
    const gone = tsrun(["state", b.id]);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /does not exist/);
  });

  test("start refuses a running container; delete refuses it without --force", () => {
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    const again = tsrun(["start", b.id]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /cannot start an already running container/);
    const del = tsrun(["delete", b.id]);
    assert.equal(del.status, 1);
    assert.match(del.stderr, /cannot delete container .* that is not stopped: running/);
    ok(tsrun(["delete", "--force", b.id]));
    assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false);
  });

  test("delete of a created container kills its init", () => {
    const b = makeBundle(["facts"]);
    ok(tsrun(["create", "--bundle", b.dir, b.id]));
    const pid = stateOf(b.id).pid as number;
    ok(tsrun(["delete", b.id]));
    waitFor(() => !fs.existsSync(`/proc/${pid}/stat`) || /\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8")), 1000);
    assert.ok(!fs.existsSync(`/proc/${pid}/stat`) || /\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8")));
  });

  test("run exits with the container's code, 128+N on a signal", () => {
    const b = makeBundle(["exit", "7"]);
    assert.equal(tsrun(["run", "--bundle", b.dir, b.id]).status, 7);
    // (pid 1 of a pid namespace cannot kill itself: share tsrun's pid namespace for this one)
    const k = makeBundle(["kill-self", "9"], (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "pid");
    });
    assert.equal(tsrun(["run", "--bundle", k.dir, k.id]).status, 137);
    // run deletes the container afterwards unless --keep
    assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false);
    const keep = makeBundle(["exit", "3"]);
    assert.equal(tsrun(["run", "--keep", "--bundle", keep.dir, keep.id]).status, 3);
    assert.equal(stateOf(keep.id).status, "stopped");
    ok(tsrun(["delete", keep.id]));
  });

  test("run forwards signals to the container", async () => {
    const b = makeBundle(["wait-signal"]);
    const child = tsrunAsync(["run", "--bundle", b.dir, b.id]);
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 300 && !out.includes("ready"); i++) await sleep(10);
    assert.match(out, /ready/);
    child.kill("SIGUSR2");
    const code = await new Promise<number | null>((r) => child.on("exit", r));
    assert.match(out, /signal 12/);
    assert.equal(code, 112);
  });

  test("kill takes names with and without SIG, and numbers; bad signals are refused", () => {
    for (const sig of ["TERM", "SIGTERM", "15"]) {
      const b = makeBundle(["wait-signal"]);
      ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
      ok(tsrun(["kill", b.id, sig]));
      waitFor(() => stateOf(b.id).status === "stopped", 2000);
      assert.equal(stateOf(b.id).status, "stopped", `signal ${sig}`);
      ok(tsrun(["delete", b.id]));
    }
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    const bad = tsrun(["kill", b.id, "SIGNOPE"]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /unknown signal/);
    ok(tsrun(["kill", "--all", b.id, "KILL"]));
    waitFor(() => stateOf(b.id).status === "stopped", 2000);
    assert.equal(stateOf(b.id).status, "stopped");
    ok(tsrun(["delete", b.id]));
  });

  test("two concurrent creates of one id: exactly one wins", async () => {
    const b = makeBundle(["sleep", "30"]);
    const results = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<number>((resolve) => {
            const c = tsrunAsync(["create", "--bundle", b.dir, b.id]);
            c.on("exit", (code) => resolve(code ?? 1));
          }),
      ),
    );
    assert.equal(results.filter((c) => c === 0).length, 1, `exit codes ${results}`);
    assert.equal(stateOf(b.id).status, "created");
    ok(tsrun(["delete", b.id]));
  });

  test("--version has runc's three-line shape; features lists what is implemented", () => {
    const v = ok(tsrun(["--version"])).stdout.split("\n");
    assert.match(v[0]!, /^tsrun version \d+\.\d+\.\d+/);
    assert.match(v[1]!, /^commit: /);
    assert.match(v[2]!, /^spec: 1\.3\.\d+/);
    const f = JSON.parse(ok(tsrun(["features"])).stdout) as { ociVersionMax: string; linux: { namespaces: string[] }; hooks: string[]; annotations: Record<string, string> };
    assert.equal(f.ociVersionMax, "1.3.0");
    // runc's annotation for CRIU checkpointing, which tsrun does not implement
    assert.equal(f.annotations["org.opencontainers.runc.checkpoint.enabled"], "false");
    assert.deepEqual([...f.linux.namespaces].sort(), ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]);
    assert.ok(f.hooks.includes("createContainer"));
  });

  test("spec writes runc's default config.json and refuses to overwrite it", () => {
    const dir = path.join(work(), "spec-cmd");
    fs.mkdirSync(dir);
    ok(tsrun(["spec", "--bundle", dir]));
    const c = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as { process: { args: string[] }; linux: { namespaces: { type: string }[] } };
    assert.deepEqual(c.process.args, ["sh"]);
    const again = tsrun(["spec", "--bundle", dir]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /exists/);
    const rl = path.join(work(), "spec-rootless");
    fs.mkdirSync(rl);
    ok(tsrun(["spec", "--rootless", "-b", rl]));
    const r = JSON.parse(fs.readFileSync(path.join(rl, "config.json"), "utf8")) as { linux: { namespaces: { type: string }[] } };
    assert.ok(r.linux.namespaces.some((n) => n.type === "user"));
  });
});

