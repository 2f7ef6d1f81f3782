// Rootless on a systemd host (issue 14 point 3): an ordinary user (created here, with subordinate ids, and
// removed after) with a systemd user session (lingering: user@UID.service and its bus), as rootless podman
// users have it. Through tsrun and, for comparison, runc:
// - a `spec --rootless` bundle with a pids limit, created from a delegated scope of the user's instance
//   (cgroupfs driver: the container's cgroup goes beside tsrun's own, inside the delegated subtree);
// - the same bundle with --systemd-cgroup: a scope of the user's own systemd, limits as unit properties;
// - rootless podman (`podman --runtime`): run, exec, stop and rm, the container in a scope below
//   user@UID.service with its limit, and /sys/fs/cgroup not writable inside (CVE-2023-25809).
// Skipped unless TSRUN_GUEST=1 (the systemd test host: npm run test:hosts).
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { defaultSpec } from "../../src/spec/default";
import { REPO, makeRootfs, uniqueId, waitFor } from "../helpers";
import { probeImage } from "./probe-image";

const skip = process.env.TSRUN_GUEST === "1" ? false : "runs only in the systemd test host (npm run test:hosts)";
const USER = `tsrg${process.pid % 100000}`;
const RUNTIMES = [
  ["runc", "/usr/sbin/runc"],
  ["tsrun", path.join(REPO, "bin", "tsrun")],
] as const;

let uid = -1;
let home = "";
let xdg = "";

interface Result {
  status: number;
  stdout: string;
  stderr: string;
}

// A command as the user, in its session's environment (its runtime dir and bus). Output goes through files:
// a container made by `create` keeps the caller's stdio open (a pipe would never reach its end).
let seq = 0;
function asUser(cmd: string, args: string[], o: { env?: Record<string, string>; cwd?: string } = {}): Result {
  const out = path.join(os.tmpdir(), `rootless-${process.pid}-${seq}.out`);
  const err = path.join(os.tmpdir(), `rootless-${process.pid}-${seq++}.err`);
  const fds = [fs.openSync(out, "w+"), fs.openSync(err, "w+")] as const;
  try {
    const r = spawnSync(cmd, args, {
      uid,
      gid: uid,
      cwd: o.cwd ?? home,
      env: { PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", USER, LOGNAME: USER, HOME: home, XDG_RUNTIME_DIR: xdg, DBUS_SESSION_BUS_ADDRESS: `unix:path=${xdg}/bus`, ...o.env },
      stdio: ["ignore", fds[0], fds[1]],
      timeout: 300_000,
    });
    return { status: r.status ?? -1, stdout: fs.readFileSync(out, "utf8"), stderr: `${fs.readFileSync(err, "utf8")}${r.error ? String(r.error) : ""}` };
  } finally {
    fds.forEach((fd) => fs.closeSync(fd));
    fs.rmSync(out, { force: true });
    fs.rmSync(err, { force: true });
  }
}

function must(r: Result, what: string): string {
  assert.equal(r.status, 0, `${what}: ${r.stderr}`);
  return r.stdout;
}

// The cgroup (v2) a process is in, relative to /sys/fs/cgroup.
function cgroupOf(pid: number): string {
  const line = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").find((l) => l.startsWith("0::"));
  assert.ok(line, `pid ${pid} has a v2 cgroup`);
  return line.slice(3);
}

// A bundle as `spec --rootless` writes it (root in the container is the user), owned by the user.
function rootlessBundle(args: string[], pids: number): { dir: string; id: string } {
  const id = uniqueId("rg");
  const dir = path.join(home, id);
  makeRootfs(path.join(dir, "rootfs"));
  const spec = defaultSpec({ rootless: true });
  spec.process!.terminal = false;
  spec.process!.args = ["/probe", ...args];
  spec.root = { path: "rootfs", readonly: false };
  spec.linux!.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }];
  spec.linux!.gidMappings = [{ containerID: 0, hostID: uid, size: 1 }];
  spec.linux!.resources = { pids: { limit: pids } };
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(spec));
  execFileSync("chown", ["-R", `${uid}:${uid}`, dir]);
  return { dir, id };
}

describe("rootless under a systemd user session (systemd 252, cgroup v2)", { skip, concurrency: false }, () => {
  before(() => {
    execFileSync("useradd", ["--create-home", "--user-group", "--shell", "/bin/sh", USER]);
    execFileSync("usermod", ["--add-subuids", "300000-365535", "--add-subgids", "300000-365535", USER]);
    uid = Number(execFileSync("id", ["-u", USER], { encoding: "utf8" }).trim());
    home = `/home/${USER}`;
    xdg = `/run/user/${uid}`;
    // a lingering user: logind starts user@UID.service (the user's systemd, delegated a cgroup subtree) and
    // dbus-user-session its bus
    execFileSync("loginctl", ["enable-linger", USER]);
    waitFor(() => fs.existsSync(`${xdg}/bus`) && spawnSync("systemctl", ["is-active", "--quiet", `user@${uid}.service`]).status === 0, 240_000, 500);
  });
  after(() => {
    if (uid < 0) return;
    asUser("podman", ["rm", "--all", "--force", "--time", "0"]);
    spawnSync("loginctl", ["disable-linger", USER]);
    spawnSync("systemctl", ["stop", `user@${uid}.service`]);
    spawnSync("pkill", ["-KILL", "-u", USER]);
    spawnSync("sh", ["-c", `grep -o " ${home}[^ ]*\\| ${xdg}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    spawnSync("userdel", ["--remove", "--force", USER]);
    fs.rmSync(home, { recursive: true, force: true });
  });

  test("the user's instance delegates cpu, memory and pids", () => {
    const controllers = fs.readFileSync(`/sys/fs/cgroup/user.slice/user-${uid}.slice/user@${uid}.service/cgroup.controllers`, "utf8").trim().split(" ");
    for (const c of ["cpu", "memory", "pids"]) assert.ok(controllers.includes(c), `${c} in user@${uid}.service: ${controllers.join(" ")}`);
  });

  test("spec --rootless bundle, cgroupfs driver, from a delegated scope: its cgroup in the subtree, with the limit", () => {
    for (const [who, binary] of RUNTIMES) {
      const b = rootlessBundle(["sleep", "600"], 20);
      const root = `${xdg}/${who}-cgfs`;
      // create from a scope of the user's own systemd (as a login shell's processes are)
      must(asUser("systemd-run", ["--user", "--scope", "--quiet", "--", binary, "--root", root, "create", "--bundle", b.dir, b.id]), `${who} create`);
      try {
        const st = JSON.parse(must(asUser(binary, ["--root", root, "state", b.id]), `${who} state`)) as { pid: number; status: string };
        assert.equal(st.status, "created");
        const cg = cgroupOf(st.pid);
        assert.ok(cg.startsWith(`/user.slice/user-${uid}.slice/user@${uid}.service/`), `${who}: ${cg} is in the user's delegated subtree`);
        assert.equal(fs.readFileSync(path.join("/sys/fs/cgroup", cg, "pids.max"), "utf8").trim(), "20", `${who}: pids.max`);
        must(asUser(binary, ["--root", root, "start", b.id]), `${who} start`);
      } finally {
        asUser(binary, ["--root", root, "kill", b.id, "KILL"]);
        waitFor(() => asUser(binary, ["--root", root, "delete", "--force", b.id]).status === 0, 60_000, 500);
      }
    }
  });

  test("spec --rootless bundle, --systemd-cgroup: a scope of the user's systemd, limits as its properties", () => {
    for (const [who, binary] of RUNTIMES) {
      const b = rootlessBundle(["sleep", "600"], 30);
      const root = `${xdg}/${who}-sd`;
      const unit = `${who}-${b.id}.scope`;
      const spec = JSON.parse(fs.readFileSync(path.join(b.dir, "config.json"), "utf8")) as ReturnType<typeof defaultSpec>;
      spec.linux!.cgroupsPath = `user.slice:${who}:${b.id}`;
      spec.linux!.resources = { pids: { limit: 30 }, memory: { limit: 64 << 20 } };
      fs.writeFileSync(path.join(b.dir, "config.json"), JSON.stringify(spec));
      must(asUser(binary, ["--root", root, "--systemd-cgroup", "create", "--bundle", b.dir, b.id]), `${who} create`);
      try {
        const st = JSON.parse(must(asUser(binary, ["--root", root, "state", b.id]), `${who} state`)) as { pid: number };
        const cg = cgroupOf(st.pid);
        assert.equal(cg, `/user.slice/user-${uid}.slice/user@${uid}.service/user.slice/${unit}`, `${who}: the scope's cgroup`);
        assert.equal(fs.readFileSync(path.join("/sys/fs/cgroup", cg, "memory.max"), "utf8").trim(), String(64 << 20), `${who}: memory.max`);
        assert.equal(fs.readFileSync(path.join("/sys/fs/cgroup", cg, "pids.max"), "utf8").trim(), "30", `${who}: pids.max`);
        const show = must(asUser("systemctl", ["--user", "show", unit, "--property=MemoryMax,TasksMax,Delegate"]), "systemctl --user show");
        assert.match(show, new RegExp(`^MemoryMax=${64 << 20}$`, "m"), `${who}: ${show}`);
        assert.match(show, /^TasksMax=30$/m, `${who}: ${show}`);
        assert.match(show, /^Delegate=yes$/m, `${who}: ${show}`);
        must(asUser(binary, ["--root", root, "--systemd-cgroup", "update", "--memory", String(32 << 20), b.id]), `${who} update`);
        assert.equal(fs.readFileSync(path.join("/sys/fs/cgroup", cg, "memory.max"), "utf8").trim(), String(32 << 20), `${who}: memory.max after update`);
      } finally {
        asUser(binary, ["--root", root, "kill", b.id, "KILL"]);
        waitFor(() => asUser(binary, ["--root", root, "--systemd-cgroup", "delete", "--force", b.id]).status === 0, 60_000, 500);
      }
      assert.notEqual(asUser("systemctl", ["--user", "is-active", "--quiet", unit]).status, 0, `${who}: ${unit} is gone after delete`);
    }
  });

  test("rootless podman (cgroup_manager systemd): run, exec, stop, rm through runc and through tsrun", () => {
    // the image: the static probe alone, loaded into the user's storage
    const archive = probeImage(home);
    execFileSync("chown", ["-R", `${uid}:${uid}`, home]);
    const conf = path.join(home, "containers.conf");
    fs.writeFileSync(conf, ["[containers]", "default_ulimits = []", "[engine]", 'runtime_supports_json = ["runc", "tsrun", "crun"]', 'events_logger = "file"', 'cgroup_manager = "systemd"', ""].join("\n"));
    const env = { CONTAINERS_CONF: conf };
    must(asUser("podman", ["load", "-i", archive], { env }), "podman load");
    const image = must(asUser("podman", ["images", "--format", "{{.ID}}"], { env }), "podman images").trim().split("\n")[0]!;
    for (const [who, binary] of RUNTIMES) {
      const name = `${who}-${process.pid}`;
      const rt = ["--runtime", binary];
      must(asUser("podman", [...rt, "run", "-d", "--name", name, "--network", "none", "--pids-limit", "40", "--memory", String(64 << 20), image, "/probe", "sleep", "600"], { env }), `${who}: podman run`);
      try {
        const pid = Number(must(asUser("podman", [...rt, "inspect", "--format", "{{.State.Pid}}", name], { env }), `${who}: inspect`).trim());
        assert.ok(pid > 0, `${who}: a running container`);
        const cg = cgroupOf(pid);
        assert.match(cg, new RegExp(`^/user\\.slice/user-${uid}\\.slice/user@${uid}\\.service/user\\.slice/libpod-[0-9a-f]{64}\\.scope(/container)?$`), `${who}: the container's scope`);
        const scope = cg.replace(/\/container$/, "");
        assert.equal(fs.readFileSync(path.join("/sys/fs/cgroup", scope, "pids.max"), "utf8").trim(), "40", `${who}: pids.max`);
        assert.equal(fs.readFileSync(path.join("/sys/fs/cgroup", scope, "memory.max"), "utf8").trim(), String(64 << 20), `${who}: memory.max`);
        // exec: root in the container is the user outside
        const facts = JSON.parse(must(asUser("podman", [...rt, "exec", name, "/probe", "facts"], { env }), `${who}: exec`).split("\n")[0]!) as { uid: number };
        assert.equal(facts.uid, 0, `${who}: uid inside`);
        assert.equal(execFileSync("stat", ["-c", "%u", `/proc/${pid}`], { encoding: "utf8" }).trim(), String(uid), `${who}: the container runs as the user`);
        // CVE-2023-25809: /sys/fs/cgroup is not writable from inside
        const w = JSON.parse(must(asUser("podman", [...rt, "exec", name, "/probe", "write", "/sys/fs/cgroup/cgroup.procs", "1"], { env }), `${who}: exec write`).split("\n")[0]!) as { ok: boolean };
        assert.equal(w.ok, false, `${who}: /sys/fs/cgroup writable inside`);
        must(asUser("podman", [...rt, "stop", "--time", "1", name], { env }), `${who}: stop`);
        assert.equal(must(asUser("podman", [...rt, "inspect", "--format", "{{.State.Status}}", name], { env }), `${who}: inspect`).trim(), "exited");
        must(asUser("podman", [...rt, "rm", name], { env }), `${who}: rm`);
        assert.equal(fs.existsSync(path.join("/sys/fs/cgroup", scope)), false, `${who}: the scope is gone`);
      } finally {
        asUser("podman", [...rt, "rm", "--force", "--time", "0", name], { env });
      }
    }
  });
});
