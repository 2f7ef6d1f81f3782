// The shim: run -d / create --shim put the container under a small supervisor that is its parent and
// subreaper, records its exit in state, holds its stdio (logs) or pty (attach), and survives SIGHUP.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { cleanup, makeBundle, ok, stateRoot, tsrun, TSRUN, work, sleepSync, waitFor } from "./helpers";

after(cleanup);

interface State {
  pid: number;
  status: string;
  exit?: { code: number; signal: number; time: string };
}

function state(id: string): State {
  return JSON.parse(ok(tsrun(["state", id])).stdout) as State;
}

function waitStopped(id: string, ms = 10_000): State {
  let s = state(id);
  waitFor(() => (s = state(id)).status === "stopped", ms);
  return s;
}

function shimPid(id: string): number {
  return (JSON.parse(fs.readFileSync(path.join(stateRoot(), id, "state.json"), "utf8")) as { shimPid: number }).shimPid;
}

function zombiesOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      if (f[0] === "Z" && Number(f[1]) === ppid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

describe("shim", () => {
  test("run -d: the shim is the init's parent; state shows the exit code, signal and time", () => {
    const b = makeBundle(["multi", "echo", "out", "--", "sleep", "3", "--", "exit", "3"]);
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    const s0 = state(b.id);
    const shim = shimPid(b.id);
    assert.equal(Number(fs.readFileSync(`/proc/${s0.pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]), shim, "init's parent is the shim");
    assert.match(fs.readFileSync(`/proc/${shim}/comm`, "utf8"), /tsrun-shim/);
    const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${shim}/status`, "utf8"))![1]);
    assert.ok(rss < 2048, `shim RSS ${rss} kB`);
    const s = waitStopped(b.id);
    assert.equal(s.status, "stopped");
    assert.equal(s.exit?.code, 3);
    assert.equal(s.exit?.signal, 0);
    assert.match(s.exit!.time, /^\d{4}-\d\d-\d\dT.*Z$/);
    ok(tsrun(["delete", b.id]));

    const k = makeBundle(["sleep", "30"]);
    ok(tsrun(["run", "-d", "--bundle", k.dir, k.id]));
    ok(tsrun(["kill", k.id, "KILL"]));
    const ks = waitStopped(k.id);
    assert.deepEqual([ks.exit?.code, ks.exit?.signal], [137, 9]);
    ok(tsrun(["delete", k.id]));
  });

  test("orphans of a container are reaped: no zombie is left on the host", () => {
    // no pid namespace: the orphans are reparented to the shim (the subreaper), not to a container init
    const b = makeBundle(["multi", "fork-orphans", "4", "--", "sleep", "1"], (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "pid");
    });
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    const shim = shimPid(b.id);
    sleepSync(800); // grandchildren exit after 0.5 s
    assert.deepEqual(zombiesOf(shim), []);
    const s = waitStopped(b.id);
    assert.equal(s.exit?.code, 0);
    ok(tsrun(["delete", b.id]));
  });

  test("logs: stdout and stderr captured as JSON lines; -f follows to the end", () => {
    const b = makeBundle(["multi", "echo", "first line", "--", "sleep", "0.5", "--", "echo", "after sleep"]);
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    const followed = ok(tsrun(["logs", "-f", b.id])).stdout;
    assert.equal(followed, "first line\nafter sleep\n");
    const raw = fs.readFileSync(path.join(stateRoot(), b.id, "container.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { log: string; stream: string; time: string });
    assert.ok(raw.every((r) => r.stream === "stdout" && /Z$/.test(r.time)));
    ok(tsrun(["delete", b.id]));
    // stderr is its own stream
    const e = makeBundle(["kill-self", "NOPE"]); // a usage error: the probe complains on stderr
    ok(tsrun(["run", "-d", "--bundle", e.dir, e.id]));
    waitStopped(e.id);
    const log = ok(tsrun(["logs", "-f", e.id]));
    assert.match(log.stderr, /probe/);
    ok(tsrun(["delete", e.id]));
  });

  test("the shim survives SIGHUP and the exit of the tsrun that started it", () => {
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    const shim = shimPid(b.id);
    process.kill(shim, "SIGHUP");
    sleepSync(100);
    assert.ok(fs.existsSync(`/proc/${shim}`), "alive after SIGHUP");
    assert.equal(state(b.id).status, "running");
    ok(tsrun(["delete", "-f", b.id]));
  });

  test("exec --detach into a supervised container: the shim reaps the process", () => {
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    const shim = shimPid(b.id);
    const pidFile = path.join(work(), "exec-d.pid");
    ok(tsrun(["exec", "-d", "--pid-file", pidFile, b.id, "/probe", "exit", "0"]));
    const pid = Number(fs.readFileSync(pidFile, "utf8"));
    assert.ok(waitFor(() => !fs.existsSync(`/proc/${pid}`), 3000), "the exited exec process was reaped");
    assert.deepEqual(zombiesOf(shim), []);
    ok(tsrun(["delete", "-f", b.id]));
  });

  test("attach connects a terminal to the container's pty, with its size", () => {
    const b = makeBundle(["cat"], (s) => {
      s.process!.terminal = true;
    });
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    // Drive `tsrun attach` through a real pty of 40x120, type a line, read it back.
    const py = `
import os, sys, time, select, fcntl, termios, struct, subprocess
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
p = subprocess.Popen(sys.argv[1:], stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
os.close(slave)
time.sleep(0.7)
os.write(master, b"hello-attach\\r")
out = b""
deadline = time.time() + 8
while time.time() < deadline and out.count(b"hello-attach") < 2:
    r, _, _ = select.select([master], [], [], 0.2)
    if r:
        try: out += os.read(master, 4096)
        except OSError: break
sys.stdout.write(out.decode(errors="replace"))
sys.stdout.flush()
`;
    const attach = require("node:child_process").spawn("python3", ["-c", py, TSRUN, "--root", stateRoot(), "attach", b.id], { stdio: ["ignore", "pipe", "inherit"] }) as import("node:child_process").ChildProcessWithoutNullStreams;
    let got = "";
    attach.stdout.on("data", (d: Buffer) => (got += d.toString()));
    return new Promise<void>((resolve, reject) => {
      attach.on("exit", () => {
        try {
          assert.equal(got.split("hello-attach").length - 1, 2, `echo and cat's copy: ${JSON.stringify(got)}`);
          const ws = JSON.parse(ok(tsrun(["exec", b.id, "/probe", "winsize", "/dev/pts/0"])).stdout) as { rows: number; cols: number };
          assert.deepEqual([ws.rows, ws.cols], [40, 120]);
          assert.match(fs.readFileSync(path.join(stateRoot(), b.id, "container.log"), "utf8"), /hello-attach/, "pty output is logged too");
          ok(tsrun(["delete", "-f", b.id]));
          resolve();
        } catch (e) {
          reject(e);
        }
      });
    });
  });

  test("--init: a reaping PID 1 forwards signals and leaves no zombie inside", () => {
    const b = makeBundle(["multi", "fork-orphans", "3", "--", "wait-signal"]);
    ok(tsrun(["run", "-d", "--init", "--bundle", b.dir, b.id]));
    const init = state(b.id).pid;
    assert.match(fs.readFileSync(`/proc/${init}/comm`, "utf8"), /tsrun-reaper/);
    sleepSync(900); // the orphans exit after 0.5 s
    assert.deepEqual(zombiesOf(init), [], "orphans reparented to the reaper were reaped");
    ok(tsrun(["kill", b.id, "TERM"]));
    const s = waitStopped(b.id);
    assert.equal(s.exit?.code, 115, "SIGTERM reached the process (wait-signal exits 100+N)");
    ok(tsrun(["delete", b.id]));
  });

  test("--init with a seccomp profile: the reaper runs under the container's filter too (as tini inside Docker's)", () => {
    const b = makeBundle(["sleep", "30"], (s) => {
      s.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdirat"], action: "SCMP_ACT_ERRNO" }] };
    });
    ok(tsrun(["run", "-d", "--init", "--bundle", b.dir, b.id]));
    const init = state(b.id).pid;
    assert.match(fs.readFileSync(`/proc/${init}/comm`, "utf8"), /tsrun-reaper/);
    assert.match(fs.readFileSync(`/proc/${init}/status`, "utf8"), /^Seccomp:\s+2$/m, "the reaper is filtered");
    ok(tsrun(["delete", "-f", b.id]));
  });

  test("create --shim with start: same supervision for engines' two-step flow; logs of a plain container are refused", () => {
    const b = makeBundle(["exit", "5"]);
    ok(tsrun(["create", "--shim", "--bundle", b.dir, b.id]));
    ok(tsrun(["start", b.id]));
    assert.equal(waitStopped(b.id).exit?.code, 5);
    ok(tsrun(["delete", b.id]));
    const p = makeBundle(["sleep", "30"]);
    const r = spawnSync(TSRUN, ["--root", stateRoot(), "run", "-d", "--no-shim", "--bundle", p.dir, p.id], { stdio: ["ignore", "ignore", "pipe"] });
    assert.equal(r.status, 0);
    const l = tsrun(["logs", p.id]);
    assert.equal(l.status, 1);
    assert.match(l.stderr, /not supervised by a tsrun shim/);
    ok(tsrun(["delete", "-f", p.id]));
  });
});
