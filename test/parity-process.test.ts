// runc parity for the process, its credentials and its namespaces (issue 12): what a script in the
// container or an engine around it can tell. Each test pins what runc HEAD does.
import * as assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { cleanup, makeBundle, nsInode, ok, probe, stateRoot, tsrun, TSRUN, waitFor, work, type Bundle } from "./helpers";

after(cleanup);

interface LsEntry {
  path: string;
  exists: boolean;
  uid: number;
  gid: number;
  mode: number;
}

// A --console-socket receiver (the probe's console-recv, run on the host): everything the container writes
// to its terminal lands in `out`.
function consoleReceiver(name: string): { sock: string; out: string; child: ChildProcess } {
  const sock = path.join(work(), `${name}.sock`);
  const out = path.join(work(), `${name}.out`);
  const child = spawn(probe(), ["console-recv", sock, out], { stdio: "ignore" });
  waitFor(() => fs.existsSync(sock), 5000, 10);
  return { sock, out, child };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on("exit", () => resolve())));
}

// The first JSON line the container wrote to its terminal.
function firstJsonLine<T>(text: string): T {
  const line = text.split(/\r?\n/).find((l) => l.startsWith("[") || l.startsWith("{"));
  if (!line) throw new Error(`no JSON in the terminal output: ${JSON.stringify(text)}`);
  return JSON.parse(line) as T;
}

async function runOnTerminal(b: Bundle, name: string): Promise<string> {
  const rx = consoleReceiver(name);
  try {
    ok(tsrun(["create", "--console-socket", rx.sock, "--bundle", b.dir, b.id]));
    ok(tsrun(["start", b.id]));
    await exited(rx.child);
    return fs.readFileSync(rx.out, "utf8");
  } finally {
    rx.child.kill();
    tsrun(["delete", "-f", b.id]);
  }
}

describe("runc parity: the process", () => {
  test("terminal: the pty's owner becomes the process's uid, its group stays devpts' tty group (runc's fixStdioPermissions)", async () => {
    const b = makeBundle(["ls", "/dev/pts/0"], (s) => {
      s.process!.terminal = true;
      s.process!.user = { uid: 1000, gid: 1000 };
    });
    const [pts] = firstJsonLine<LsEntry[]>(await runOnTerminal(b, "pty-owner"));
    assert.equal(pts!.exists, true);
    assert.equal(pts!.uid, 1000);
    assert.equal(pts!.gid, 5, "devpts' gid=5 (tty) is kept");
  });

  test("process.cwd is entered as root first: a 0700 /root works for a non-root user (runc's finalizeNamespace)", () => {
    const b = makeBundle(["facts"], (s) => {
      s.process!.user = { uid: 1000, gid: 1000 };
      s.process!.cwd = "/root";
    });
    fs.mkdirSync(path.join(b.rootfs, "root"), { mode: 0o700 });
    fs.chmodSync(path.join(b.rootfs, "root"), 0o700);
    const r = ok(tsrun(["run", "--bundle", b.dir, b.id]));
    const facts = JSON.parse(r.stdout.split("\n")[0]!) as { cwd: string; uid: number };
    assert.equal(facts.cwd, "/root");
    assert.equal(facts.uid, 1000);
    // the same for exec
    const c = makeBundle(["sleep", "30"], (s) => {
      s.process!.user = { uid: 1000, gid: 1000 };
    });
    fs.mkdirSync(path.join(c.rootfs, "root"), { mode: 0o700 });
    ok(tsrun(["run", "-d", "--bundle", c.dir, c.id]));
    try {
      const e = JSON.parse(ok(tsrun(["exec", "--cwd", "/root", "--user", "1000:1000", c.id, "/probe", "facts"])).stdout) as { cwd: string };
      assert.equal(e.cwd, "/root");
    } finally {
      tsrun(["delete", "-f", c.id]);
    }
  });

  test("no mount namespace: the container runs in tsrun's, chrooted into its rootfs, with no mount made (runc's chroot())", () => {
    const b = makeBundle(["sleep", "30"], (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "mount");
      s.mounts = [];
      s.linux!.maskedPaths = [];
      s.linux!.readonlyPaths = [];
      s.root!.readonly = false;
    });
    const before = fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(b.dir)).length;
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    try {
      const pid = (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { pid: number }).pid;
      assert.equal(nsInode(pid, "mnt"), nsInode("self", "mnt"), "the runtime's mount namespace");
      assert.equal(fs.readlinkSync(`/proc/${pid}/root`), b.rootfs, "chrooted into the rootfs");
      const e = JSON.parse(ok(tsrun(["exec", b.id, "/probe", "facts"])).stdout) as { cwd: string };
      assert.equal(e.cwd, "/");
    } finally {
      tsrun(["delete", "-f", b.id]);
    }
    // the probe ran inside the rootfs (its /probe), and no mount of the bundle was left in the host's table
    const after = fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(b.dir)).length;
    assert.equal(after, before);
    // what would need a mount is refused, masked paths in runc's words
    const c = makeBundle(["facts"], (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "mount");
    });
    const r = tsrun(["run", "--bundle", c.dir, c.id]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /unable to restrict sys entries without a private MNT namespace/);
  });

  test("hostname and domainname with a uts namespace joined by path: set inside it (runc's validate: a uts namespace, new or joined)", async () => {
    const holder = spawn("unshare", ["--uts", "sleep", "60"], { stdio: "ignore" });
    try {
      const pid = holder.pid!;
      waitFor(() => nsInode(pid, "uts") !== nsInode("self", "uts"), 5000, 10);
      const hostBefore = os.hostname();
      const b = makeBundle(["facts"], (s) => {
        s.linux!.namespaces!.find((n) => n.type === "uts")!.path = `/proc/${pid}/ns/uts`;
        s.hostname = "joined-box";
        s.domainname = "joined.example";
      });
      const facts = JSON.parse(ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout.split("\n")[0]!) as { hostname: string };
      assert.equal(facts.hostname, "joined-box");
      const inHolder = spawnSync("nsenter", ["-t", String(pid), "-u", "hostname"], { encoding: "utf8" });
      assert.equal(inHolder.stdout.trim(), "joined-box", "set in the joined namespace");
      const domain = spawnSync("nsenter", ["-t", String(pid), "-u", "cat", "/proc/sys/kernel/domainname"], { encoding: "utf8" });
      assert.equal(domain.stdout.trim(), "joined.example");
      assert.equal(os.hostname(), hostBefore, "the host's name is untouched");
      // tsrun's own uts namespace joined by path: refused (it would rename the host)
      const c = makeBundle(["facts"], (s) => {
        s.linux!.namespaces!.find((n) => n.type === "uts")!.path = "/proc/self/ns/uts";
      });
      const r = tsrun(["run", "--bundle", c.dir, c.id]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /unable to set hostname without a private UTS namespace/);
      assert.equal(os.hostname(), hostBefore);
    } finally {
      holder.kill("SIGKILL");
      await exited(holder);
    }
  });

  test("seccomp: NOTIFY on write is refused in runc's words; a startContainer hook runs under the filter with only fds 0-2 and the process's env", () => {
    const notifyWrite = makeBundle(["facts"], (s) => {
      s.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/run/none.sock", syscalls: [{ names: ["write"], action: "SCMP_ACT_NOTIFY" }] };
    });
    const r = tsrun(["run", "--bundle", notifyWrite.dir, notifyWrite.id]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /SCMP_ACT_NOTIFY cannot be used for the write syscall/);

    const b = makeBundle(["echo", "main"], (s) => {
      s.process!.env = ["PATH=/bin", "MARK=container"];
      s.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["acct"], action: "SCMP_ACT_ERRNO" }] };
      s.hooks = { startContainer: [{ path: "/probe", args: ["probe", "record", "/hook.json"] }] };
    });
    const passed = path.join(work(), "passed-fd");
    fs.writeFileSync(passed, "x");
    const out = spawnSync("/bin/sh", ["-c", `exec 3<"${passed}"; exec "$0" --root "$1" run --preserve-fds 1 --bundle "$2" "$3"`, TSRUN, stateRoot(), b.dir, b.id], { encoding: "utf8" });
    assert.equal(out.status, 0, out.stderr);
    const rec = JSON.parse(fs.readFileSync(path.join(b.rootfs, "hook.json"), "utf8").split("\n")[0]!) as { env: string[]; seccomp: string; fds: { fd: number; target: string }[] };
    assert.equal(rec.seccomp, "2", "the hook runs under the container's filter");
    // fds 0-2, and the probe's own copy of its stdout (fd 2's pipe) that `record` keeps while it writes
    const stderrTarget = rec.fds.find((f) => f.fd === 2)?.target;
    const extra = rec.fds.filter((f) => f.fd > 2 && f.target !== stderrTarget);
    assert.deepEqual(extra, [], "a hook gets no fd but its stdio");
    assert.ok(rec.env.includes("MARK=container"), `the process's env by default: ${JSON.stringify(rec.env)}`);
  });

  test("process.scheduler, ioPriority and execCPUAffinity are applied in the init and in exec (runc 1.2+)", () => {
    type Sched = { sched: { policy: number; nice: number; ioprioClass: number; ioprioLevel: number }; cpusAllowed: string };
    const b = makeBundle(["sleep", "30"], (s) => {
      s.process!.scheduler = { policy: "SCHED_BATCH", nice: 7 };
      s.process!.ioPriority = { class: "IOPRIO_CLASS_BE", priority: 6 };
      s.process!.execCPUAffinity = { final: "0" };
    });
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    try {
      const pid = (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { pid: number }).pid;
      const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
      const all = /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync("/proc/1/status", "utf8"))![1]!;
      assert.equal(/Cpus_allowed_list:\s*(\S+)/.exec(status)![1], all, "the init: every CPU (execCPUAffinity is for exec)");
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      assert.equal(Number(stat[16]), 7, "the init's nice value"); // field 19
      assert.equal(Number(stat[38]), 3, "the init's policy: SCHED_BATCH"); // field 41
      // exec: the container's scheduler and I/O priority, execCPUAffinity.final
      const e = JSON.parse(ok(tsrun(["exec", b.id, "/probe", "facts"])).stdout) as Sched;
      assert.deepEqual([e.sched.policy, e.sched.nice, e.sched.ioprioClass, e.sched.ioprioLevel], [3, 7, 2, 6]);
      assert.equal(e.cpusAllowed, "0");
      // process.json's own values win; initial alone stays
      const pj = path.join(work(), "sched-process.json");
      fs.writeFileSync(pj, JSON.stringify({ ...b.spec.process, args: ["/probe", "facts"], scheduler: { policy: "SCHED_IDLE" }, ioPriority: { class: "IOPRIO_CLASS_IDLE" }, execCPUAffinity: { initial: "1" } }));
      const f = JSON.parse(ok(tsrun(["exec", "--process", pj, b.id])).stdout) as Sched;
      assert.deepEqual([f.sched.policy, f.sched.ioprioClass], [5, 3]);
      if (all !== "0") assert.equal(f.cpusAllowed, "1");
    } finally {
      tsrun(["delete", "-f", b.id]);
    }
  });
});

describe("hooks' working directory", () => {
  test("createContainer hooks run in the container's root (runc: fchdir(rootfs) before them), not tsrun's cwd", () => {
    const out = path.join(work(), "hook-cwd");
    const b = makeBundle(["exit", "0"], (s) => {
      s.hooks = { createContainer: [{ path: "/bin/sh", args: ["sh", "-c", `pwd -P > ${out}`] }] };
    });
    ok(tsrun(["run", "--bundle", b.dir, b.id], { cwd: b.dir }));
    assert.equal(fs.readFileSync(out, "utf8").trim(), fs.realpathSync(b.rootfs));
  });
});
