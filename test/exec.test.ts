// tsrun exec: a process joins a running container's namespaces, cgroup, root; gets its own identity;
// exit codes; refusals for stopped and paused containers; tty; process.json.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { CGROUP_PARENT, cleanup, makeBundle, ok, stateRoot, tsrun, TSRUN, work, type Bundle, waitFor } from "./helpers";

after(cleanup);

interface Facts {
  pid: number;
  ppid: number;
  uid: number;
  gid: number;
  groups: number[];
  hostname: string;
  cwd: string;
  env: string[];
  caps: Record<string, string[]>;
  noNewPrivs: boolean;
  namespaces: Record<string, number>;
  cgroup: string[];
  fds: { fd: number; target: string }[];
  stdio: { tty: boolean }[];
}

describe("exec", () => {
  let b: Bundle;
  let initFacts: Facts;
  before(() => {
    b = makeBundle(["sleep", "60"], (s) => {
      s.hostname = "exec-box";
      s.process!.env = ["PATH=/", "BASE=1"];
      s.mounts!.push({ destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["size=1m"] });
    });
    fs.mkdirSync(path.join(b.rootfs, "work"));
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    initFacts = JSON.parse(ok(tsrun(["exec", b.id, "/probe", "facts"])).stdout) as Facts;
  });

  test("the process joins the container's namespaces, cgroup and root", () => {
    const pid = (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { pid: number }).pid;
    for (const ns of ["mnt", "uts", "ipc", "net", "pid"]) {
      assert.equal(initFacts.namespaces[ns], Number(/\[(\d+)\]/.exec(fs.readlinkSync(`/proc/${pid}/ns/${ns}`))![1]), ns);
    }
    assert.equal(initFacts.hostname, "exec-box");
    assert.ok(initFacts.pid > 1, "a new pid in the container's pid namespace");
    assert.equal(initFacts.ppid, 0, "its parent is outside the pid namespace");
    assert.deepEqual(initFacts.cgroup, fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").trim().split("\n"));
    const mounts = JSON.parse(ok(tsrun(["exec", b.id, "/probe", "mountinfo"])).stdout) as { mountPoint: string }[];
    assert.ok(mounts.some((m) => m.mountPoint === "/scratch"), "sees the container's mounts");
    assert.ok(!mounts.some((m) => m.mountPoint.startsWith(work())), "and not the host's");
    assert.deepEqual(
      initFacts.fds.map((f) => f.fd),
      [0, 1, 2],
      "no fd of tsrun",
    );
  });

  test("env, cwd, user, groups, capabilities, no_new_privs from the flags", () => {
    const f = JSON.parse(ok(tsrun(["exec", "-e", "FOO=bar", "--cwd", "/work", "-u", "1000:1001", "-g", "7", "-c", "CAP_CHOWN", "--no-new-privs", b.id, "/probe", "facts"])).stdout) as Facts;
    assert.deepEqual(f.env, ["PATH=/", "BASE=1", "FOO=bar", "HOME=/"]);
    assert.equal(f.cwd, "/work");
    assert.equal(f.uid, 1000);
    assert.equal(f.gid, 1001);
    assert.deepEqual(f.groups, [7]);
    assert.ok(f.caps.bounding!.includes("CAP_CHOWN"));
    assert.ok(!f.caps.inheritable!.includes("CAP_CHOWN"), "exec --cap is never inheritable (runc >= 1.1.2)");
    assert.equal(f.noNewPrivs, true);
  });

  test("exit codes: the process's, 128+N on a signal; a missing binary is an error", () => {
    assert.equal(tsrun(["exec", b.id, "/probe", "exit", "42"]).status, 42);
    assert.equal(tsrun(["exec", b.id, "/probe", "kill-self", "9"]).status, 137);
    const r = tsrun(["exec", b.id, "/nope"]);
    assert.equal(r.status, 255, "runc's status for a failed exec");
    assert.match(r.stderr, /exec failed: exec: "\/nope": stat \/nope: No such file or directory/);
    const badPidDir = tsrun(["exec", "--pid-file", "/no/such/dir/pid", b.id, "/probe", "exit", "0"]);
    assert.equal(badPidDir.status, 255, badPidDir.stderr);
  });

  test("--process process.json, validated by the config schema", () => {
    const pj = path.join(work(), "process.json");
    fs.writeFileSync(pj, JSON.stringify({ args: ["/probe", "facts"], cwd: "/", env: ["ONLY=this"], user: { uid: 5, gid: 6 } }));
    const f = JSON.parse(ok(tsrun(["exec", "--process", pj, b.id])).stdout) as Facts;
    assert.deepEqual([f.uid, f.gid], [5, 6]);
    assert.deepEqual(f.env, ["ONLY=this", "HOME=/"]);
    fs.writeFileSync(pj, JSON.stringify({ args: "nope", cwd: "/" }));
    const bad = tsrun(["exec", "-p", pj, b.id]);
    assert.equal(bad.status, 255);
    assert.match(bad.stderr, /process\.json: args: /);
  });

  test("--detach with --pid-file; --preserve-fds", () => {
    const pidFile = path.join(work(), "exec.pid");
    ok(tsrun(["exec", "-d", "--pid-file", pidFile, b.id, "/probe", "sleep", "5"]));
    const pid = Number(fs.readFileSync(pidFile, "utf8"));
    assert.ok(fs.existsSync(`/proc/${pid}`), "running after tsrun returned");
    process.kill(pid, "SIGKILL");
    const file = path.join(work(), "passed-exec");
    fs.writeFileSync(file, "x");
    const out = path.join(work(), "exec-pf.out");
    const r = spawnSync("/bin/sh", ["-c", `exec 3<"${file}"; exec "${TSRUN}" --root "${stateRoot()}" exec --preserve-fds 1 "${b.id}" /probe facts > "${out}"`]);
    assert.equal(r.status, 0, r.stderr.toString());
    const f = JSON.parse(fs.readFileSync(out, "utf8")) as Facts;
    assert.deepEqual(
      f.fds.map((x) => x.fd),
      [0, 1, 2, 3],
    );
  });

  test("a tty, through a pty of tsrun's own", () => {
    // tsrun exec -t without --console-socket connects the pty to tsrun's stdio (here: a pipe)
    const r = spawnSync(TSRUN, ["--root", stateRoot(), "exec", "-t", b.id, "/probe", "facts"], { encoding: "utf8", timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    const f = JSON.parse(r.stdout.trim().split("\r\n")[0]!) as Facts;
    assert.equal(f.stdio[0]!.tty, true);
  });

  test("an exec'd process gets the container's seccomp profile", () => {
    const s = makeBundle(["sleep", "30"], (spec) => {
      spec.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }] };
    });
    ok(tsrun(["run", "-d", "--bundle", s.dir, s.id]));
    try {
      const r = JSON.parse(ok(tsrun(["exec", s.id, "/probe", "syscall", "mkdir", "/made-by-exec"])).stdout) as { ret: number; errno: number };
      assert.deepEqual([r.ret, r.errno], [-1, 13]);
      const f = JSON.parse(ok(tsrun(["exec", "-u", "1000", s.id, "/probe", "facts"])).stdout) as Facts & { seccomp: number };
      assert.equal(f.seccomp, 2, "filter mode");
      assert.equal(f.uid, 1000, "non-root without no_new_privs still gets the filter");
    } finally {
      ok(tsrun(["delete", "-f", s.id]));
    }
  });

  test("refused in a paused container and in a stopped one", () => {
    const freezer = `/sys/fs/cgroup/freezer/${CGROUP_PARENT}/${b.id}/freezer.state`;
    fs.writeFileSync(freezer, "FROZEN");
    try {
      assert.equal((JSON.parse(ok(tsrun(["state", b.id])).stdout) as { status: string }).status, "paused");
      const r = tsrun(["exec", b.id, "/probe", "exit", "0"]);
      assert.equal(r.status, 255);
      assert.match(r.stderr, /exec failed: cannot exec in a paused container/);
    } finally {
      fs.writeFileSync(freezer, "THAWED");
    }
    ok(tsrun(["kill", b.id, "KILL"]));
    waitFor(() => (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { status: string }).status === "stopped", 5000);
    const r = tsrun(["exec", b.id, "/probe", "exit", "0"]);
    assert.equal(r.status, 255);
    assert.match(r.stderr, /exec failed: cannot exec in a stopped container/);
    const gone = tsrun(["exec", "no-such-" + b.id, "/probe", "exit", "0"]);
    assert.equal(gone.status, 255);
    assert.match(gone.stderr, /exec failed: container "no-such-.*" does not exist/);
    ok(tsrun(["delete", b.id]));
  });
});
