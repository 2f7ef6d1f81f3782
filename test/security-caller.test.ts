// Trust boundaries (issue 10): a careless or hostile caller's paths and fds, and a container process, must
// not make tsrun act outside its place. Each test is an attack: it asserts that a canary outside the
// container is untouched and that tsrun refuses with one line naming the cause, leaving nothing behind.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Runtime } from "../src/index";
import { CGROUP_PARENT, cleanup, makeBundle, ok, stateRoot, tsrun, TSRUN, work, type Bundle } from "./helpers";

after(cleanup);

interface Facts {
  uid: number;
  caps: Record<string, string[]>;
  fds: { fd: number; target: string }[];
}

// Runs bin/tsrun under sh, so a test can hand it fds (`exec 3<file`) or plant files named after its pid
// (`$$` is tsrun's pid: sh execs bin/tsrun, which execs node).
function shTsrun(prelude: string, args: string[], env: Record<string, string> = {}): { status: number; stdout: string; stderr: string } {
  const quoted = args.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  const r = spawnSync("/bin/sh", ["-c", `${prelude}\nexec '${TSRUN}' --root '${stateRoot()}' ${quoted}`], { cwd: work(), encoding: "utf8", timeout: 30_000, env: { ...process.env, ...env } });
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line of error, got: ${stderr}`);
  return lines[0]!;
}

function assertNothingLeft(id: string): void {
  assert.equal(fs.existsSync(path.join(stateRoot(), id)), false, "no state left");
  for (const c of ["memory", "pids", "unified"]) assert.equal(fs.existsSync(`/sys/fs/cgroup/${c}/${CGROUP_PARENT}/${id}`), false, `no ${c} cgroup left`);
}

function canary(name: string): { file: string; check(): void } {
  const file = path.join(work(), name);
  fs.writeFileSync(file, "canary\n", { mode: 0o600 });
  return {
    file,
    check() {
      assert.equal(fs.readFileSync(file, "utf8"), "canary\n", `${name} unchanged`);
      assert.equal(fs.lstatSync(file).mode & 0o7777, 0o600, `${name} mode unchanged`);
      assert.ok(fs.lstatSync(file).isFile(), `${name} still a file`);
    },
  };
}

function listen(sock: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((c) => c.destroy());
    srv.once("error", reject);
    srv.listen(sock, () => resolve(srv));
  });
}

describe("security: what a caller hands tsrun", () => {
  let b: Bundle;
  before(() => {
    b = makeBundle(["sleep", "120"], (s) => {
      s.process!.noNewPrivileges = false; // the file-capability attack is about exec without no_new_privs
    });
    fs.copyFileSync(path.join(b.rootfs, "probe"), path.join(b.rootfs, "probe-fcap"));
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
  });

  test("exec --cap never sets the inheritable set: a non-root process gains nothing from a +ei file", () => {
    // A binary in the image carrying file capabilities CAP_NET_ADMIN+ei (CVE-2022-29162 class).
    const r = spawnSync("setcap", ["cap_net_admin+ei", path.join(b.rootfs, "probe-fcap")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const direct = JSON.parse(ok(tsrun(["exec", "--cap", "CAP_NET_ADMIN", "-u", "1000:1000", b.id, "/probe", "facts"])).stdout) as Facts;
    assert.equal(direct.uid, 1000);
    assert.ok(direct.caps.bounding!.includes("CAP_NET_ADMIN"), "added to the bounding set");
    assert.ok(!direct.caps.inheritable!.includes("CAP_NET_ADMIN"), "not in the inheritable set");
    const viaFile = JSON.parse(ok(tsrun(["exec", "--cap", "CAP_NET_ADMIN", "-u", "1000:1000", b.id, "/probe", "exec", "/probe-fcap", "/probe-fcap", "facts"])).stdout) as Facts;
    for (const set of ["effective", "permitted", "inheritable", "ambient"]) assert.ok(!viaFile.caps[set]!.includes("CAP_NET_ADMIN"), `not gained in ${set} through the +ei file`);
    // root still gets the capability it asked for
    const root = JSON.parse(ok(tsrun(["exec", "--cap", "CAP_NET_ADMIN", b.id, "/probe", "facts"])).stdout) as Facts;
    assert.ok(root.caps.effective!.includes("CAP_NET_ADMIN") && root.caps.permitted!.includes("CAP_NET_ADMIN"));
    assert.ok(!root.caps.inheritable!.includes("CAP_NET_ADMIN"));
  });

  test("--pid-file: a symlink planted at the temporary name or at the pid file never writes the host file", () => {
    const c = canary("canary-pid");
    const dir = path.join(work(), "piddir");
    fs.mkdirSync(dir, { recursive: true });
    const pidFile = path.join(dir, "exec.pid");
    // the old predictable temporary name .NAME.PID (PID: tsrun's own, which is the shell's after exec)
    const planted = shTsrun(`ln -s '${c.file}' '${dir}/.exec.pid.'$$`, ["exec", "-d", "--pid-file", pidFile, b.id, "/probe", "exit", "0"]);
    assert.equal(planted.status, 0, planted.stderr);
    c.check();
    assert.ok(fs.lstatSync(pidFile).isFile(), "the pid file is a regular file");
    assert.match(fs.readFileSync(pidFile, "utf8"), /^\d+$/);
    assert.equal(fs.lstatSync(pidFile).mode & 0o777, 0o644);
    // a symlink at the pid file itself is replaced, not followed
    fs.rmSync(pidFile);
    fs.symlinkSync(c.file, pidFile);
    ok(tsrun(["exec", "-d", "--pid-file", pidFile, b.id, "/probe", "exit", "0"]));
    c.check();
    assert.ok(fs.lstatSync(pidFile).isFile(), "the symlink was replaced by the pid file");
    // and no temporary file is left beside it
    const left = fs.readdirSync(dir).filter((f) => f !== "exec.pid" && !fs.lstatSync(path.join(dir, f)).isSymbolicLink());
    assert.deepEqual(left, [], "no temporary file left");
  });

  test("spec: a symlink planted at config.json is never written through", () => {
    const dir = path.join(work(), "spec-planted");
    fs.mkdirSync(dir);
    const canary = path.join(work(), "spec-canary");
    fs.symlinkSync(canary, path.join(dir, "config.json")); // dangling: where the write would land
    const r = tsrun(["spec", "--bundle", dir]);
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim(), "File config.json exists. Remove it first");
    assert.equal(fs.existsSync(canary), false, "the symlink's target was not created");
    fs.rmSync(path.join(dir, "config.json"));
    ok(tsrun(["spec", "--bundle", dir]));
    assert.equal((JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as { ociVersion: string }).ociVersion, "1.3.0");
  });

  test("--console-socket: a symlink to a real socket, or a path that is not a socket, is refused", async () => {
    const sock = path.join(work(), "console.sock");
    const srv = await listen(sock);
    try {
      const link = path.join(work(), "console-link.sock");
      fs.symlinkSync(sock, link);
      const notSock = canary("console-not-a-socket");
      const t = makeBundle(["facts"], (s) => {
        s.process!.terminal = true;
      });
      let r = tsrun(["create", "--console-socket", link, "--bundle", t.dir, t.id]);
      assert.notEqual(r.status, 0, "a symlinked console socket is refused");
      assert.match(oneLine(r.stderr), new RegExp(`--console-socket: .*${link.replace(/[.]/g, "\\.")}.*symbolic link`));
      assertNothingLeft(t.id);
      r = tsrun(["create", "--console-socket", notSock.file, "--bundle", t.dir, t.id]);
      assert.notEqual(r.status, 0);
      assert.match(oneLine(r.stderr), /--console-socket: .*console-not-a-socket.*not a socket/);
      assertNothingLeft(t.id);
      notSock.check();
      // exec -t --console-socket: the same
      r = tsrun(["exec", "-t", "-d", "--console-socket", link, b.id, "/probe", "exit", "0"]);
      assert.notEqual(r.status, 0);
      assert.match(oneLine(r.stderr), /--console-socket: .*symbolic link/);
      // the real socket still works
      ok(tsrun(["create", "--console-socket", sock, "--bundle", t.dir, t.id]));
      ok(tsrun(["delete", "-f", t.id]));
    } finally {
      srv.close();
    }
  });

  test("linux.seccomp.listenerPath: a symlink to a real socket, or a path that is not a socket, is refused", async () => {
    const sock = path.join(work(), "agent.sock");
    const srv = await listen(sock);
    try {
      const link = path.join(work(), "agent-link.sock");
      fs.symlinkSync(sock, link);
      const notSock = canary("agent-not-a-socket");
      for (const [where, expect] of [
        [link, /symbolic link/],
        [notSock.file, /not a socket/],
      ] as const) {
        const t = makeBundle(["facts"], (s) => {
          s.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW", listenerPath: where, syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_NOTIFY" }] };
        });
        const r = tsrun(["create", "--bundle", t.dir, t.id]);
        assert.notEqual(r.status, 0, `${where} refused`);
        const line = oneLine(r.stderr);
        assert.match(line, /linux\.seccomp\.listenerPath: /);
        assert.ok(line.includes(where), line);
        assert.match(line, expect);
        assertNothingLeft(t.id);
      }
      notSock.check();
      // exec connects again: a listener socket swapped for a symlink after create is refused there too
      const n = makeBundle(["sleep", "60"], (s) => {
        s.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW", listenerPath: sock, syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_NOTIFY" }] };
      });
      ok(tsrun(["run", "-d", "--bundle", n.dir, n.id]));
      try {
        fs.renameSync(sock, path.join(work(), "agent-moved.sock"));
        fs.symlinkSync(path.join(work(), "agent-moved.sock"), sock);
        const r = tsrun(["exec", n.id, "/probe", "exit", "0"]);
        assert.notEqual(r.status, 0);
        assert.match(oneLine(r.stderr), /linux\.seccomp\.listenerPath: .*agent\.sock is a symbolic link/);
      } finally {
        ok(tsrun(["delete", "-f", n.id]));
      }
    } finally {
      srv.close();
    }
  });

  test("--preserve-fds and LISTEN_FDS refuse fds the caller did not pass; passed ones reach the container", () => {
    // only stdio passed: fds 3.. are tsrun's own (Node's eventpoll, pipes): refused
    let r = shTsrun("", ["exec", "--preserve-fds", "5", b.id, "/probe", "facts"]);
    assert.notEqual(r.status, 0, `refused: ${r.stdout}`);
    assert.equal(oneLine(r.stderr), "exec failed: --preserve-fds: fd 3 was not passed by the caller");
    const file = path.join(work(), "passed-fd");
    fs.writeFileSync(file, "x");
    // fds 3 and 4 passed, 5 not
    r = shTsrun(`exec 3<'${file}' 4<'${file}'`, ["exec", "--preserve-fds", "3", b.id, "/probe", "facts"]);
    assert.notEqual(r.status, 0);
    assert.equal(oneLine(r.stderr), "exec failed: --preserve-fds: fd 5 was not passed by the caller");
    // all five passed: they reach the process, and nothing else
    r = shTsrun(`exec 3<'${file}' 4<'${file}' 5<'${file}' 6<'${file}' 7<'${file}'`, ["exec", "--preserve-fds", "5", b.id, "/probe", "facts"]);
    assert.equal(r.status, 0, r.stderr);
    const f = JSON.parse(r.stdout) as Facts;
    assert.deepEqual(
      f.fds.map((x) => x.fd),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    for (const x of f.fds.slice(3)) assert.equal(x.target, file);
    // create/run: the same, and nothing is left behind
    const t = makeBundle(["facts"]);
    r = shTsrun(`exec 3<'${file}'`, ["run", "--preserve-fds", "2", "--bundle", t.dir, t.id]);
    assert.notEqual(r.status, 0);
    assert.equal(oneLine(r.stderr), "--preserve-fds: fd 4 was not passed by the caller");
    assertNothingLeft(t.id);
    r = shTsrun("", ["run", "--bundle", t.dir, t.id], { LISTEN_FDS: "2", LISTEN_PID: "1" });
    assert.notEqual(r.status, 0);
    assert.equal(oneLine(r.stderr), "LISTEN_FDS: fd 3 was not passed by the caller");
    assertNothingLeft(t.id);
    r = shTsrun(`exec 3<'${file}' 4<'${file}'`, ["run", "--preserve-fds", "1", "--bundle", t.dir, t.id], { LISTEN_FDS: "1", LISTEN_PID: "1" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      (JSON.parse(r.stdout) as Facts).fds.map((x) => x.fd),
      [0, 1, 2, 3, 4],
    );
  });

  test("library callers say which fds they pass: any other is refused", async () => {
    const rt = new Runtime({ root: stateRoot(), log: { file: path.join(work(), "lib.log") } });
    const c = await rt.get(b.id);
    const proc = { args: ["/probe", "exit", "0"], cwd: "/" };
    // fd 3 of this (Node) process is Node's own: not passed unless the caller lists it
    await assert.rejects(c.exec(proc, { preserveFds: 1 }), { name: "TsrunError", message: "--preserve-fds: fd 3 was not passed by the caller" });
    await assert.rejects(c.exec(proc, { preserveFds: 2, passedFds: [3] }), { message: "--preserve-fds: fd 4 was not passed by the caller" });
    const p = await c.exec(proc, { preserveFds: 1, passedFds: [3] });
    assert.deepEqual(await p.wait(), { code: 0, signal: null }, "a listed fd is passed");
    const t = makeBundle(["facts"]);
    await assert.rejects(rt.create(t.id, { bundle: t.dir, preserveFds: 1 }), { message: "--preserve-fds: fd 3 was not passed by the caller" });
    assertNothingLeft(t.id);
  });

  test("oversized set-up messages: one line naming the cause, non-zero, nothing left", () => {
    const cases: [string, (s: Bundle["spec"]) => void, RegExp][] = [
      ["70000 env entries", (s) => (s.process!.env = Array.from({ length: 70_000 }, (_, i) => `V${i}=1`)), /process\.env/],
      ["100000 args", (s) => (s.process!.args = ["/probe", ...Array.from({ length: 100_000 }, () => "x")]), /process\.args/],
      ["70000 additional gids", (s) => (s.process!.user = { uid: 0, gid: 0, additionalGids: Array.from({ length: 70_000 }, (_, i) => i + 1) }), /additionalGids/],
      ["a 1 MiB hostname", (s) => (s.hostname = "h".repeat(1 << 20)), /hostname: 1048576 bytes/],
      ["a 70 MiB env entry (more than one frame)", (s) => (s.process!.env = ["BIG=" + "x".repeat(70 << 20)]), /too large: .*process\.args and process\.env/],
    ];
    for (const [what, patch, expect] of cases) {
      const t = makeBundle(["facts"], patch);
      const r = tsrun(["run", "--bundle", t.dir, t.id]);
      assert.notEqual(r.status, 0, what);
      const line = oneLine(r.stderr);
      assert.doesNotMatch(line, /RangeError|out of range|ERR_/, what);
      assert.ok(line.length < 300, `${what}: a short line, not the input (${line.length} characters)`);
      assert.match(line, expect, what);
      assertNothingLeft(t.id);
    }
    // exec with a process.json of 100000 args
    const pj = path.join(work(), "huge-process.json");
    fs.writeFileSync(pj, JSON.stringify({ args: ["/probe", ...Array.from({ length: 100_000 }, () => "x")], cwd: "/" }));
    const r = tsrun(["exec", "--process", pj, b.id]);
    assert.notEqual(r.status, 0);
    assert.match(oneLine(r.stderr), /process\.args/);
  });
});
