// A hostile image or config must never make tsrun act outside the container. One test per runc advisory
// class: the attack's shape (symlinks planted in the rootfs or in a volume, mounts over /proc, a fake
// /dev/null, a /dev/console symlink, a racing symlink swap), a canary outside the container that must
// not change, and tsrun's refusal (runc's one-line error) or, where runc goes on safely, what the
// container sees.
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import type { Spec } from "../src/spec/schema";
import { REPO, cgroupDirsOf, cleanup, makeBundle, ok, stateRoot, tsrun, work, type Bundle, type RunResult } from "./helpers";

after(cleanup);

// Everything under a host directory: type, mode, content (or link target), recursively.
function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (p: string, rel: string) => {
    const st = fs.lstatSync(p);
    let what = "";
    if (st.isSymbolicLink()) what = `-> ${fs.readlinkSync(p)}`;
    else if (st.isFile()) what = crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex");
    out.push(`${rel} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${what}`);
    if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e), `${rel}/${e}`);
  };
  walk(dir, ".");
  return out.join("\n");
}

// A host directory with a few files in it, standing for whatever an attack would reach on the host.
function canary(name: string, files: Record<string, string> = { "secret": "host secret\n" }, mode = 0o644): { dir: string; before: string; check(): void } {
  const dir = path.join(work(), `canary-${name}-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), content, { mode });
  }
  const before = snapshot(dir);
  return { dir, before, check: () => assert.equal(snapshot(dir), before, `${dir} (outside the container) changed`) };
}

// tsrun refused: non-zero, one line naming the cause, and nothing left behind (state, cgroups).
function refused(r: RunResult, b: Bundle, cause: RegExp): void {
  assert.notEqual(r.status, 0, `tsrun should have refused; stdout: ${r.stdout}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  assert.match(lines[0]!, cause);
  assert.ok(!fs.existsSync(path.join(stateRoot(), b.id)), "the state directory is gone");
  assert.deepEqual(cgroupDirsOf(b.id), [], "the cgroups are gone");
}

function run(b: Bundle): RunResult {
  b.write();
  return tsrun(["run", "--bundle", b.dir, b.id]);
}

function bind(s: Spec, source: string, destination: string, options: string[] = ["rbind"]): void {
  s.mounts!.push({ destination, type: "bind", source, options });
}

function sysctlValue(out: string, name: string): string | null {
  for (const line of out.trim().split("\n")) {
    const j = JSON.parse(line) as { name?: string; value?: string | null };
    if (j.name === name) return j.value ?? null;
  }
  throw new Error(`no sysctl ${name} in ${out}`);
}

describe("security: hostile images and configs", () => {
  test("CVE-2019-16884: /proc in the image is a symlink to a volume: refused, nothing written into the volume", () => {
    const vol = canary("proc-link", { "sys/net/ipv4/ip_forward": "canary\n", "sys/kernel/shmmax": "canary\n" });
    const b = makeBundle(["facts"], (s) => {
      bind(s, vol.dir, "/vol");
      s.linux!.sysctl = { "net.ipv4.ip_forward": "1", "kernel.shmmax": "4096" };
      s.linux!.readonlyPaths = [];
      s.linux!.maskedPaths = [];
    });
    fs.rmdirSync(path.join(b.rootfs, "proc"));
    fs.symlinkSync("/vol", path.join(b.rootfs, "proc"));
    const r = run(b);
    vol.check();
    refused(r, b, /filesystem "proc" must be mounted on ordinary directory/);
  });

  test("CVE-2019-16884: /sys in the image is a symlink: refused", () => {
    const vol = canary("sys-link");
    const b = makeBundle(["facts"], (s) => bind(s, vol.dir, "/vol"));
    fs.rmdirSync(path.join(b.rootfs, "sys"));
    fs.symlinkSync("/vol", path.join(b.rootfs, "sys"));
    refused(run(b), b, /filesystem "sysfs" must be mounted on ordinary directory/);
    vol.check();
  });

  test("CVE-2023-27561/CVE-2023-28642: a bind mount over or inside /proc is refused (as written, and through a symlink)", () => {
    const host = canary("proc-bind", { shmmax: "canary\n", ip_forward: "canary\n" });
    // as written in config.json
    const inside = makeBundle(["facts"], (s) => {
      bind(s, host.dir, "/proc/sys/kernel");
      s.linux!.sysctl = { "kernel.shmmax": "4096" };
    });
    refused(run(inside), inside, /check proc-safety of \/proc\/sys\/kernel mount: "\/proc\/sys\/kernel" cannot be mounted because it is inside \/proc/);
    const over = makeBundle(["facts"], (s) => bind(s, host.dir, "/proc"));
    refused(run(over), over, /"\/proc" cannot be mounted because it is not of type proc/);
    const notProc = makeBundle(["facts"], (s) => s.mounts!.push({ destination: "/data", type: "proc", source: "proc" }));
    refused(run(notProc), notProc, /"\/data" cannot be mounted because it is not on \/proc/);
    // through a symlink planted in the image: /evil -> /proc
    const linked = makeBundle(["facts"], (s) => {
      bind(s, host.dir, "/evil/sys/net/ipv4");
      s.linux!.sysctl = { "net.ipv4.ip_forward": "1" };
    });
    fs.symlinkSync("/proc", path.join(linked.rootfs, "evil"));
    refused(run(linked), linked, /"\/proc\/sys\/net\/ipv4" cannot be mounted because it is inside \/proc/);
    const linkedRoot = makeBundle(["facts"], (s) => bind(s, host.dir, "/evil"));
    fs.symlinkSync("/proc", path.join(linkedRoot.rootfs, "evil"));
    refused(run(linkedRoot), linkedRoot, /"\/proc" cannot be mounted because it is not of type proc/);
    host.check();
    // the files lxcfs emulates may be covered
    const cpuinfo = path.join(work(), "fake-cpuinfo");
    fs.writeFileSync(cpuinfo, "processor : 0\n");
    const lxcfs = makeBundle(["read", "/proc/cpuinfo"], (s) => bind(s, cpuinfo, "/proc/cpuinfo", ["bind", "ro"]));
    assert.equal((JSON.parse(ok(run(lxcfs)).stdout) as { content: string }).content, "processor : 0\n");
  });

  test("CVE-2025-52881: sysctls go through tsrun's own procfs, never the container's /proc", () => {
    // No proc mount: the image's /proc is a symlink to a volume holding a fake sys/ tree. A runtime that
    // writes /proc/sys/... by path in the container writes the volume (the host's files).
    const vol = canary("sysctl-redirect", { "sys/net/ipv4/ip_forward": "canary\n" });
    const b = makeBundle(["facts"], (s) => {
      s.mounts = s.mounts!.filter((m) => m.destination !== "/proc");
      bind(s, vol.dir, "/vol");
      s.linux!.sysctl = { "net.ipv4.ip_forward": "1" };
      s.linux!.readonlyPaths = [];
      s.linux!.maskedPaths = [];
    });
    fs.rmdirSync(path.join(b.rootfs, "proc"));
    fs.symlinkSync("/vol", path.join(b.rootfs, "proc"));
    const r = run(b);
    vol.check();
    ok(r);
  });

  test("CVE-2025-52881: nothing tsrun reads after pivot_root comes from the container's /proc (the last capability)", () => {
    // A fake /proc/sys/kernel/cap_last_cap of 0 would keep every capability above 0 in the bounding set.
    const vol = canary("cap-last-cap", { "sys/kernel/cap_last_cap": "0\n" });
    const b = makeBundle(["sleep", "30"], (s) => {
      s.mounts = s.mounts!.filter((m) => m.destination !== "/proc");
      bind(s, vol.dir, "/vol");
      s.linux!.readonlyPaths = [];
      s.linux!.maskedPaths = [];
    });
    fs.rmdirSync(path.join(b.rootfs, "proc"));
    fs.symlinkSync("/vol", path.join(b.rootfs, "proc"));
    b.write();
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    try {
      const pid = Number(JSON.parse(ok(tsrun(["state", b.id])).stdout).pid);
      const bnd = /CapBnd:\s+([0-9a-f]+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]!;
      // runc's default bounding set: CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29)
      assert.equal(BigInt(`0x${bnd}`), (1n << 5n) | (1n << 10n) | (1n << 29n));
    } finally {
      tsrun(["delete", "-f", b.id]);
    }
    vol.check();
  });

  test("sysctls: only namespaced ones, in runc's words; a valid one is applied", () => {
    const corePattern = fs.readFileSync("/proc/sys/kernel/core_pattern", "utf8");
    const global = makeBundle(["facts"], (s) => (s.linux!.sysctl = { "kernel.core_pattern": "|/tmp/pwn" }));
    refused(run(global), global, /sysctl "kernel.core_pattern" is not in a separate kernel namespace/);
    const slashed = makeBundle(["facts"], (s) => (s.linux!.sysctl = { "kernel/core_pattern": "|/tmp/pwn" }));
    refused(run(slashed), slashed, /sysctl "kernel.core_pattern" is not in a separate kernel namespace/);
    assert.equal(fs.readFileSync("/proc/sys/kernel/core_pattern", "utf8"), corePattern);

    const hostNet = makeBundle(["facts"], (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "network");
      s.linux!.sysctl = { "net.ipv4.ip_forward": "1" };
    });
    refused(run(hostNet), hostNet, /sysctl "net.ipv4.ip_forward" not allowed in host network namespace/);
    const joinedHostNet = makeBundle(["facts"], (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "network");
      s.linux!.namespaces!.push({ type: "network", path: "/proc/self/ns/net" });
      s.linux!.sysctl = { "net.ipv4.ip_forward": "1" };
    });
    refused(run(joinedHostNet), joinedHostNet, /sysctl "net.ipv4.ip_forward" not allowed in host network namespace/);
    const hostIpc = makeBundle(["facts"], (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "ipc");
      s.linux!.sysctl = { "kernel.shmmax": "4096" };
    });
    refused(run(hostIpc), hostIpc, /sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace/);
    const hostname = makeBundle(["facts"], (s) => (s.linux!.sysctl = { "kernel.hostname": "x" }));
    refused(run(hostname), hostname, /sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field/);
    const traversal = makeBundle(["facts"], (s) => (s.linux!.sysctl = { "net/ipv4/../../kernel/core_pattern": "x" }));
    assert.notEqual(run(traversal).status, 0);
    assert.equal(fs.readFileSync("/proc/sys/kernel/core_pattern", "utf8"), corePattern);

    const hostForward = fs.readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8");
    const hostShmmax = fs.readFileSync("/proc/sys/kernel/shmmax", "utf8");
    const valid = makeBundle(["multi", "sysctl", "net.ipv4.ip_forward", "--", "sysctl", "kernel.shmmax", "--", "sysctl", "kernel.domainname"], (s) => {
      s.linux!.sysctl = { "net.ipv4.ip_forward": hostForward.trim() === "1" ? "0" : "1", "kernel/shmmax": "123456789", "kernel.domainname": "tsrun.test" };
    });
    const out = ok(run(valid)).stdout;
    assert.equal(sysctlValue(out, "net.ipv4.ip_forward"), hostForward.trim() === "1" ? "0" : "1");
    assert.equal(sysctlValue(out, "kernel.shmmax"), "123456789");
    assert.equal(sysctlValue(out, "kernel.domainname"), "tsrun.test");
    assert.equal(fs.readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8"), hostForward);
    assert.equal(fs.readFileSync("/proc/sys/kernel/shmmax", "utf8"), hostShmmax);
  });

  test("CVE-2021-30465/CVE-2024-45310: mount destinations through symlinks to host paths stay in the rootfs", () => {
    const host = canary("dest-link");
    const b = makeBundle(["multi", "ls", "/linked/made", `${host.dir}/made`, "--", "mountinfo"], (s) => {
      s.mounts!.push({ destination: "/linked/made", type: "tmpfs", source: "tmpfs", options: ["size=1m"] });
      s.mounts!.push({ destination: "/dangling/deep/dir", type: "tmpfs", source: "tmpfs", options: ["size=1m"] });
      bind(s, path.join(host.dir, "secret"), "/filelink", ["bind", "ro"]);
    });
    // absolute links to the host's path of the canary, one existing, one dangling, and a file link
    fs.symlinkSync(host.dir, path.join(b.rootfs, "linked"));
    fs.symlinkSync(path.join(host.dir, "nothing-here"), path.join(b.rootfs, "dangling"));
    fs.symlinkSync(path.join(host.dir, "secret"), path.join(b.rootfs, "filelink"));
    const out = ok(run(b)).stdout.trim().split("\n");
    const ls = JSON.parse(out[0]!) as { path: string; exists: boolean; type: string }[];
    assert.equal(ls[0]!.exists, true, "the mount point made inside the rootfs");
    host.check();
    // they were made inside the rootfs, at the host path's name
    assert.ok(fs.existsSync(path.join(b.rootfs, host.dir, "made")));
    assert.ok(fs.existsSync(path.join(b.rootfs, host.dir, "nothing-here", "deep", "dir")));
    assert.ok(fs.existsSync(path.join(b.rootfs, host.dir, "secret")));
  });

  test("CVE-2021-30465: a symlink swapped in a shared volume while mounts are made never redirects a mount", async () => {
    const host = canary("swap");
    const vol = path.join(work(), `swap-vol-${process.pid}`);
    fs.mkdirSync(vol);
    // Another container (here: a shell on the host) renames a directory and a symlink to the host's canary
    // back and forth in the volume, as fast as it can.
    fs.mkdirSync(path.join(vol, "dir"));
    fs.symlinkSync(host.dir, path.join(vol, "link"));
    const swapper = spawn("sh", ["-c", `cd ${vol} && while :; do mv -T dir tmp 2>/dev/null; mv -T link dir 2>/dev/null; mv -T dir link 2>/dev/null; mv -T tmp dir 2>/dev/null; done`], { stdio: "ignore" });
    try {
      for (let i = 0; i < 15; i++) {
        const b = makeBundle(["facts"], (s) => {
          bind(s, vol, "/vol");
          for (let k = 0; k < 4; k++) s.mounts!.push({ destination: `/vol/dir/m${k}`, type: "tmpfs", source: "tmpfs", options: ["size=1m"] });
        });
        run(b); // may fail (a component is a symlink fd, or gone, at the wrong moment): never outside
        host.check();
      }
    } finally {
      swapper.kill("SIGKILL");
      await new Promise((r) => swapper.once("exit", r));
    }
    host.check();
  });

  test("CVE-2025-31133: masked paths are bound from a checked /dev/null, never a file planted there", () => {
    const fakeDev = path.join(work(), `fake-dev-${process.pid}`);
    fs.mkdirSync(fakeDev);
    fs.symlinkSync("/secret", path.join(fakeDev, "null"));
    const b = makeBundle(["read", "/proc/timer_list"], (s) => {
      s.mounts = s.mounts!.filter((m) => !m.destination.startsWith("/dev"));
      bind(s, fakeDev, "/dev");
      s.linux!.maskedPaths = ["/proc/timer_list"];
    });
    fs.writeFileSync(path.join(b.rootfs, "secret"), "what the mask shows\n");
    refused(run(b), b, /can't mask paths: \/dev\/null is not the null device/);
    // a regular file in place of the device is refused too
    fs.rmSync(path.join(fakeDev, "null"));
    fs.writeFileSync(path.join(fakeDev, "null"), "not a device\n");
    const c = makeBundle(["read", "/proc/timer_list"], (s) => {
      s.mounts = s.mounts!.filter((m) => !m.destination.startsWith("/dev"));
      bind(s, fakeDev, "/dev");
      s.linux!.maskedPaths = ["/proc/timer_list"];
    });
    refused(run(c), c, /can't mask paths: \/dev\/null is not the null device/);
    // with the real /dev/null, the masked file reads empty
    const d = makeBundle(["read", "/proc/timer_list"], (s) => (s.linux!.maskedPaths = ["/proc/timer_list"]));
    assert.equal((JSON.parse(ok(run(d)).stdout) as { content: string }).content, "");
  });

  test("CVE-2025-52565: /dev/console and /dev/ptmx are checked, never followed", async () => {
    const host = canary("console", { "target": "read-only host file\n" }, 0o444);
    const sock = path.join(work(), `console-${process.pid}.sock`);
    const server = net.createServer((c) => c.on("data", () => undefined).on("error", () => undefined));
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const attempt = (setup: (b: Bundle) => void, cause: RegExp) => {
        const b = makeBundle(["facts"], (s) => {
          s.process!.terminal = true;
          // the image's own /dev (no tmpfs over it), with the volume
          s.mounts = s.mounts!.filter((m) => m.destination !== "/dev");
          bind(s, host.dir, "/vol", ["rbind", "ro"]);
        });
        setup(b);
        b.write();
        const r = tsrun(["create", "--console-socket", sock, "--bundle", b.dir, b.id]);
        refused(r, b, cause);
      };
      attempt((b) => fs.symlinkSync("/vol/target", path.join(b.rootfs, "dev", "console")), /\/dev\/console: it is a symlink/);
      attempt((b) => fs.symlinkSync(host.dir + "/target", path.join(b.rootfs, "dev", "console")), /\/dev\/console: it is a symlink/);
      attempt((b) => fs.mkdirSync(path.join(b.rootfs, "dev", "console")), /\/dev\/console is not a regular file or a character device/);
      // no devpts: /dev/pts/ptmx planted in the image, as a symlink to the host file or as a plain file
      const noDevpts = (b: Bundle) => {
        b.spec.mounts = b.spec.mounts!.filter((m) => m.destination !== "/dev/pts");
        fs.mkdirSync(path.join(b.rootfs, "dev", "pts"), { recursive: true });
      };
      attempt((b) => {
        noDevpts(b);
        fs.symlinkSync(host.dir + "/target", path.join(b.rootfs, "dev", "pts", "ptmx"));
      }, /console: open \/dev\/pts\/ptmx in container: it is a symlink/);
      attempt((b) => {
        noDevpts(b);
        fs.writeFileSync(path.join(b.rootfs, "dev", "pts", "ptmx"), "");
      }, /ptmx handle is not on a real devpts mount/);
    } finally {
      server.close();
    }
    host.check();
  });

  test("CVE-2024-21626: a cwd through a leaked fd fails, and no fd of tsrun reaches the container", () => {
    for (const fd of [3, 4, 5, 6, 7, 8, 9]) {
      const b = makeBundle(["facts"], (s) => (s.process!.cwd = `/proc/self/fd/${fd}`));
      const r = run(b);
      assert.notEqual(r.status, 0, `cwd /proc/self/fd/${fd} was accepted: ${r.stdout}`);
      tsrun(["delete", "-f", b.id]);
    }
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    try {
      const exec = JSON.parse(ok(tsrun(["exec", b.id, "/probe", "facts"])).stdout) as { fds: { fd: number; target: string }[] };
      assert.deepEqual(exec.fds.filter((f) => f.fd > 2), [], "exec: fds beyond stdio");
      const pid = Number(JSON.parse(ok(tsrun(["state", b.id])).stdout).pid);
      const initFds = fs.readdirSync(`/proc/${pid}/fd`).map(Number).filter((n) => n > 2);
      assert.deepEqual(initFds, [], "init: fds beyond stdio");
    } finally {
      tsrun(["delete", "-f", b.id]);
    }
  });

  test("CVE-2019-5736: the waiting init runs from a sealed memfd the container cannot overwrite", () => {
    const helper = path.join(REPO, "build", "Release", "tsrun-init");
    const before = crypto.createHash("sha256").update(fs.readFileSync(helper)).digest("hex");
    const b = makeBundle(["facts"]);
    ok(tsrun(["create", "--bundle", b.dir, b.id]));
    try {
      const pid = Number(JSON.parse(ok(tsrun(["state", b.id])).stdout).pid);
      assert.match(fs.readlinkSync(`/proc/${pid}/exe`), /^\/memfd:/);
      // from inside: a process racing to open the init's exe for writing
      const inside = JSON.parse(ok(tsrun(["exec", b.id, "/probe", "open", "/proc/1/exe", "w"])).stdout) as { ok: boolean };
      assert.equal(inside.ok, false, "the container opened /proc/1/exe for writing");
      // even the host's root cannot write it: the memfd is sealed (and busy)
      let wrote = false;
      try {
        const fd = fs.openSync(`/proc/${pid}/exe`, "r+");
        try {
          fs.writeSync(fd, "pwned");
          wrote = true;
        } finally {
          fs.closeSync(fd);
        }
      } catch {
        // EPERM (F_SEAL_WRITE) or ETXTBSY
      }
      assert.equal(wrote, false, "the helper's memfd was writable");
      // and its seals: F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
      const seals = spawnSync("python3", ["-c", `import fcntl,os; fd=os.open("/proc/${pid}/exe", os.O_RDONLY); print(fcntl.fcntl(fd, 1034))`], { encoding: "utf8" });
      if (seals.status === 0) assert.equal(Number(seals.stdout) & 0xf, 0xf, `seals ${seals.stdout}`);
    } finally {
      tsrun(["delete", "-f", b.id]);
    }
    assert.equal(crypto.createHash("sha256").update(fs.readFileSync(helper)).digest("hex"), before, "tsrun-init on disk changed");
  });

  test("CVE-2023-25809: a cgroup mount with a user namespace and no cgroup namespace is read-only, even if it asks for rw", () => {
    const b = makeBundle(["mountinfo"], (s) => {
      s.linux!.namespaces!.push({ type: "user" });
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "cgroup");
      s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      const cg = s.mounts!.find((m) => m.type === "cgroup")!;
      cg.options = (cg.options ?? []).filter((o) => o !== "ro").concat("rw");
    });
    fs.chownSync(b.rootfs, 100000, 200000);
    const mounts = JSON.parse(ok(run(b)).stdout) as { mountPoint: string; options: string[]; fsType: string }[];
    const cgroups = mounts.filter((m) => (m.mountPoint === "/sys/fs/cgroup" || m.mountPoint.startsWith("/sys/fs/cgroup/")) && m.fsType.startsWith("cgroup"));
    assert.ok(cgroups.length > 0, "cgroup hierarchies are mounted");
    for (const m of cgroups) assert.ok(m.options.includes("ro"), `${m.mountPoint} (${m.fsType}) is not read-only: ${m.options.join(",")}`);
  });
});
