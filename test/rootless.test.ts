// Rootless tsrun (issue 12 point 7, issue 14 point 3 on this host), as runc: an ordinary user (created here
// and removed after) runs a `spec --rootless` bundle with no --root: the state goes to
// $XDG_RUNTIME_DIR/tsrun (0700 + sticky), cgroups it may not create are left out (runc's rootless cgroup
// manager), and the same refusals as runc's (no user namespace, a limit without a cgroup, --rootless false).
import { after, before, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { defaultSpec } from "../src/spec/default";
import type { Spec } from "../src/spec/schema";
import { TSRUN, cgroupMounts, cleanup, makeRootfs, uniqueId, work } from "./helpers";

const USER = `tsrl${process.pid % 100000}`;
let uid = -1;
let xdg = "";

function asUser(args: string[], env: Record<string, string> = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(TSRUN, args, {
    uid,
    gid: uid,
    cwd: work(),
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", USER, HOME: xdg, XDG_RUNTIME_DIR: xdg, ...env },
    encoding: "utf8",
    timeout: 30_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

// A bundle as `tsrun spec --rootless` writes it, mapping root in the container to the user.
function rootlessBundle(args: string[], patch?: (s: Spec) => void): { dir: string; id: string } {
  const id = uniqueId("rl");
  const dir = path.join(work(), id);
  const rootfs = path.join(dir, "rootfs");
  makeRootfs(rootfs);
  const spec = defaultSpec({ rootless: true });
  spec.process!.terminal = false;
  spec.process!.args = ["/probe", ...args];
  spec.root = { path: rootfs, readonly: false };
  spec.linux!.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }];
  spec.linux!.gidMappings = [{ containerID: 0, hostID: uid, size: 1 }];
  patch?.(spec);
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(spec));
  execFileSync("chown", ["-R", `${uid}:${uid}`, dir]);
  return { dir, id };
}

// Cgroup directories named after the container anywhere in the host's hierarchies.
function cgroupsNamed(id: string): string[] {
  return cgroupMounts()
    .map((m) => path.join(m, id))
    .filter((d) => fs.existsSync(d));
}

describe("rootless (a non-root user runs tsrun)", () => {
  before(() => {
    execFileSync("useradd", ["--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", USER]);
    uid = Number(execFileSync("id", ["-u", USER], { encoding: "utf8" }).trim());
    xdg = path.join(work(), "xdg");
    fs.mkdirSync(xdg, { mode: 0o700 });
    fs.chownSync(xdg, uid, uid);
  });
  after(() => {
    if (uid >= 0) {
      spawnSync("pkill", ["-KILL", "-u", String(uid)]);
      spawnSync("userdel", [USER]);
      spawnSync("groupdel", [USER]);
    }
    cleanup();
  });

  test("a `spec --rootless` bundle runs with the state in $XDG_RUNTIME_DIR/tsrun (0700, sticky), no cgroup made", () => {
    const b = rootlessBundle(["facts"]);
    const r = asUser(["run", "--bundle", b.dir, b.id]);
    assert.equal(r.status, 0, r.stderr);
    const facts = JSON.parse(r.stdout.split("\n")[0]!) as { uid: number };
    assert.equal(facts.uid, 0);
    const root = path.join(xdg, "tsrun");
    const st = fs.statSync(root);
    assert.equal(st.uid, uid);
    assert.equal(st.mode & 0o7777, 0o1700);
    assert.deepEqual(cgroupsNamed(b.id), []);
    assert.deepEqual(fs.readdirSync(root), [], "run removes its state");
  });

  test("run -d, exec, state, kill and delete as the user", () => {
    const b = rootlessBundle(["sleep", "60"]);
    assert.equal(asUser(["run", "-d", "--bundle", b.dir, b.id]).status, 0);
    const state = JSON.parse(asUser(["state", b.id]).stdout) as { status: string; pid: number };
    assert.equal(state.status, "running");
    assert.equal(fs.statSync(`/proc/${state.pid}`).uid, uid, "the init runs as the user on the host");
    const ex = asUser(["exec", b.id, "/probe", "facts"]);
    assert.equal(ex.status, 0, ex.stderr);
    assert.equal((JSON.parse(ex.stdout.split("\n")[0]!) as { uid: number }).uid, 0);
    const groups = asUser(["exec", "--additional-gids", "5", b.id, "/probe", "facts"]);
    assert.notEqual(groups.status, 0);
    assert.match(groups.stderr, /cannot set any additional groups in a rootless container/);
    assert.equal(asUser(["kill", b.id, "KILL"]).status, 0);
    const del = asUser(["delete", "--force", b.id]);
    assert.equal(del.status, 0, del.stderr);
    assert.equal(asUser(["state", b.id]).status, 1);
  });

  test("--rootless false: the cgroup permission error is fatal, and nothing is left", () => {
    const b = rootlessBundle(["facts"]);
    const r = asUser(["--rootless", "false", "run", "--bundle", b.dir, b.id]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /cgroup .*(EACCES|permission denied)/);
    assert.deepEqual(fs.readdirSync(path.join(xdg, "tsrun")).filter((d) => d === b.id), []);
  });

  test("a limit where no cgroup could be made fails as runc's does; --rootless bogus is refused", () => {
    const b = rootlessBundle(["facts"], (s) => {
      s.linux!.resources = { memory: { limit: 100 * 1024 * 1024 } };
    });
    const r = asUser(["run", "--bundle", b.dir, b.id]);
    assert.notEqual(r.status, 0);
    const v2only = cgroupMounts().length === 1;
    assert.match(r.stderr, v2only ? /rootless needs no limits \+ no cgrouppath when no permission is granted for cgroups/ : /cannot set memory limit: container could not join or create cgroup/);
    const bogus = asUser(["--rootless", "bogus", "list"]);
    assert.equal(bogus.status, 1);
    assert.match(bogus.stderr, /--rootless: invalid value "bogus"/);
  });

  test("a config without a user namespace is refused, as runc refuses it", () => {
    const b = rootlessBundle(["facts"], (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "user");
      delete s.linux!.uidMappings;
      delete s.linux!.gidMappings;
    });
    const r = asUser(["run", "--bundle", b.dir, b.id]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /rootless container requires user namespaces/);
  });

  test("CVE-2023-25809: without a cgroup namespace, /sys/fs/cgroup and everything under it is read-only inside", () => {
    const b = rootlessBundle(["mountinfo"], (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "cgroup");
    });
    const r = asUser(["run", "--bundle", b.dir, b.id]);
    assert.equal(r.status, 0, r.stderr);
    const mounts = JSON.parse(r.stdout.split("\n")[0]!) as { id: number; parent: number; mountPoint: string; options: string[] }[];
    // what the container sees there: the last mount on /sys/fs/cgroup (the spec's /sys rbind brings the host's
    // own below it, hidden) and the mounts on top of that one
    const top = mounts.filter((m) => m.mountPoint === "/sys/fs/cgroup").at(-1);
    assert.ok(top, "a cgroup mount is there");
    const visible = [top, ...mounts.filter((m) => m.parent === top.id)];
    for (const m of visible) assert.ok(m.options.includes("ro"), `${m.mountPoint} is ${m.options.join(",")}`);
  });

  test("root keeps /run/tsrun when XDG_RUNTIME_DIR is set (runc's rule for the initial user namespace)", () => {
    const dir = path.join(work(), "root-xdg");
    fs.mkdirSync(dir);
    const r = spawnSync(TSRUN, ["list", "-q"], { env: { ...process.env, XDG_RUNTIME_DIR: dir }, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
