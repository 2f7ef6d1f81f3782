// Seccomp in real containers: errno and kill actions, TRAP, argument filters, LOG, NOTIFY with a listener,
// invalid profiles, noNewPrivileges false, the cache, and Docker's default profile running a shell.
import * as assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import type { LinuxSeccomp } from "../src/spec/schema";
import { REPO, cgroupDirsOf, cleanup, makeBundle, ok, sleep, stateRoot, tsrun, uniqueId, work, type Bundle } from "./helpers";

after(cleanup);

const docker = JSON.parse(fs.readFileSync(path.join(REPO, "test", "fixtures", "docker-default-seccomp.json"), "utf8")) as LinuxSeccomp;

interface SyscallResult {
  name: string;
  ret: number;
  errno: number;
}

function withSeccomp(args: string[], seccomp: LinuxSeccomp, patch?: Parameters<typeof makeBundle>[1]): Bundle {
  return makeBundle(args, (s) => {
    s.linux!.seccomp = seccomp;
    patch?.(s);
  });
}

// Runs the bundle; its stdout as JSON lines.
function lines<T = SyscallResult>(b: Bundle): T[] {
  const r = ok(tsrun(["run", "--bundle", b.dir, b.id]));
  return r.stdout
    .trim()
    .split("\n")
    .filter((l) => l)
    .map((l) => JSON.parse(l) as T);
}

// sh and ls from the host (and their libraries) next to the probe.
function withShell(b: Bundle): Bundle {
  const mk = require(path.join(REPO, "scripts", "mkbundle.js")) as { makeBundle(dir: string, bins: string[]): string };
  mk.makeBundle(b.dir, ["sh", "ls"]);
  return b;
}

let agentBin: string | undefined;
function agent(): string {
  if (!agentBin) {
    agentBin = path.join(work(), "seccomp-agent");
    execFileSync("cc", ["-O2", "-Wall", "-Wextra", "-Werror", "-o", agentBin, path.join(REPO, "spec-tests", "seccomp-agent", "agent.c")]);
  }
  return agentBin;
}

function cacheEntries(): string[] {
  const dir = path.join(stateRoot(), ".seccomp-cache");
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

const SIGSYS_EXIT = 128 + 31;

describe("seccomp in containers", () => {
  test("a denied syscall fails with EPERM, or with the errno the profile names; the rest runs", () => {
    const b = withSeccomp(["multi", "syscall", "mkdir", "/tmp/denied", "--", "syscall", "chmod", "/tmp", "0777", "--", "syscall", "getpid"], {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [
        { names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO" },
        { names: ["chmod", "fchmodat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
      ],
    });
    const [mkdir, chmod, getpid] = lines(b);
    assert.deepEqual(mkdir, { name: "mkdir", ret: -1, errno: 1 });
    assert.deepEqual(chmod, { name: "chmod", ret: -1, errno: 13 });
    assert.deepEqual(getpid, { name: "getpid", ret: 1, errno: 0 });
    assert.equal(fs.existsSync(path.join(b.rootfs, "tmp", "denied")), false, "mkdir did not happen");
  });

  test("KILL_PROCESS and KILL_THREAD end the process with SIGSYS (exit 159), as pid 1 and as a child", () => {
    for (const act of ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL"] as const) {
      const b = withSeccomp(["syscall", "keyctl"], { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["keyctl"], action: act }] });
      const r = tsrun(["run", "--bundle", b.dir, b.id]);
      // pid 1 of a pid namespace ignores signals it has no handler for, but the kernel forces this SIGSYS
      assert.equal(r.status, SIGSYS_EXIT, `${act} on pid 1: ${r.stderr}`);
      assert.equal(r.stdout, "");
    }
    const b = withShell(withSeccomp([], { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["keyctl"], action: "SCMP_ACT_KILL_PROCESS" }] }));
    b.spec.process!.args = ["/bin/sh", "-c", "/probe syscall keyctl; echo status=$?"];
    b.write();
    const r = ok(tsrun(["run", "--bundle", b.dir, b.id]));
    assert.equal(r.stdout.trim(), `status=${SIGSYS_EXIT}`, "the shell (pid 1) sees its child killed by SIGSYS");
  });

  test("TRAP sends SIGSYS: a handler sees the syscall and arch; without one the process dies", () => {
    const p: LinuxSeccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["getppid"], action: "SCMP_ACT_TRAP" }] };
    const [, caught] = lines<{ sigsys: { code: number; syscall: number; arch: number; data: number } | null }>(withSeccomp(["sigsys", "getppid"], p));
    assert.deepEqual(caught!.sigsys, { code: 1, syscall: 110, arch: 0xc000003e, data: 0 }, "si_code SYS_SECCOMP, getppid, AUDIT_ARCH_X86_64");
    const [, free] = lines<{ sigsys: unknown }>(withSeccomp(["sigsys", "getpid"], p));
    assert.equal(free!.sigsys, null, "an allowed call raises nothing");
    const b = withSeccomp(["syscall", "getppid"], p);
    assert.equal(tsrun(["run", "--bundle", b.dir, b.id]).status, SIGSYS_EXIT);
  });

  test("argument filters: one value allowed and another denied, MASKED_EQ, 64-bit values", () => {
    const b = withSeccomp(
      [
        ...["multi", "syscall", "personality", "0xffffffff"],
        ...["--", "syscall", "personality", "8"],
        ...["--", "syscall", "personality", "0x40008"],
        ...["--", "syscall", "personality", "0"],
        ...["--", "syscall", "raw", "110", "5"],
        ...["--", "syscall", "raw", "110", "0x100000005"],
        ...["--", "syscall", "raw", "110", "0x8000000000000000"],
        ...["--", "syscall", "raw", "110", "0x7fffffffffffffff"],
      ],
      {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [
          { names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 0xffffffff, op: "SCMP_CMP_EQ" }] },
          { names: ["personality"], action: "SCMP_ACT_ERRNO", errnoRet: 22, args: [{ index: 0, value: 0xff, valueTwo: 8, op: "SCMP_CMP_MASKED_EQ" }] },
          { names: ["getppid"], action: "SCMP_ACT_ERRNO", errnoRet: 77, args: [{ index: 0, value: 2 ** 32 + 5, op: "SCMP_CMP_EQ" }] },
          { names: ["getppid"], action: "SCMP_ACT_ERRNO", errnoRet: 78, args: [{ index: 0, value: 2 ** 63, op: "SCMP_CMP_GE" }] },
        ],
      },
    );
    const r = lines(b);
    assert.deepEqual(
      r.map((x) => [x.ret, x.errno]),
      [
        [0, 0], // personality query: allowed
        [-1, 22], // PER_LINUX32: (8 & 0xff) == 8
        [-1, 22], // ADDR_NO_RANDOMIZE|PER_LINUX32: still 8 under the mask
        [0, 0], // PER_LINUX: not matched, the default
        [0, 0], // getppid(5): the low word matches 2^32+5, the high word does not
        [-1, 77], // getppid(2^32+5)
        [-1, 78], // getppid(2^63) >= 2^63
        [0, 0], // 2^63-1 < 2^63
      ],
    );
  });

  test("LOG lets the call through and the kernel logs it (audit record with the action)", async () => {
    // Without auditd the record goes to the kernel log through printk_ratelimit() (10 per 5 s, machine-wide):
    // a record dropped there is tried again after the window.
    const pids: number[] = [];
    let found = "";
    for (let attempt = 0; attempt < 3 && !found; attempt++) {
      if (attempt > 0) await sleep(5500);
      const b = withSeccomp(["syscall", "getppid"], { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["getppid"], action: "SCMP_ACT_LOG" }] });
      ok(tsrun(["create", "--bundle", b.dir, b.id]));
      const pid = (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { pid: number }).pid;
      pids.push(pid);
      ok(tsrun(["start", b.id]));
      for (let i = 0; i < 20 && !found; i++) {
        await sleep(100);
        const log = spawnSync("dmesg", [], { encoding: "utf8" }).stdout;
        found = log.split("\n").find((l) => l.includes(`pid=${pid} `) && / syscall=110 /.test(l) && /code=0x7ffc0000/.test(l)) ?? "";
      }
      ok(tsrun(["delete", "--force", b.id]));
    }
    assert.ok(found, `an audit record for pid ${pids.join(" or ")} with code=0x7ffc0000 (SECCOMP_RET_LOG)`);
  });

  test("NOTIFY: the listener gets the container process state and the notify fd, and answers for the process", async () => {
    const sock = path.join(work(), `${uniqueId("agent")}.sock`);
    const stateFile = `${sock}.state`;
    const logFile = `${sock}.log`;
    const a = spawn(agent(), [sock, stateFile, logFile], { stdio: ["ignore", "ignore", "pipe"] });
    let agentErr = "";
    a.stderr!.on("data", (d: Buffer) => (agentErr += d.toString()));
    const exited = new Promise<number | null>((resolve) => a.on("exit", (code) => resolve(code)));
    try {
      for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await sleep(20);
      const b = withSeccomp(["multi", "syscall", "mkdir", "/tmp/notified", "--", "syscall", "uname", "--", "syscall", "getpid"], {
        defaultAction: "SCMP_ACT_ALLOW",
        listenerPath: sock,
        listenerMetadata: 'MKNOD=/dev/null;note="quoted"',
        syscalls: [{ names: ["mkdir", "uname"], action: "SCMP_ACT_NOTIFY" }],
      });
      b.spec.annotations = { "org.example/key": "value" };
      b.write();
      const out = lines(b);
      assert.deepEqual(out[0], { name: "mkdir", ret: 4242, errno: 0 }, "the agent's answer, not the kernel's");
      assert.deepEqual(out[1], { name: "uname", ret: 0, errno: 0 }, "continued by the agent");
      assert.deepEqual(out[2], { name: "getpid", ret: 1, errno: 0 });
      assert.equal(fs.existsSync(path.join(b.rootfs, "tmp", "notified")), false);
      assert.equal(await exited, 0, `agent: ${agentErr}`);
      const [json, fdLine] = fs.readFileSync(stateFile, "utf8").split("\n");
      assert.equal(fdLine, "1", "the notify fd came with SCM_RIGHTS");
      const st = JSON.parse(json!) as { ociVersion: string; fds: string[]; pid: number; metadata: string; state: { id: string; pid: number; status: string; bundle: string; annotations: Record<string, string> } };
      assert.equal(st.ociVersion, "1.3.0");
      assert.deepEqual(st.fds, ["seccompFd"]);
      assert.equal(st.metadata, 'MKNOD=/dev/null;note="quoted"');
      assert.equal(st.state.id, b.id);
      assert.equal(st.state.bundle, b.dir);
      assert.equal(st.state.status, "created");
      assert.deepEqual(st.state.annotations, { "org.example/key": "value" });
      assert.ok(st.pid > 1 && st.pid === st.state.pid, `pid ${st.pid} as tsrun sees it`);
      const notes = fs
        .readFileSync(logFile, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { nr: number; pid: number; arch: number });
      assert.deepEqual(
        notes.map((n) => [n.nr, n.pid, n.arch]),
        [
          [83, st.pid, 0xc000003e],
          [63, st.pid, 0xc000003e],
        ],
        "mkdir and uname, from the container's init",
      );
    } finally {
      a.kill("SIGKILL");
    }
  });

  test("NOTIFY in exec: the exec'd process's notify fd and state go to the listener too", async () => {
    // An agent takes one connection: the first gets the init's fd at start, a second (same path) the exec's.
    const sock = path.join(work(), `${uniqueId("agent")}.sock`);
    const agents: ReturnType<typeof spawn>[] = [];
    const startAgent = async (tag: string) => {
      fs.rmSync(sock, { force: true });
      const a = spawn(agent(), [sock, `${sock}.${tag}.state`, `${sock}.${tag}.log`], { stdio: "ignore" });
      agents.push(a);
      for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await sleep(20);
    };
    const b = withSeccomp(["sleep", "30"], { defaultAction: "SCMP_ACT_ALLOW", listenerPath: sock, syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_NOTIFY" }] });
    try {
      await startAgent("init");
      ok(tsrun(["create", "--bundle", b.dir, b.id]));
      ok(tsrun(["start", b.id]));
      const initPid = (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { pid: number }).pid;
      await startAgent("exec");
      const out = ok(tsrun(["exec", b.id, "/probe", "syscall", "mkdir", "/tmp/by-exec"])).stdout;
      assert.deepEqual(JSON.parse(out.trim()) as SyscallResult, { name: "mkdir", ret: 4242, errno: 0 }, "the second agent's answer");
      const [json, fdLine] = fs.readFileSync(`${sock}.exec.state`, "utf8").split("\n");
      assert.equal(fdLine, "1", "the notify fd came with SCM_RIGHTS");
      const st = JSON.parse(json!) as { fds: string[]; pid: number; state: { id: string; pid: number; status: string } };
      assert.deepEqual(st.fds, ["seccompFd"]);
      assert.ok(st.pid > 0 && st.pid !== initPid, `the exec's pid ${st.pid}, not the init's ${initPid}`);
      assert.deepEqual([st.state.id, st.state.pid, st.state.status], [b.id, initPid, "running"]);
      assert.equal(fs.existsSync(path.join(b.rootfs, "tmp", "by-exec")), false);
    } finally {
      tsrun(["delete", "--force", b.id]);
      for (const a of agents) a.kill("SIGKILL");
    }
  });

  test("NOTIFY with no listener at listenerPath: create fails and leaves nothing behind", () => {
    const missing = path.join(work(), "no-agent.sock");
    const b = withSeccomp(["syscall", "getpid"], { defaultAction: "SCMP_ACT_ALLOW", listenerPath: missing, syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_NOTIFY" }] });
    const r = tsrun(["create", "--bundle", b.dir, b.id]);
    assert.equal(r.status, 1);
    assert.match(r.stderr.trim(), new RegExp(`^config\\.json: linux\\.seccomp\\.listenerPath: .*${missing.replace(/[.]/g, "\\.")}.*(No such file|ENOENT)`));
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false);
    assert.deepEqual(cgroupDirsOf(b.id), []);
  });

  test("an invalid profile is refused with the JSON path before anything starts", () => {
    const before = cacheEntries();
    const cases: [LinuxSeccomp, RegExp][] = [
      [
        { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["getpid"], action: "SCMP_ACT_ALLOW" }, { names: ["personality"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 8, valueTwo: 1, op: "SCMP_CMP_EQ" }] }] },
        /^config\.json: linux\.seccomp\.syscalls\[1\]\.args\[0\]\.valueTwo: only SCMP_CMP_MASKED_EQ uses valueTwo/,
      ],
      [{ defaultAction: "SCMP_ACT_KILL", defaultErrnoRet: 3 }, /^config\.json: linux\.seccomp\.defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno/],
      [{ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["x"], action: "SCMP_ACT_BOGUS" as "SCMP_ACT_ALLOW" }] }, /^config\.json: linux\.seccomp\.syscalls\[0\]\.action: invalid value "SCMP_ACT_BOGUS"/],
      [{ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["x"], action: "SCMP_ACT_ALLOW", args: [{ index: 6, value: 0, op: "SCMP_CMP_EQ" }] }] }, /^config\.json: linux\.seccomp\.syscalls\[0\]\.args\[0\]\.index: /],
    ];
    for (const [profile, pattern] of cases) {
      const b = withSeccomp(["syscall", "getpid"], profile);
      const r = tsrun(["create", "--bundle", b.dir, b.id]);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr.trim(), pattern);
      assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false, "no state directory");
      assert.deepEqual(cgroupDirsOf(b.id), [], "no cgroup");
    }
    assert.deepEqual(cacheEntries(), before, "nothing cached");
  });

  test("noNewPrivileges false: the filter loads for root and for a non-root user; capabilities end as configured", () => {
    for (const user of [{ uid: 0, gid: 0 }, { uid: 1000, gid: 1000 }]) {
      const b = withSeccomp(["multi", "syscall", "mkdir", "/tmp/x", "--", "facts"], { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] }, (s) => {
        s.process!.noNewPrivileges = false;
        s.process!.user = user;
        s.process!.capabilities = { bounding: ["CAP_KILL", "CAP_CHOWN"], effective: ["CAP_KILL"], permitted: ["CAP_KILL"], inheritable: [], ambient: [] };
      });
      const [mkdir, facts] = lines<Record<string, unknown>>(b);
      assert.deepEqual(mkdir, { name: "mkdir", ret: -1, errno: 1 }, `uid ${user.uid}`);
      const f = facts as { uid: number; noNewPrivs: boolean; seccomp: number; caps: Record<string, string[]> };
      assert.equal(f.uid, user.uid);
      assert.equal(f.noNewPrivs, false);
      assert.equal(f.seccomp, 2, "SECCOMP_MODE_FILTER");
      for (const set of ["effective", "permitted", "inheritable", "ambient", "bounding"]) assert.ok(!f.caps[set]!.includes("CAP_SYS_ADMIN"), `no CAP_SYS_ADMIN left in ${set} (uid ${user.uid})`);
      if (user.uid === 0) assert.deepEqual([...f.caps.effective!].sort(), ["CAP_CHOWN", "CAP_KILL"], "root gets its bounding set at exec");
      else assert.deepEqual(f.caps.effective, [], "a non-root user without ambient capabilities has none after exec");
    }
  });

  test("the compiled filter is cached under the state root; the next create uses it", () => {
    const profile: LinuxSeccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 61 }] };
    const debugRun = (b: Bundle) => ok(tsrun(["--debug", "run", "--bundle", b.dir, b.id]));
    const first = debugRun(withSeccomp(["syscall", "mkdir", "/tmp/c"], profile));
    const m = /seccomp: \d+ instructions, flags 0x0, cache (miss|hit) \((.*\.bpf)\)/.exec(first.stderr);
    assert.ok(m, first.stderr);
    assert.equal(m[1], "miss");
    assert.equal(path.dirname(m[2]!), path.join(stateRoot(), ".seccomp-cache"));
    assert.ok(fs.existsSync(m[2]!));
    const second = debugRun(withSeccomp(["syscall", "mkdir", "/tmp/c"], profile));
    assert.match(second.stderr, /cache hit/);
    assert.deepEqual(JSON.parse(second.stdout), { name: "mkdir", ret: -1, errno: 61 });
    // tsrun list does not take the cache for a container
    assert.ok(!ok(tsrun(["list", "-q"])).stdout.includes(".seccomp-cache"));
  });

  test("Docker's default profile: a shell works normally; what it denies is denied; new syscalls get ENOSYS", () => {
    const b = withShell(withSeccomp([], docker, (s) => (s.process!.noNewPrivileges = false)));
    b.spec.process!.args = ["/bin/sh", "-c", "echo ok; ls /; /probe multi syscall raw 165 0 0 0 0 0 -- syscall raw 435 0 0 -- syscall raw 460 -- syscall unshare 0x10000000 -- syscall getppid"];
    b.write();
    const r = ok(tsrun(["run", "--bundle", b.dir, b.id]));
    const out = r.stdout.trim().split("\n");
    assert.equal(out[0], "ok");
    const listing = out.slice(1, -5);
    for (const d of ["bin", "dev", "etc", "probe", "proc", "tmp"]) assert.ok(listing.includes(d), `ls / lists ${d}: ${listing.join(" ")}`);
    const calls = out.slice(-5).map((l) => JSON.parse(l) as SyscallResult);
    assert.deepEqual(
      calls.map((c) => c.errno),
      [1, 38, 38, 1, 0],
      "mount EPERM, clone3 ENOSYS (profile), syscall 460 ENOSYS (newer than the profile), unshare(CLONE_NEWUSER) EPERM, getppid fine",
    );
  });

  test("features lists seccomp with what the compiler supports", () => {
    const f = JSON.parse(ok(tsrun(["features"])).stdout) as { linux: { seccomp: { enabled: boolean; actions: string[]; operators: string[]; archs: string[]; knownFlags: string[]; supportedFlags: string[] } } };
    const s = f.linux.seccomp;
    assert.equal(s.enabled, true);
    assert.ok(s.actions.includes("SCMP_ACT_NOTIFY") && s.actions.includes("SCMP_ACT_KILL_PROCESS"));
    assert.equal(s.operators.length, 7);
    assert.deepEqual([...s.archs].sort(), ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"]);
    assert.ok(s.knownFlags.includes("SECCOMP_FILTER_FLAG_LOG"));
    assert.ok(s.supportedFlags.every((x) => s.knownFlags.includes(x)));
  });
});
