// runc parity where a script or an engine can tell (issue "runc parity everywhere"): each test pins runc's
// behaviour as its source has it (runc 1.2+: libcontainer's Create checks, kill.go, exec.go).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { CGROUP_PARENT, cleanup, cgroupDirsOf, makeBundle, ok, sleep, stateRoot, tsrun, tsrunAsync, waitFor } from "./helpers";

after(cleanup);

const V1 = "/sys/fs/cgroup";
const hasV1 = (c: string) => fs.existsSync(path.join(V1, c, "cgroup.procs"));
const stateOf = (id: string) => JSON.parse(ok(tsrun(["state", id])).stdout) as { status: string; pid: number };

describe("a cgroup that exists before create", () => {
  test("frozen: refused at once with runc's message, nothing left (runc: container's cgroup unexpectedly frozen)", { skip: !hasV1("freezer") && "no v1 freezer" }, () => {
    const b = makeBundle(["sleep", "30"]);
    const dir = path.join(V1, "freezer", CGROUP_PARENT, b.id);
    fs.mkdirSync(dir, { recursive: true });
    try {
      fs.writeFileSync(path.join(dir, "freezer.state"), "FROZEN");
      const t0 = Date.now();
      const r = tsrun(["create", "--bundle", b.dir, b.id], { timeout: 20_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr.trim(), /container's cgroup unexpectedly frozen$/);
      assert.ok(Date.now() - t0 < 5000, "refused, not hung");
      assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false, "no state left");
      assert.deepEqual(cgroupDirsOf(b.id), [dir], "only the pre-existing cgroup is there");
    } finally {
      fs.writeFileSync(path.join(dir, "freezer.state"), "THAWED");
    }
  });

  test("holding processes: refused (runc >= 1.2: container's cgroup is not empty)", { skip: !hasV1("pids") && "no v1 pids" }, () => {
    const b = makeBundle(["sleep", "30"]);
    const dir = path.join(V1, "pids", CGROUP_PARENT, b.id);
    fs.mkdirSync(dir, { recursive: true });
    const squatter = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      fs.writeFileSync(path.join(dir, "cgroup.procs"), String(squatter.pid));
      const r = tsrun(["create", "--bundle", b.dir, b.id]);
      assert.equal(r.status, 1);
      assert.match(r.stderr.trim(), /container's cgroup is not empty: 1 process\(es\) found$/);
      assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false, "no state left");
      assert.equal(fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").trim(), String(squatter.pid), "the squatter is left alone");
    } finally {
      squatter.kill("SIGKILL");
    }
  });
});

describe("cgroup settings", () => {
  test("a pre-existing cpuset parent with empty cpus and mems is filled from its ancestor (runc's cpusetEnsureParent)", { skip: !hasV1("cpuset") && "no v1 cpuset" }, () => {
    const b = makeBundle(["sleep", "30"]);
    const top = path.join(V1, "cpuset", CGROUP_PARENT);
    fs.mkdirSync(top, { recursive: true });
    const parent = path.join(top, `p-${b.id}`);
    fs.mkdirSync(parent); // a new cpuset cgroup: cpus and mems empty
    assert.equal(fs.readFileSync(path.join(parent, "cpuset.cpus"), "utf8").trim(), "");
    b.spec.linux!.cgroupsPath = `/${CGROUP_PARENT}/p-${b.id}/${b.id}`;
    b.write();
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    assert.notEqual(fs.readFileSync(path.join(parent, "cpuset.cpus"), "utf8").trim(), "", "the empty parent got its ancestor's cpus");
    assert.equal(stateOf(b.id).status, "running");
    ok(tsrun(["delete", "-f", b.id]));
    assert.equal(fs.existsSync(parent), true, "the pre-existing parent is left");
  });

  test("a device rule's access with letters other than r, w, m is accepted; on v1 they are dropped (runc)", { skip: !hasV1("devices") && "no v1 devices" }, () => {
    const b = makeBundle(["sleep", "30"], (s) => {
      s.linux!.resources = { devices: [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 10, minor: 229, access: "rwx" }] };
    });
    ok(tsrun(["create", "--bundle", b.dir, b.id]));
    const list = fs.readFileSync(path.join(V1, "devices", CGROUP_PARENT, b.id, "devices.list"), "utf8");
    assert.match(list, /^c 10:229 rw$/m);
    ok(tsrun(["delete", "-f", b.id]));
  });

  test("memory.kernel and kernelTCP: ignored with runc's warning (runc 1.2+ no longer writes kmem files)", () => {
    const b = makeBundle(["sleep", "30"], (s) => {
      s.linux!.resources = { memory: { limit: 64 << 20, kernelTCP: 16 << 20 } };
    });
    const r = ok(tsrun(["create", "--bundle", b.dir, b.id]));
    assert.match(r.stderr, /Kernel memory settings are ignored and will be removed/);
    ok(tsrun(["delete", "-f", b.id]));
  });
});

describe("kill", () => {
  test("signal 0 checks the container is alive (runc's parseSignal takes any number)", () => {
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    ok(tsrun(["kill", b.id, "0"]));
    ok(tsrun(["kill", "-a", b.id, "0"]));
    assert.equal(stateOf(b.id).status, "running", "signal 0 delivers nothing");
    ok(tsrun(["kill", b.id, "KILL"]));
    waitFor(() => stateOf(b.id).status === "stopped", 5000);
    const r = tsrun(["kill", b.id, "0"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /container not running/);
    ok(tsrun(["delete", b.id]));
  });

  test("SIGKILL without --all to a container sharing the host's pid namespace kills all its processes (runc >= 1.2)", () => {
    const b = makeBundle(["sleepers", "2", "30"], (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "pid");
    });
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    const procs = () => {
      const d = cgroupDirsOf(b.id).find((x) => x.includes("/pids/")) ?? cgroupDirsOf(b.id)[0]!;
      return fs.existsSync(path.join(d, "cgroup.procs")) ? fs.readFileSync(path.join(d, "cgroup.procs"), "utf8").trim().split("\n").filter(Boolean) : [];
    };
    assert.ok(waitFor(() => procs().length === 3, 5000), `the init and its two children: ${procs().join(",")}`);
    ok(tsrun(["kill", b.id, "KILL"]));
    assert.ok(waitFor(() => procs().length === 0, 5000), `every process is gone, not only the init: ${procs().join(",")}`);
    ok(tsrun(["delete", b.id]));
  });
});

describe("the command line", () => {
  test("an unknown command, with or without -h: No help topic, status 3 (urfave/cli)", () => {
    for (const args of [["foo", "-h"], ["foo"]]) {
      const r = tsrun(args);
      assert.equal(r.status, 3, args.join(" "));
      assert.match(r.stderr.trim(), /No help topic for 'foo'$/);
    }
  });

  test("list fills OWNER with the owner of the state directory", () => {
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["create", "--bundle", b.dir, b.id]));
    const row = ok(tsrun(["list"])).stdout.split("\n").find((l) => l.startsWith(b.id + " "));
    assert.match(row ?? "", /\sroot$/);
    const json = JSON.parse(ok(tsrun(["list", "-f", "json"])).stdout) as { id: string; owner: string }[];
    assert.equal(json.find((x) => x.id === b.id)?.owner, "root");
    ok(tsrun(["delete", "-f", b.id]));
  });

  test("--pidfd-socket: a pidfd of the init ('standard') and of an exec'd process ('setns') (runc 1.2)", async () => {
    const b = makeBundle(["sleep", "30"]);
    // a receiver in python: accepts one connection, prints the name sent and the pid the pidfd refers to
    const receive = (sock: string) => {
      const py = `
import socket, array, os, sys, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(sys.argv[1]); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
fds = array.array("i")
msg, anc, _, _ = c.recvmsg(64, socket.CMSG_LEN(4))
for level, kind, data in anc:
    fds.frombytes(data[:4])
pid = [l.split()[1] for l in open("/proc/self/fdinfo/%d" % fds[0]) if l.startswith("Pid:")][0]
print(json.dumps({"name": msg.decode(), "pid": int(pid)}), flush=True)`;
      const child = spawn("python3", ["-c", py, sock], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const ready = (async () => {
        for (let i = 0; i < 500 && !out.includes("ready"); i++) await sleep(10);
      })();
      const result = new Promise<{ name: string; pid: number }>((resolve) => child.on("exit", () => resolve(JSON.parse(out.split("\n")[1]!) as { name: string; pid: number })));
      return { ready, result };
    };
    const s1 = path.join(path.dirname(b.dir), `${b.id}.pidfd1`);
    const r1 = receive(s1);
    await r1.ready;
    ok(tsrun(["create", "--pidfd-socket", s1, "--bundle", b.dir, b.id]));
    assert.deepEqual(await r1.result, { name: "standard", pid: stateOf(b.id).pid });
    ok(tsrun(["start", b.id]));
    const s2 = path.join(path.dirname(b.dir), `${b.id}.pidfd2`);
    const r2 = receive(s2);
    await r2.ready;
    const pidFile = path.join(path.dirname(b.dir), `${b.id}.exec.pid`);
    ok(tsrun(["exec", "-d", "--pid-file", pidFile, "--pidfd-socket", s2, b.id, "/probe", "sleep", "2"]));
    assert.deepEqual(await r2.result, { name: "setns", pid: Number(fs.readFileSync(pidFile, "utf8")) });
    const bad = tsrun(["exec", "--pidfd-socket", path.join(path.dirname(b.dir), "nope.sock"), b.id, "/probe", "exit", "0"]);
    assert.equal(bad.status, 255);
    assert.match(bad.stderr, /--pidfd-socket/);
    // a caller path like --console-socket: a symlink at the name is refused, never followed
    const link = path.join(path.dirname(b.dir), `${b.id}.pidfd-link`);
    fs.symlinkSync(s2, link);
    const linked = tsrun(["exec", "--pidfd-socket", link, b.id, "/probe", "exit", "0"]);
    assert.equal(linked.status, 255);
    assert.match(linked.stderr, /--pidfd-socket: .*symbolic link/);
    ok(tsrun(["delete", "-f", b.id]));
  });
});

describe("exec", () => {
  test("a failed exec exits 255 with runc's 'exec failed:' (unknown container, stopped, missing binary)", () => {
    const r = tsrun(["exec", "no-such-container-" + process.pid, "/probe", "exit", "0"]);
    assert.equal(r.status, 255);
    assert.match(r.stderr, /exec failed: container "no-such-container-\d+" does not exist/);
  });

  test("--cgroup: repeatable, CTRL[,CTRL]:SUB per v1 controller, / the container's own, an unknown controller refused", { skip: !hasV1("memory") && "no v1 memory" }, () => {
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    const memDir = path.join(V1, "memory", CGROUP_PARENT, b.id);
    const cpuDir = path.join(V1, "cpu,cpuacct", CGROUP_PARENT, b.id);
    fs.mkdirSync(path.join(memDir, "sub"));
    const haveCpu = fs.existsSync(cpuDir);
    if (haveCpu) fs.mkdirSync(path.join(cpuDir, "sub"));
    const cgroupOf = (args: string[]) => {
      const out = JSON.parse(ok(tsrun(["exec", ...args, b.id, "/probe", "read", "/proc/self/cgroup"])).stdout) as { content: string };
      return Object.fromEntries(out.content.trim().split("\n").map((l) => [l.split(":")[1]!, l.split(":").slice(2).join(":")]));
    };
    const own = `/${CGROUP_PARENT}/${b.id}`;
    let cg = cgroupOf(["--cgroup", "memory:sub"]);
    assert.equal(cg.memory, `${own}/sub`);
    assert.equal(cg.pids, own, "the other hierarchies: the container's own cgroup");
    if (haveCpu) {
      cg = cgroupOf(["--cgroup", "memory:/", "--cgroup", "cpu,cpuacct:sub"]);
      assert.equal(cg["cpu,cpuacct"], `${own}/sub`, "co-mounted controllers named together");
      assert.equal(cg.memory, own, "/ is the container's own cgroup");
    }
    cg = cgroupOf(["--cgroup", "/"]);
    assert.equal(cg.memory, own);
    const bad = tsrun(["exec", "--cgroup", "nosuchctl:sub", b.id, "/probe", "exit", "0"]);
    assert.equal(bad.status, 255);
    assert.match(bad.stderr, /unknown controller nosuchctl in SubCgroupPaths/);
    const twice = tsrun(["exec", "--cgroup", "memory:a", "--cgroup", "memory:b", b.id, "/probe", "exit", "0"]);
    assert.equal(twice.status, 255);
    assert.match(twice.stderr, /controller memory specified multiple times/);
    ok(tsrun(["delete", "-f", b.id]));
  });

  test("--ignore-paused: exec into a paused container succeeds once it is resumed", async () => {
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    ok(tsrun(["pause", b.id]));
    const refused = tsrun(["exec", b.id, "/probe", "exit", "0"]);
    assert.equal(refused.status, 255);
    assert.match(refused.stderr, /cannot exec in a paused container \(use --ignore-paused to override\)/);
    const exec = tsrunAsync(["exec", "--ignore-paused", b.id, "/probe", "exit", "3"]);
    const code = new Promise<number | null>((r) => exec.on("exit", r));
    await sleep(1000);
    assert.equal(exec.exitCode, null, "still waiting while the container is paused");
    ok(tsrun(["resume", b.id]));
    assert.equal(await code, 3);
    ok(tsrun(["delete", "-f", b.id]));
  });
});
