// What the process sees from inside: namespaces, identity, capabilities, limits, mounts, /dev, masked
// and read-only paths, hooks, terminal, fds. Everything is read by the static probe running in the container.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { CGROUP_PARENT, cleanup, makeBundle, nsInode, ok, runJson, stateRoot, tsrun, work, waitFor } from "./helpers";

after(cleanup);

interface Facts {
  pid: number;
  uid: number;
  gid: number;
  euid: number;
  groups: number[];
  caps: Record<"bounding" | "effective" | "inheritable" | "permitted" | "ambient", string[]>;
  hostname: string;
  domainname: string;
  cwd: string;
  umask: number;
  env: string[];
  noNewPrivs: boolean;
  oomScoreAdj: number;
  personality: number;
  rlimits: Record<string, { soft: number; hard: number }>;
  namespaces: Record<string, number | null>;
  fds: { fd: number; target: string }[];
  sigmask: string;
  sigignored: string;
  uidMap: number[][];
  gidMap: number[][];
  sid: number;
}

interface MountEntry {
  mountPoint: string;
  fsType: string;
  options: string[];
  superOptions: string[];
  source: string;
}

describe("inside the container", () => {
  test("every namespace is new; process identity, env, cwd, umask, caps, limits as configured", () => {
    const b = makeBundle(["facts"], (s) => {
      s.linux!.namespaces!.push({ type: "cgroup" }, { type: "time" });
      s.hostname = "box";
      s.domainname = "example.org";
      s.process!.env = ["PATH=/bin", "FOO=bar baz"];
      s.process!.cwd = "/work/dir";
      s.process!.user = { uid: 1000, gid: 1001, additionalGids: [5, 7], umask: 0o027 };
      s.process!.capabilities = { bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"], effective: ["CAP_KILL"], permitted: ["CAP_KILL", "CAP_CHOWN"], inheritable: ["CAP_KILL"], ambient: ["CAP_KILL"] };
      s.process!.rlimits = [{ type: "RLIMIT_NOFILE", soft: 321, hard: 654 }, { type: "RLIMIT_CORE", soft: 0, hard: 0 }];
      s.process!.noNewPrivileges = true;
      s.process!.oomScoreAdj = 123;
      s.linux!.sysctl = { "net.ipv4.ip_forward": "1", "kernel.shmmni": "1234" };
    });
    const f = runJson<Facts>(b);
    assert.equal(f.pid, 1);
    for (const ns of ["mnt", "uts", "ipc", "net", "pid", "cgroup", "time_for_children"]) {
      assert.notEqual(f.namespaces[ns], nsInode("self", ns === "time_for_children" ? "time" : ns), `${ns} namespace is new`);
    }
    assert.equal(f.namespaces.user, nsInode("self", "user"), "no user namespace asked: the host's");
    assert.equal(f.hostname, "box");
    assert.equal(f.domainname, "example.org");
    assert.deepEqual(f.env, ["PATH=/bin", "FOO=bar baz", "HOME=/"]);
    assert.equal(f.cwd, "/work/dir");
    assert.equal(f.umask, 0o027);
    assert.deepEqual([f.uid, f.euid, f.gid], [1000, 1000, 1001]);
    assert.deepEqual(f.groups, [5, 7]);
    assert.deepEqual(f.caps.bounding, ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]);
    assert.deepEqual(f.caps.effective, ["CAP_KILL"]);
    // exec as a non-root user without file capabilities: permitted and effective become the ambient set
    assert.deepEqual(f.caps.permitted, ["CAP_KILL"]);
    assert.deepEqual(f.caps.inheritable, ["CAP_KILL"]);
    assert.deepEqual(f.caps.ambient, ["CAP_KILL"]);
    assert.deepEqual(f.rlimits.RLIMIT_NOFILE, { soft: 321, hard: 654 });
    assert.deepEqual(f.rlimits.RLIMIT_CORE, { soft: 0, hard: 0 });
    assert.equal(f.noNewPrivs, true);
    assert.equal(f.oomScoreAdj, 123);
    assert.equal(f.sigmask, "0000000000000000");
    assert.equal(f.sigignored, "0000000000000000", "no signal is left ignored (Node ignores SIGPIPE)");
    assert.equal(f.sid, 1);
    // Only stdio reaches the container: none of tsrun's or Node's fds.
    assert.deepEqual(
      f.fds.map((x) => x.fd),
      [0, 1, 2],
    );
  });

  test("sysctls are written in the container's namespaces; personality is applied", () => {
    const b = makeBundle(["multi", "sysctl", "net.ipv4.ip_forward", "--", "sysctl", "kernel.shmmni", "--", "facts"], (s) => {
      s.linux!.sysctl = { "net.ipv4.ip_forward": "1", "kernel.shmmni": "1234" };
      s.linux!.personality = { domain: "LINUX32" };
    });
    const lines = ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines[0]!.value, "1");
    assert.equal(lines[1]!.value, "1234");
    assert.equal(((lines[2] as unknown as Facts).personality & 0xff), 0x0008);
    assert.notEqual(fs.readFileSync("/proc/sys/kernel/shmmni", "utf8").trim(), "1234", "host untouched");
  });

  test("namespaces can be joined by path", () => {
    const a = makeBundle(["sleep", "30"], (s) => {
      s.hostname = "shared-uts";
    });
    ok(tsrun(["run", "-d", "--bundle", a.dir, a.id]));
    const pid = (JSON.parse(ok(tsrun(["state", a.id])).stdout) as { pid: number }).pid;
    const b = makeBundle(["facts"], (s) => {
      delete s.hostname;
      s.linux!.namespaces = s.linux!.namespaces!.map((n) => (["network", "uts", "ipc"].includes(n.type) ? { type: n.type, path: `/proc/${pid}/ns/${n.type === "network" ? "net" : n.type}` } : n));
    });
    const f = runJson<Facts>(b);
    assert.equal(f.namespaces.net, nsInode(pid, "net"));
    assert.equal(f.namespaces.uts, nsInode(pid, "uts"));
    assert.equal(f.namespaces.ipc, nsInode(pid, "ipc"));
    assert.notEqual(f.namespaces.mnt, nsInode(pid, "mnt"));
    assert.equal(f.hostname, "shared-uts");
    ok(tsrun(["delete", "-f", a.id]));
  });

  test("user namespace with uid/gid mappings; time namespace offsets", () => {
    const b = makeBundle(["multi", "facts", "--", "read", "/proc/uptime"], (s) => {
      s.linux!.namespaces!.push({ type: "user" }, { type: "time" });
      s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      s.linux!.timeOffsets = { boottime: { secs: 86400 * 400, nanosecs: 0 } };
      // sysfs needs a network namespace owned by the user namespace; cgroup mount is host's v1 here
      s.mounts = s.mounts!.filter((m) => m.type !== "cgroup");
    });
    fs.chownSync(b.rootfs, 100000, 200000);
    const lines = ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout.trim().split("\n");
    const f = JSON.parse(lines[0]!) as Facts;
    assert.deepEqual(f.uidMap, [[0, 100000, 65536]]);
    assert.deepEqual(f.gidMap, [[0, 200000, 65536]]);
    assert.equal(f.uid, 0);
    assert.notEqual(f.namespaces.user, nsInode("self", "user"));
    const uptime = Number((JSON.parse(lines[1]!) as { content: string }).content.split(" ")[0]);
    assert.ok(uptime > 86400 * 400, `uptime ${uptime} includes the boottime offset`);
  });

  test("mounts: options, bind read-only, tmpfs, propagation, in order", () => {
    const hostDir = path.join(work(), "hostdir");
    fs.mkdirSync(hostDir);
    fs.writeFileSync(path.join(hostDir, "file"), "from host");
    const b = makeBundle(["multi", "mountinfo", "--", "read", "/data/file", "--", "write", "/data/new", "x", "--", "write", "/scratch/new", "x"], (s) => {
      s.mounts!.push(
        { destination: "/data", type: "bind", source: hostDir, options: ["rbind", "ro", "nosuid"] },
        { destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "noexec", "size=1m", "mode=1777"] },
        { destination: "/scratch/inner", type: "tmpfs", source: "tmpfs", options: ["ro", "rprivate"] },
      );
    });
    const lines = ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout.trim().split("\n").map((l) => JSON.parse(l) as unknown);
    const mounts = lines[0] as MountEntry[];
    const data = mounts.find((m) => m.mountPoint === "/data")!;
    assert.ok(data.options.includes("ro") && data.options.includes("nosuid"), JSON.stringify(data));
    const scratch = mounts.find((m) => m.mountPoint === "/scratch")!;
    assert.equal(scratch.fsType, "tmpfs");
    for (const o of ["nosuid", "nodev", "noexec"]) assert.ok(scratch.options.includes(o), o);
    assert.ok(scratch.superOptions.includes("size=1024k"), JSON.stringify(scratch.superOptions));
    const inner = mounts.find((m) => m.mountPoint === "/scratch/inner")!;
    assert.ok(inner.options.includes("ro"));
    assert.ok(mounts.findIndex((m) => m.mountPoint === "/scratch") < mounts.findIndex((m) => m.mountPoint === "/scratch/inner"));
    assert.equal((lines[1] as { content: string }).content, "from host");
    assert.equal((lines[2] as { ok: boolean; errno: number }).errno, 30, "EROFS on the read-only bind");
    assert.equal((lines[3] as { ok: boolean }).ok, true);
    assert.ok(!fs.existsSync(path.join(hostDir, "new")));
    // default spec mounts are there too
    for (const mp of ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]) assert.ok(mounts.some((m) => m.mountPoint === mp), mp);
  });

  test("tmpcopyup: a tmpfs starts with what the directory held (podman --read-only uses it)", () => {
    const b = makeBundle(["multi", "read", "/seed/file", "--", "ls", "/seed/sub/link", "/seed/sub", "--", "write", "/seed/new", "x"], (s) => {
      s.mounts!.push({ destination: "/seed", type: "tmpfs", source: "tmpfs", options: ["tmpcopyup", "mode=755"] });
    });
    fs.mkdirSync(path.join(b.rootfs, "seed", "sub"), { recursive: true });
    fs.writeFileSync(path.join(b.rootfs, "seed", "file"), "seeded");
    fs.symlinkSync("../file", path.join(b.rootfs, "seed", "sub", "link"));
    fs.chmodSync(path.join(b.rootfs, "seed", "sub"), 0o700);
    fs.chownSync(path.join(b.rootfs, "seed", "file"), 1234, 5678);
    const lines = ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout.trim().split("\n").map((l) => JSON.parse(l) as unknown);
    assert.equal((lines[0] as { content: string }).content, "seeded");
    const ls = lines[1] as { type: string; target: string | null; mode: number }[];
    assert.equal(ls[0]!.target, "../file");
    assert.equal(ls[1]!.mode, 0o700);
    assert.equal((lines[2] as { ok: boolean }).ok, true);
    assert.ok(!fs.existsSync(path.join(b.rootfs, "seed", "new")), "writes go to the tmpfs, not the rootfs");
  });

  test("a mount destination reached through a symlink stays inside the rootfs", () => {
    const outside = path.join(work(), "outside-target");
    fs.mkdirSync(outside);
    const b = makeBundle(["facts"], (s) => {
      s.mounts!.push({ destination: "/evil/sub", type: "tmpfs", source: "tmpfs", options: [] });
    });
    // /evil -> <absolute host path>: must resolve to <rootfs>/<that path>, not the host directory
    fs.symlinkSync(outside, path.join(b.rootfs, "evil"));
    ok(tsrun(["run", "--bundle", b.dir, b.id]));
    assert.equal(fs.existsSync(path.join(outside, "sub")), false, "nothing created outside the rootfs");
    assert.ok(fs.existsSync(path.join(b.rootfs, outside, "sub")), "created inside the rootfs instead");
  });

  test("/dev: default nodes, configured devices, links; masked and read-only paths; read-only root", () => {
    const b = makeBundle(
      ["multi", "ls", "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx", "/dev/fd", "/dev/stdin", "/dev/fuse", "/dev/myfifo", "--", "read", "/proc/keys", "--", "ls", "/proc/acpi", "--", "write", "/proc/sys/kernel/domainname", "x", "--", "write", "/rootfile", "x", "--", "write", "/tmp/ok", "x"],
      (s) => {
        s.linux!.devices = [
          { path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o640, uid: 0, gid: 0 },
          { path: "/dev/myfifo", type: "p", fileMode: 0o600 },
        ];
        s.root!.readonly = true;
        s.mounts!.push({ destination: "/tmp", type: "tmpfs", source: "tmpfs", options: [] });
      },
    );
    const lines = ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout.trim().split("\n").map((l) => JSON.parse(l) as unknown);
    const ls = lines[0] as { path: string; type: string; major: number; minor: number; mode: number; target: string | null }[];
    const by = Object.fromEntries(ls.map((e) => [e.path, e]));
    const expect: [string, number, number][] = [["/dev/null", 1, 3], ["/dev/zero", 1, 5], ["/dev/full", 1, 7], ["/dev/random", 1, 8], ["/dev/urandom", 1, 9], ["/dev/tty", 5, 0], ["/dev/fuse", 10, 229]];
    for (const [p, maj, min] of expect) {
      assert.equal(by[p]!.type, "char", p);
      assert.deepEqual([by[p]!.major, by[p]!.minor], [maj, min], p);
    }
    assert.equal(by["/dev/null"]!.mode, 0o666);
    assert.equal(by["/dev/fuse"]!.mode, 0o640);
    assert.equal(by["/dev/myfifo"]!.type, "fifo");
    assert.equal(by["/dev/ptmx"]!.target, "pts/ptmx");
    assert.equal(by["/dev/fd"]!.target, "/proc/self/fd");
    assert.equal(by["/dev/stdin"]!.target, "/proc/self/fd/0");
    assert.equal((lines[1] as { content: string }).content, "", "masked file reads empty");
    assert.equal((lines[3] as { errno: number }).errno, 30, "/proc/sys is read-only");
    assert.equal((lines[4] as { errno: number }).errno, 30, "root is read-only");
    assert.equal((lines[5] as { ok: boolean }).ok, true, "tmpfs on a read-only root is writable");
  });

  test("hooks run in order, with the state on stdin", () => {
    const logDir = path.join(work(), "hooklog");
    fs.mkdirSync(logDir);
    const script = path.join(work(), "hook.sh");
    fs.writeFileSync(script, `#!/bin/sh\ncat > ${logDir}/$1.json\necho $1 >> ${logDir}/order\n`, { mode: 0o755 });
    const hook = (name: string) => ({ path: script, args: ["hook.sh", name] });
    const b = makeBundle(["sleep", "30"], (s) => {
      s.hooks = {
        prestart: [hook("prestart")],
        createRuntime: [hook("createRuntime")],
        createContainer: [hook("createContainer")],
        // startContainer runs inside the container after pivot_root: a binary of the rootfs
        startContainer: [{ path: "/probe", args: ["probe", "write", "/started", "yes"] }],
        poststart: [hook("poststart")],
        poststop: [hook("poststop")],
      };
    });
    ok(tsrun(["create", "--bundle", b.dir, b.id]));
    const order = () => fs.readFileSync(path.join(logDir, "order"), "utf8").trim().split("\n");
    assert.deepEqual(order(), ["prestart", "createRuntime", "createContainer"]);
    const st = JSON.parse(fs.readFileSync(path.join(logDir, "createRuntime.json"), "utf8")) as { id: string; pid: number; status: string; bundle: string };
    assert.equal(st.id, b.id);
    assert.equal(st.status, "creating");
    assert.ok(st.pid > 0);
    assert.equal(st.bundle, b.dir);
    assert.ok(!fs.existsSync(path.join(b.rootfs, "started")));
    ok(tsrun(["start", b.id]));
    assert.equal(fs.readFileSync(path.join(b.rootfs, "started"), "utf8"), "yes");
    assert.deepEqual(order(), ["prestart", "createRuntime", "createContainer", "poststart"]);
    assert.equal((JSON.parse(fs.readFileSync(path.join(logDir, "poststart.json"), "utf8")) as { status: string }).status, "running");
    ok(tsrun(["delete", "-f", b.id]));
    assert.deepEqual(order(), ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]);
    assert.equal((JSON.parse(fs.readFileSync(path.join(logDir, "poststop.json"), "utf8")) as { status: string }).status, "stopped");
  });

  test("a failing or hanging hook fails create and leaves nothing behind", () => {
    for (const [kind, hook, expect] of [
      ["prestart", { path: "/bin/sh", args: ["sh", "-c", "echo nope >&2; exit 3"] }, /prestart hook #0 \/bin\/sh: exit status 3: nope/],
      ["createContainer", { path: "/bin/sh", args: ["sh", "-c", "exit 4"] }, /error running createContainer hook \/bin\/sh: exit status 4/],
      ["createRuntime", { path: "/bin/sleep", args: ["sleep", "10"], timeout: 1 }, /timed out after 1 s/],
    ] as const) {
      const b = makeBundle(["facts"], (s) => {
        s.hooks = { [kind]: [hook] };
      });
      const t0 = Date.now();
      const r = tsrun(["create", "--bundle", b.dir, b.id]);
      assert.equal(r.status, 1, kind);
      assert.match(r.stderr, expect);
      assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
      assert.ok(Date.now() - t0 < 8000);
      assert.equal(fs.existsSync(path.join(stateRoot(), b.id)), false, "no state left");
      assert.equal(fs.existsSync(`/sys/fs/cgroup/memory/${CGROUP_PARENT}/${b.id}`), false, "no cgroup left");
    }
  });

  test("--no-pivot runs the container with MS_MOVE + chroot", () => {
    const b = makeBundle(["facts"]);
    const r = ok(tsrun(["run", "--no-pivot", "--bundle", b.dir, b.id]));
    assert.equal((JSON.parse(r.stdout) as Facts).pid, 1);
  });

  test("--preserve-fds passes fds 3.. through, and nothing else leaks", () => {
    const b = makeBundle(["facts"]);
    const file = path.join(work(), "passed");
    fs.writeFileSync(file, "x");
    const out = path.join(work(), "pf.out");
    const r = spawnSync("/bin/sh", ["-c", `exec 3<"${file}" 4<"${file}"; exec "$0" --root "$1" run --preserve-fds 1 --bundle "$2" "$3" > "${out}"`, path.resolve(__dirname, "..", "..", "bin", "tsrun"), stateRoot(), b.dir, b.id]);
    assert.equal(r.status, 0, r.stderr.toString());
    const f = JSON.parse(fs.readFileSync(out, "utf8")) as Facts;
    assert.deepEqual(
      f.fds.map((x) => x.fd),
      [0, 1, 2, 3],
    );
    assert.equal(f.fds[3]!.target, file);
  });

  test("terminal: the pty master goes to --console-socket and the process has a controlling tty", () => {
    const b = makeBundle(["facts"], (s) => {
      s.process!.terminal = true;
      s.process!.consoleSize = { height: 33, width: 101 };
    });
    const sock = path.join(work(), "console.sock");
    // A console-socket receiver as conmon/containerd's shim would be: receive the fd, read the pty.
    const py = `
import socket, os, sys, select
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(c, 4096, 1)
out = b""
while True:
    r, _, _ = select.select([fds[0]], [], [], 10)
    if not r: break
    try: d = os.read(fds[0], 65536)
    except OSError: break
    if not d: break
    out += d
sys.stdout.write(msg.decode() + "\\n" + out.decode())
`;
    const child = require("node:child_process").spawn("python3", ["-c", py, sock], { stdio: ["ignore", "pipe", "inherit"] }) as import("node:child_process").ChildProcessWithoutNullStreams;
    let got = "";
    child.stdout.on("data", (d: Buffer) => (got += d.toString()));
    waitFor(() => fs.existsSync(sock), 5000, 10);
    ok(tsrun(["create", "--console-socket", sock, "--bundle", b.dir, b.id]));
    ok(tsrun(["start", b.id]));
    return new Promise<void>((resolve, reject) => {
      child.on("exit", () => {
        try {
          const [name, ...rest] = got.replace(/^listening\n/, "").split("\n");
          assert.equal(name, "/dev/ptmx");
          const facts = JSON.parse(rest.join("\n").trim().split("\r\n")[0]!) as Facts & { stdio: { tty: boolean; target: string }[]; ctty: boolean };
          assert.equal(facts.stdio[0]!.tty, true);
          assert.match(facts.stdio[1]!.target, /^\/dev\/pts\/\d+$/);
          assert.equal(facts.ctty, true);
          ok(tsrun(["delete", "-f", b.id]));
          resolve();
        } catch (e) {
          reject(e);
        }
      });
    });
  });
});
