// NOTIFY_SOCKET as runc does it: a fake service manager (a datagram socket bound in a temp directory)
// receives what the container says through tsrun: READY=1, MAINPID, and BARRIER=1 with an fd it closes.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { native } from "../src/native";
import { cleanup, makeBundle, ok, stateRoot, TSRUN, tsrun, work } from "./helpers";

after(cleanup);

interface Result {
  status: number;
  stdout: string;
  stderr: string;
  ms: number;
  pid: number;
}

// bin/tsrun with NOTIFY_SOCKET set (or removed: undefined), without blocking the event loop: the fake
// manager answers the barrier meanwhile. Output goes to files (a created container keeps tsrun's stdio).
async function tsrunWith(notify: string | undefined, args: string[], timeoutMs = 30_000): Promise<Result> {
  const env = { ...process.env };
  delete env.NOTIFY_SOCKET;
  if (notify !== undefined) env.NOTIFY_SOCKET = notify;
  const files = [path.join(work(), `out-${process.pid}-${seq}`), path.join(work(), `err-${process.pid}-${seq++}`)] as const;
  const fds = files.map((f) => fs.openSync(f, "w+"));
  const began = Date.now();
  try {
    const child = spawn(TSRUN, ["--root", stateRoot(), ...args], { cwd: work(), env, stdio: ["ignore", fds[0]!, fds[1]!] });
    const status = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`tsrun ${args.join(" ")} did not return within ${timeoutMs} ms`));
      }, timeoutMs);
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        resolve(code ?? 128 + (signal ? 9 : 0));
      });
    });
    return { status, stdout: fs.readFileSync(files[0], "utf8"), stderr: fs.readFileSync(files[1], "utf8"), ms: Date.now() - began, pid: child.pid! };
  } finally {
    for (const fd of fds) fs.closeSync(fd);
    for (const f of files) fs.rmSync(f, { force: true });
  }
}
let seq = 0;

// A fake service manager: every datagram as text, each fd received closed at once (as systemd acknowledges
// BARRIER=1), until stopped.
class Manager {
  readonly path: string;
  readonly messages: string[] = [];
  readonly fdsWith: string[] = []; // the messages that carried an fd
  private fd: number;
  private stopped = false;
  private loop: Promise<void>;

  constructor() {
    this.path = path.join(fs.mkdtempSync(path.join(work(), "mgr-")), "notify.sock");
    this.fd = native().bindUnixgram(this.path);
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!(await native().readable(this.fd, 50))) continue;
      try {
        const m = native().recvMsg(this.fd, 4096);
        const text = m.data.toString();
        this.messages.push(text);
        if (m.fds.length) this.fdsWith.push(text);
        for (const fd of m.fds) fs.closeSync(fd);
      } catch {
        // EAGAIN
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    fs.closeSync(this.fd);
  }
}

function stateOf(id: string): { pid: number; status: string } {
  return JSON.parse(ok(tsrun(["state", id])).stdout) as { pid: number; status: string };
}

describe("NOTIFY_SOCKET", () => {
  test("create + start: the container's READY=1 reaches the caller's socket with MAINPID=<init> and a barrier; start waits for it", async () => {
    const mgr = new Manager();
    try {
      // READY after a while: start returns only once it has been relayed
      const b = makeBundle(["multi", "delay", "0.6", "--", "notify", "READY=1", "--", "sleep", "30"]);
      const c = await tsrunWith(mgr.path, ["create", "--bundle", b.dir, b.id]);
      assert.equal(c.status, 0, c.stderr);
      // runc's layout: notify/ in the state directory, the socket bound at start
      assert.ok(fs.statSync(path.join(stateRoot(), b.id, "notify")).isDirectory());
      assert.equal(fs.existsSync(path.join(stateRoot(), b.id, "notify", "notify.sock")), false);
      const pid = stateOf(b.id).pid;
      const s = await tsrunWith(mgr.path, ["start", b.id]);
      assert.equal(s.status, 0, s.stderr);
      assert.ok(s.ms >= 500, `start returned after ${s.ms} ms, before READY`);
      assert.deepEqual(mgr.messages, ["READY=1\n", `MAINPID=${pid}\n`, "BARRIER=1"]);
      assert.deepEqual(mgr.fdsWith, ["BARRIER=1"]);
      assert.equal(stateOf(b.id).status, "running");
      // exec'd processes do not get NOTIFY_SOCKET (runc's exec reads the bundle's config)
      const e = ok(tsrun(["exec", b.id, "/probe", "facts"]));
      const env = (JSON.parse(e.stdout.split("\n")[0]!) as { env: string[] }).env;
      assert.equal(
        env.some((v) => v.startsWith("NOTIFY_SOCKET=")),
        false,
      );
      ok(tsrun(["delete", "--force", b.id]));
      assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false);
    } finally {
      await mgr.stop();
    }
  });

  test("run: the container sees /run/notify/notify.sock (read-only bind) and NOTIFY_SOCKET; in the foreground MAINPID is tsrun's", async () => {
    const mgr = new Manager();
    try {
      const b = makeBundle(["multi", "notify", "STATUS=starting\nREADY=1", "--", "facts", "--", "mountinfo", "--", "ls", "/run/notify/notify.sock"], (s) => {
        s.process!.env = [...(s.process!.env ?? []), "NOTIFY_SOCKET=/elsewhere"];
      });
      const r = await tsrunWith(mgr.path, ["run", "--bundle", b.dir, b.id]);
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.deepEqual(JSON.parse(lines[0]!), { notify: "/run/notify/notify.sock", sent: "STATUS=starting\nREADY=1".length });
      const facts = JSON.parse(lines[1]!) as { env: string[] };
      assert.deepEqual(
        facts.env.filter((v) => v.startsWith("NOTIFY_SOCKET=")),
        ["NOTIFY_SOCKET=/run/notify/notify.sock"],
      );
      const mount = (JSON.parse(lines[2]!) as { mountPoint: string; options: string[] }[]).find((x) => x.mountPoint === "/run/notify");
      assert.ok(mount, "/run/notify is mounted");
      for (const o of ["ro", "nosuid", "nodev", "noexec"]) assert.ok(mount.options.includes(o), `${o} in ${mount.options.join(",")}`);
      assert.equal((JSON.parse(lines[3]!) as { type: string }[])[0]!.type, "socket");
      // the READY line of a message that says more, then tsrun's own pid (bin/tsrun execs node)
      assert.deepEqual(mgr.messages, ["READY=1\n", `MAINPID=${r.pid}\n`, "BARRIER=1"]);
    } finally {
      await mgr.stop();
    }
  });

  test("run -d: returns once READY is relayed, MAINPID the init's", async () => {
    const mgr = new Manager();
    try {
      const b = makeBundle(["multi", "delay", "0.3", "--", "notify", "READY=1", "--", "sleep", "30"]);
      const r = await tsrunWith(mgr.path, ["run", "-d", "--bundle", b.dir, b.id]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(mgr.messages, ["READY=1\n", `MAINPID=${stateOf(b.id).pid}\n`, "BARRIER=1"]);
      ok(tsrun(["delete", "--force", b.id]));
    } finally {
      await mgr.stop();
    }
  });

  test("a container that exits without READY does not hold start, run -d or run", async () => {
    const mgr = new Manager();
    try {
      const b = makeBundle(["multi", "delay", "0.3", "--", "exit", "0"]);
      ok(await tsrunWith(mgr.path, ["create", "--bundle", b.dir, b.id]));
      const s = await tsrunWith(mgr.path, ["start", b.id], 10_000);
      assert.equal(s.status, 0, s.stderr);
      ok(tsrun(["delete", "--force", b.id]));
      const d = makeBundle(["multi", "delay", "0.3", "--", "exit", "0"]);
      const r = await tsrunWith(mgr.path, ["run", "-d", "--bundle", d.dir, d.id], 10_000);
      assert.equal(r.status, 0, r.stderr);
      ok(tsrun(["delete", "--force", d.id]));
      const f = makeBundle(["multi", "delay", "0.3", "--", "exit", "3"]);
      const g = await tsrunWith(mgr.path, ["run", "--bundle", f.dir, f.id], 10_000);
      assert.equal(g.status, 3, g.stderr);
      assert.deepEqual(mgr.messages, []);
    } finally {
      await mgr.stop();
    }
  });

  test("without NOTIFY_SOCKET nothing is mounted or set; a relative one is refused before anything exists", async () => {
    const b = makeBundle(["multi", "facts", "--", "mountinfo"]);
    const r = await tsrunWith(undefined, ["run", "--bundle", b.dir, b.id]);
    assert.equal(r.status, 0, r.stderr);
    const [facts, mounts] = r.stdout.trim().split("\n");
    assert.equal(
      (JSON.parse(facts!) as { env: string[] }).env.some((v) => v.startsWith("NOTIFY_SOCKET=")),
      false,
    );
    assert.doesNotMatch(mounts!, /\/run\/notify/);

    const c = makeBundle(["facts"]);
    const bad = await tsrunWith("relative/notify.sock", ["create", "--bundle", c.dir, c.id]);
    assert.equal(bad.status, 1);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.match(bad.stderr, /NOTIFY_SOCKET must be an absolute path or an abstract socket/);
    assert.equal(fs.existsSync(path.join(stateRoot(), c.id)), false);
  });

  test("a caller's socket that is not there fails start before the process runs (the container stays created)", async () => {
    const b = makeBundle(["multi", "notify", "READY=1", "--", "sleep", "30"]);
    const missing = path.join(work(), "no-such-manager.sock");
    ok(await tsrunWith(missing, ["create", "--bundle", b.dir, b.id]));
    const s = await tsrunWith(missing, ["start", b.id]);
    assert.equal(s.status, 1);
    assert.match(s.stderr, /NOTIFY_SOCKET: connect datagram socket to .*no-such-manager\.sock/);
    assert.equal(stateOf(b.id).status, "created");
    ok(tsrun(["delete", "--force", b.id]));
  });
});
