// The engines on a systemd host, with the systemd cgroup driver (issue 13): containerd (runc's shim with
// `SystemdCgroup`, through `ctr run --runc-systemd-cgroup --runc-binary`, and tsrun's own shim, whose
// v2 task metrics are checked too), podman (`--cgroup-manager
// systemd --runtime`) and Docker (`native.cgroupdriver=systemd`, `--add-runtime`) run a container with a
// memory and a cpu limit through runc and through tsrun; each container is a systemd scope whose files and
// unit properties show the limits, identically for both runtimes. The guest has AppArmor: each engine's
// default profile (containerd's generated one, podman's containers-default, Docker's docker-default) is the
// container's label, and an exec'd process's (issue 14). Skipped unless TSRUN_GUEST=1 (the systemd test
// host: npm run test:hosts).
import * as assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO, cleanup, uniqueId, waitFor, work } from "../helpers";
import { probeImage } from "./probe-image";

const skip = process.env.TSRUN_GUEST === "1" ? false : "runs only in the systemd test host (npm run test:hosts)";
const RUNTIMES = [
  ["runc", "/usr/sbin/runc"],
  ["tsrun", path.join(REPO, "bin", "tsrun")],
] as const;
const MEMORY = 64 << 20;
const PROFILE = "tsrun-ctr-default"; // containerd's default profile, under a name of this test's

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env, timeout: 300_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}${r.error ? String(r.error) : ""}`);
  return r.stdout;
}

// What systemd and the cgroup files say of the scope a process is in.
function scopeOf(pid: number): { unit: string; memoryMax: string; cpuMax: string; unitMemoryMax: string } {
  const line = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").find((l) => l.startsWith("0::"));
  assert.ok(line, `pid ${pid} has a v2 cgroup`);
  const rel = line.slice(3);
  const unit = path.basename(rel);
  assert.match(unit, /\.scope$/, `${rel} is a systemd scope`);
  const dir = path.join("/sys/fs/cgroup", rel);
  const unitMemoryMax = run("systemctl", ["show", unit, "--property=MemoryMax", "--value"]).trim();
  return { unit, memoryMax: fs.readFileSync(path.join(dir, "memory.max"), "utf8").trim(), cpuMax: fs.readFileSync(path.join(dir, "cpu.max"), "utf8").trim(), unitMemoryMax };
}

// The AppArmor label a process runs under (/proc/PID/attr/current: "profile (enforce)").
function label(pid: number): string {
  return fs.readFileSync(`/proc/${pid}/attr/current`, "utf8").replace(/\0/g, "").trim();
}

function expectLimits(pid: number, who: string): void {
  const s = scopeOf(pid);
  assert.equal(s.memoryMax, String(MEMORY), `${who}: memory.max of ${s.unit}`);
  assert.equal(s.unitMemoryMax, String(MEMORY), `${who}: MemoryMax of ${s.unit}`);
  assert.equal(s.cpuMax, "50000 100000", `${who}: cpu.max of ${s.unit}`);
}

describe("engines with the systemd cgroup driver (systemd 252, cgroup v2)", { skip }, () => {
  let dir = "";
  let archive = "";
  let containerd: ChildProcess | undefined;
  const sock = () => path.join(dir, "containerd.sock");
  const ns = `tsrun-guest-${process.pid}`;
  const ctr = (args: string[]) => run("ctr", ["--address", sock(), "--namespace", ns, ...args]);

  before(() => {
    dir = path.join(work(), uniqueId("eng"));
    fs.mkdirSync(dir, { recursive: true });
    archive = probeImage(dir);
  });
  after(() => {
    if (containerd?.pid) {
      try {
        process.kill(-containerd.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    cleanup();
  });

  test("containerd (SystemdCgroup): runc and tsrun give the same scope, limits in its files and properties", () => {
    const config = [
      "version = 2",
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = "${sock()}"`,
      "[ttrpc]",
      `  address = "${dir}/containerd-ttrpc.sock"`,
    ].join("\n");
    fs.writeFileSync(path.join(dir, "config.toml"), config + "\n");
    const log = fs.openSync(path.join(dir, "containerd.log"), "w");
    // (tsrun's own shim, containerd-shim-tsrun-v2, is found on containerd's PATH)
    containerd = spawn("containerd", ["--config", path.join(dir, "config.toml")], { stdio: ["ignore", log, log], detached: true, env: { ...process.env, PATH: `${path.join(REPO, "bin")}:${process.env.PATH ?? ""}` } });
    fs.closeSync(log);
    waitFor(() => spawnSync("ctr", ["--address", sock(), "version"], { encoding: "utf8" }).stdout.includes("Server"), 120_000, 200);
    ctr(["images", "import", "--base-name", "tsrun.local/guest", archive]);
    // runc's shim with runc and with tsrun (runc Options: BinaryName, SystemdCgroup), and tsrun's own shim,
    // which gets no runc Options from ctr: the "slice:prefix:name" cgroupsPath selects systemd there
    const runtimes = [...RUNTIMES.map(([who, binary]) => [who, ["--runc-binary", binary, "--runc-systemd-cgroup"]] as const), ["tsrun-shim", ["--runtime", "io.containerd.tsrun.v2"]] as const];
    for (const [who, how] of runtimes) {
      const id = `${who}-${process.pid}`;
      ctr(["run", "-d", ...how, "--cgroup", `system.slice:ctr-${who}:${process.pid}`, "--memory-limit", String(MEMORY), "--cpus", "0.5", "--apparmor-default-profile", PROFILE, "tsrun.local/guest:latest", id, "/probe", "sleep", "600"]);
      try {
        const pid = Number(/\s(\d+)\s+RUNNING/.exec(ctr(["task", "ls"]).split("\n").find((l) => l.startsWith(id + " ")) ?? "")?.[1]);
        assert.ok(pid > 0, `${who}: a running task`);
        expectLimits(pid, who);
        // containerd's docker-default-style profile, generated and loaded by ctr, is the container's label
        assert.equal(label(pid), `${PROFILE} (enforce)`, `${who}: the container's AppArmor label`);
        const inside = JSON.parse(ctr(["task", "exec", "--exec-id", `x${process.pid}`, id, "/probe", "read", "/proc/self/attr/current"]).split("\n")[0]!) as { content: string };
        assert.equal(inside.content.replace(/\0/g, "").trim(), `${PROFILE} (enforce)`, `${who}: an exec'd process's AppArmor label`);
        // the task's metrics are cgroup v2's (the tsrun shim reads them itself; runc's shim through runc)
        const metrics = JSON.parse(ctr(["task", "metrics", "--format", "json", id])) as { pids?: { current?: number }; memory?: { usage?: number; usage_limit?: number } };
        assert.ok((metrics.pids?.current ?? 0) >= 1, `${who}: pids.current in ${JSON.stringify(metrics).slice(0, 300)}`);
        assert.ok((metrics.memory?.usage ?? 0) > 0, `${who}: memory.usage`);
        assert.equal(metrics.memory?.usage_limit, MEMORY, `${who}: memory.usage_limit`);
      } finally {
        spawnSync("ctr", ["--address", sock(), "--namespace", ns, "task", "kill", "-s", "KILL", id]);
        waitFor(() => spawnSync("ctr", ["--address", sock(), "--namespace", ns, "task", "rm", id]).status === 0, 60_000, 500);
        spawnSync("ctr", ["--address", sock(), "--namespace", ns, "container", "rm", id]);
      }
    }
  });

  test("podman (cgroup_manager systemd): runc and tsrun give the same scope, limits in its files and properties", () => {
    const conf = path.join(dir, "containers.conf");
    const runtimes = RUNTIMES.map(([n]) => `"${n}"`).join(", ");
    fs.writeFileSync(conf, ["[containers]", "default_ulimits = []", "[engine]", `runtime_supports_json = [${runtimes}, "crun"]`, 'events_logger = "file"', 'cgroup_manager = "systemd"', ""].join("\n"));
    const env = { ...process.env, CONTAINERS_CONF: conf };
    const runroot = fs.mkdtempSync("/tmp/pr"); // (podman: a runroot of at most 50 characters)
    const base = ["--root", `${dir}/podman-root`, "--runroot", runroot, "--tmpdir", `${dir}/podman-tmp`, "--cgroup-manager", "systemd", "--events-backend", "file"];
    run("podman", [...base, "load", "-i", archive], env);
    const image = run("podman", [...base, "images", "--format", "{{.ID}}"], env).trim().split("\n")[0]!;
    for (const [who, binary] of RUNTIMES) {
      const name = `${who}-${process.pid}`;
      const rt = [...base, "--runtime", binary, "--runtime-flag", `root=${dir}/${who}-state`];
      run("podman", [...rt, "run", "-d", "--name", name, "--network", "none", "--memory", String(MEMORY), "--cpus", "0.5", image, "/probe", "sleep", "600"], env);
      try {
        const pid = Number(run("podman", [...rt, "inspect", "--format", "{{.State.Pid}}", name], env).trim());
        assert.ok(pid > 0, `${who}: a running container`);
        expectLimits(pid, who);
        // podman's default profile (containers-default-<version>) is the container's label
        assert.match(label(pid), /^containers-default-[0-9.]+ \(enforce\)$/, `${who}: the container's AppArmor label`);
      } finally {
        spawnSync("podman", [...rt, "rm", "--force", name], { env });
      }
    }
    spawnSync("umount", ["-R", "-l", runroot]);
    fs.rmSync(runroot, { recursive: true, force: true });
  });
  test("Docker (native.cgroupdriver=systemd): runc and tsrun give the same scope and limits, docker-default confines both", () => {
    // a daemon of this test's own: data, exec root and socket in private directories, no iptables and no
    // bridge (containers run with --network none), both runtimes added by path
    const exec = fs.mkdtempSync("/tmp/dx"); // (the exec root's socket paths must stay short)
    const sockPath = path.join(exec, "docker.sock");
    const log = fs.openSync(path.join(dir, "dockerd.log"), "w");
    const runtimes = RUNTIMES.flatMap(([who, binary]) => ["--add-runtime", `guest-${who}=${binary}`]);
    const dockerd = spawn("dockerd", ["--data-root", `${dir}/docker`, "--exec-root", exec, "--host", `unix://${sockPath}`, "--pidfile", `${exec}/dockerd.pid`, "--iptables=false", "--ip6tables=false", "--bridge=none", "--exec-opt", "native.cgroupdriver=systemd", ...runtimes], { stdio: ["ignore", log, log], detached: true });
    fs.closeSync(log);
    const docker = (args: string[]) => run("docker", ["--host", `unix://${sockPath}`, ...args]);
    try {
      waitFor(() => spawnSync("docker", ["--host", `unix://${sockPath}`, "version", "--format", "{{.Server.Version}}"]).status === 0, 180_000, 500);
      assert.match(docker(["info", "--format", "{{.CgroupDriver}} {{.CgroupVersion}}"]).trim(), /^systemd 2$/);
      // Docker 20.10 loads docker-archive, not OCI
      const dockerArchive = path.join(dir, "image.docker.tar");
      run("skopeo", ["copy", "--quiet", `oci-archive:${archive}:latest`, `docker-archive:${dockerArchive}:tsrun.local/guest:latest`]);
      docker(["load", "--input", dockerArchive]);
      for (const [who] of RUNTIMES) {
        const name = `${who}-${process.pid}`;
        const id = docker(["run", "-d", "--name", name, "--runtime", `guest-${who}`, "--network", "none", "--memory", String(MEMORY), "--cpus", "0.5", "tsrun.local/guest:latest", "/probe", "sleep", "600"]).trim();
        try {
          const pid = Number(docker(["inspect", "--format", "{{.State.Pid}}", name]).trim());
          assert.ok(pid > 0, `${who}: a running container`);
          expectLimits(pid, who);
          assert.equal(scopeOf(pid).unit, `docker-${id}.scope`, `${who}: Docker's scope`);
          assert.equal(label(pid), "docker-default (enforce)", `${who}: the container's AppArmor label`);
          const inside = JSON.parse(docker(["exec", name, "/probe", "read", "/proc/self/attr/current"]).split("\n")[0]!) as { content: string };
          assert.equal(inside.content.replace(/\0/g, "").trim(), "docker-default (enforce)", `${who}: an exec'd process's AppArmor label`);
        } finally {
          spawnSync("docker", ["--host", `unix://${sockPath}`, "rm", "--force", name]);
        }
      }
    } finally {
      if (dockerd.pid) {
        try {
          process.kill(dockerd.pid, "SIGTERM");
        } catch {
          // gone
        }
        waitFor(() => !fs.existsSync(`/proc/${dockerd.pid}`) || /\) Z/.test(fs.readFileSync(`/proc/${dockerd.pid}/stat`, "utf8")), 60_000, 200);
      }
      spawnSync("umount", ["-R", "-l", exec]);
      spawnSync("sh", ["-c", `grep -o " ${dir}/docker[^ ]*" /proc/self/mountinfo | xargs -r -n1 umount -l`]);
      fs.rmSync(exec, { recursive: true, force: true });
    }
  });
});
