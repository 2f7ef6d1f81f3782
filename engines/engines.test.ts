// `npm run test:engines`: containerd and podman run containers through tsrun unchanged — and through runc,
// when it is installed, as the reference, so a difference shows at a glance.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Docker } from "./docker";
import { buildImage, Containerd, type Engine, hasCommand, type Image, Podman, TSRUN, unmountUnder } from "./engines";

// (lowercase: podman names an image pulled from oci:PATH after the path)
const work = path.join(os.tmpdir(), `tsrun-engines-${process.pid}`);
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work);
let image: Image;
const engines: Engine[] = [];
after(() => {
  for (const e of engines) {
    try {
      e.close();
    } catch (err) {
      console.error(`# closing ${e.name}: ${String(err)}`);
    }
  }
  unmountUnder(work); // also what an engine that failed to start left mounted
  fs.rmSync(work, { recursive: true, force: true });
});

interface Facts {
  uid: number;
  gid: number;
  cwd: string;
  env: string[];
  stdio: { tty: boolean }[];
}

function json<T>(out: string): T {
  const line = out.split(/\r?\n/).find((l) => l.trim().startsWith("{") || l.trim().startsWith("["));
  if (!line) throw new Error(`no JSON in output: ${JSON.stringify(out)}`);
  return JSON.parse(line.trim()) as T;
}

function waitStatus(e: Engine, name: string, want: string, ms = 15_000): string {
  const deadline = Date.now() + ms;
  let s = e.status(name);
  while (s !== want && Date.now() < deadline) {
    spawnSync("sleep", ["0.1"]);
    s = e.status(name);
  }
  return s;
}

// Runs a command under a real pty (python's pty module), returns what it printed.
function underPty(cmd: { cmd: string; args: string[]; env: NodeJS.ProcessEnv }): string {
  const py = `
import os, sys, pty, select, subprocess, time
master, slave = os.openpty()
p = subprocess.Popen(sys.argv[1:], stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
os.close(slave)
out = b""
deadline = time.time() + 60
while time.time() < deadline:
    r, _, _ = select.select([master], [], [], 0.2)
    if r:
        try: d = os.read(master, 65536)
        except OSError: break
        if not d: break
        out += d
    elif p.poll() is not None: break
p.wait(timeout=10)
sys.stdout.write(out.decode(errors="replace"))
`;
  const r = spawnSync("python3", ["-c", py, cmd.cmd, ...cmd.args], { encoding: "utf8", env: cmd.env, timeout: 90_000 });
  return r.stdout;
}

// "tsrun-shim": containerd through tsrun's own shim (containerd-shim-tsrun-v2), no runc shim in between
const runtimes: { name: string; path: string; shim?: boolean }[] = [{ name: "tsrun", path: TSRUN }];
if (hasCommand("runc")) runtimes.push({ name: "runc", path: spawnSync("sh", ["-c", "command -v runc"], { encoding: "utf8" }).stdout.trim() });
runtimes.push({ name: "tsrun-shim", path: TSRUN, shim: true });
// TSRUN_ENGINES_RUNTIMES=tsrun-shim,runc: only these (a focused run)
const only = process.env.TSRUN_ENGINES_RUNTIMES?.split(",").filter(Boolean);
if (only?.length) runtimes.splice(0, runtimes.length, ...runtimes.filter((r) => only.includes(r.name)));

before(() => {
  image = buildImage(work);
});

let seq = 0;
const uid = () => `e${process.pid}x${seq++}`;

for (const rt of runtimes) {
  // Docker when its engine is installed (Debian's docker.io): it runs here with --bridge=none
  const engineNames = rt.shim ? (["containerd"] as const) : (["containerd", "podman", ...(hasCommand("dockerd") && hasCommand("skopeo") ? (["docker"] as const) : [])] as const);
  for (const engineName of engineNames) {
    describe(`${engineName} with ${rt.name}`, { concurrency: false }, () => {
      let e: Engine;
      before(() => {
        const dir = path.join(work, `${engineName}-${rt.name}`);
        e = engineName === "containerd" ? new Containerd(dir, rt.path, image, rt.shim === true) : engineName === "podman" ? new Podman(dir, rt.path, image) : new Docker(dir, rt.path, image);
        engines.push(e);
      });

      test("run: stdout and the exit code", () => {
        const r = e.run(uid(), ["/probe", "multi", "echo", "hello from the container", "--", "exit", "3"]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stdout, /hello from the container/);
      });

      test("detached run, then exec: exit code, user, cwd, env", () => {
        const name = uid();
        e.runDetached(name, ["/probe", "sleep", "120"]);
        try {
          assert.equal(waitStatus(e, name, "running"), "running");
          assert.equal(e.exec(name, ["/probe", "exit", "5"]).code, 5);
          const r = e.exec(name, ["/probe", "facts"], { user: "1000:1000", cwd: "/work", env: ["FOO=bar"] });
          assert.equal(r.code, 0, r.stderr);
          const f = json<Facts>(r.stdout);
          assert.deepEqual([f.uid, f.gid], [1000, 1000]);
          assert.equal(f.cwd, "/work");
          assert.ok(f.env.includes("FOO=bar"), f.env.join(" "));
        } finally {
          e.remove(name);
        }
      });

      test("tty: the process has a terminal (driven through a pty)", () => {
        const out = underPty(e.ttyCommand(uid(), ["/probe", "facts"]));
        const f = json<Facts>(out);
        assert.equal(f.stdio[0]!.tty, true);
        assert.equal(f.stdio[1]!.tty, true);
      });

      test("stdin is passed through (and its end, but for ctr)", () => {
        if (engineName !== "containerd") {
          const r = e.run(uid(), ["/bin/cat"], { input: "line one\nline two\n" });
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout, "line one\nline two\n");
        } else {
          // ctr never closes a non-tty process's stdin at end of input (runc alike): read one line
          const r = e.run(uid(), ["/bin/head", "-n", "1"], { input: "line one\nline two\n" });
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout, "line one\n");
        }
      });

      test("pause and resume", () => {
        const name = uid();
        e.runDetached(name, ["/probe", "sleep", "120"]);
        try {
          assert.equal(waitStatus(e, name, "running"), "running");
          e.pause(name);
          assert.equal(waitStatus(e, name, "paused"), "paused");
          e.resume(name);
          assert.equal(waitStatus(e, name, "running"), "running");
        } finally {
          e.remove(name);
        }
      });

      test("stop, kill, rm", () => {
        const a = uid();
        e.runDetached(a, ["/probe", "wait-signal"]);
        const b = uid();
        e.runDetached(b, ["/probe", "sleep", "120"]);
        try {
          assert.equal(waitStatus(e, a, "running"), "running");
          e.stop(a);
          assert.equal(waitStatus(e, a, "stopped"), "stopped");
          assert.equal(waitStatus(e, b, "running"), "running");
          e.kill(b, "SIGKILL");
          assert.equal(waitStatus(e, b, "stopped"), "stopped");
        } finally {
          e.remove(a);
          e.remove(b);
        }
        assert.equal(e.status(a), "unknown", "removed");
      });

      test("stats: the task's cgroup metrics (containerd: ctr task metrics)", { skip: engineName !== "containerd" }, () => {
        const name = uid();
        e.runDetached(name, ["/probe", "sleep", "120"]);
        try {
          assert.equal(waitStatus(e, name, "running"), "running");
          const r = (e as Containerd).metrics(name);
          assert.equal(r.code, 0, r.stderr);
          const usage = /memory\.usage_in_bytes\s+(\d+)/.exec(r.stdout);
          assert.ok(usage && Number(usage[1]) > 0, r.stdout);
          assert.match(r.stdout, /pids\.current\s+1\b/);
          const cpu = /cpuacct\.usage\s+(\d+)/.exec(r.stdout);
          assert.ok(cpu && Number(cpu[1]) > 0, r.stdout);
        } finally {
          e.remove(name);
        }
      });

      test("memory limit: read inside, enforced (the OOM kill gives 137)", () => {
        const limit = 64 << 20;
        const r = e.run(uid(), ["/probe", "multi", "read", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "--", "hog", "512"], { memoryBytes: limit });
        assert.equal(r.code, 137, `exit ${r.code}: ${r.stdout} ${r.stderr}`);
        assert.equal(json<{ content: string }>(r.stdout).content.trim(), String(limit), r.stdout);
      });

      test("pids limit", () => {
        const r = e.run(uid(), ["/probe", "multi", "read", "/sys/fs/cgroup/pids/pids.max", "--", "sleepers", "30", "0.2"], { pidsLimit: 10 });
        assert.equal(json<{ content: string }>(r.stdout).content.trim(), "10", r.stdout + r.stderr);
        assert.notEqual(r.code, 0, "forking past the limit fails");
      });

      test("read-only rootfs", () => {
        const r = e.run(uid(), ["/probe", "write", "/somefile", "x"], { readOnly: true });
        assert.equal(json<{ errno: number }>(r.stdout).errno, 30, r.stdout + r.stderr);
      });

      test("a non-root user", () => {
        const r = e.run(uid(), ["/probe", "facts"], { user: "1000:1000" });
        assert.equal(r.code, 0, r.stderr);
        const f = json<Facts>(r.stdout);
        assert.deepEqual([f.uid, f.gid], [1000, 1000]);
      });

      test("a bad command: the runtime's error reaches the engine's user", () => {
        const r = e.run(uid(), ["/no/such/binary"]);
        assert.notEqual(r.code, 0);
        assert.match(r.stdout + r.stderr, /\/no\/such\/binary.*(no such file|not found)/i);
      });
    });
  }
}
