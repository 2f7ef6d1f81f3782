// The containerd shim's rootfs mounts (src/shim/containerd/service.ts mountRootfs/unmountRootfs, main.ts's
// delete): mount(2)/umount2(2) from the addon with containerd's mount.All/UnmountAll semantics, on real
// mounts in a temp dir: bind (rw, ro), overlay, refused options, unwinding, stacks, a busy mount, a symlink
// planted at rootfs, and `delete` of a shim that is gone.
import { create } from "@bufbuild/protobuf";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { native } from "../src/native";
import { MountSchema } from "../src/shim/containerd/gen/types/mount_pb";
import { compactLowerdirs, mountRootfs, rootfsMountOptions, unmountRootfs } from "../src/shim/containerd/service";
import { REPO } from "./helpers";

const MAIN = path.join(REPO, "dist", "src", "shim", "containerd", "main.js");
const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "cshim-mount-")));

// mount points (unescaped) of this mount namespace
function mountPoints(): string[] {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split(" ")[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}
const mountsAt = (p: string) => mountPoints().filter((m) => m === p).length;
function mountOptions(p: string): string[] {
  const line = fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.split(" ")[4] === p).pop();
  return line ? line.split(" ")[5]!.split(",") : [];
}

after(() => {
  // whatever a failed test left mounted under tmp, deepest first, before anything is removed
  for (let i = 0; i < 20; i++) {
    const left = mountPoints().filter((m) => m.startsWith(`${tmp}/`)).sort((a, b) => b.length - a.length);
    if (left.length === 0) break;
    for (const m of left) spawnSync("umount", ["-l", m]);
  }
  if (mountPoints().some((m) => m.startsWith(`${tmp}/`))) return; // never rm through a mount
  fs.rmSync(tmp, { recursive: true, force: true });
});

let seq = 0;
function dir(name: string, files: Record<string, string> = {}): string {
  const d = path.join(tmp, `${name}${seq++}`);
  fs.mkdirSync(d, { recursive: true });
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(d, f), text);
  return d;
}
const m = (type: string, source: string, options: string[]) => create(MountSchema, { type, source, options });

test("option words as containerd reads them: its flags, the rest as data; loop, idmaps and X-containerd.* refused", () => {
  assert.deepEqual(rootfsMountOptions(["rbind", "ro"]), { flags: 4096 | 16384 | 1, data: "" });
  assert.deepEqual(rootfsMountOptions(["ro", "rw", "nosuid", "nodev", "suid"]), { flags: 4, data: "" });
  // containerd's table has no propagation, recursive-attribute or runc-only words, and "defaults" is data
  assert.deepEqual(rootfsMountOptions(["index=off", "rprivate", "rro", "nosymfollow", "defaults", "lowerdir=/a:/b"]), { flags: 0, data: "index=off,rprivate,rro,nosymfollow,defaults,lowerdir=/a:/b" });
  assert.throws(() => rootfsMountOptions(["loop"]), /mount option "loop" is not supported/);
  assert.throws(() => rootfsMountOptions(["uidmap=0:1000:1", "gidmap=0:1000:1"]), /uidmap=0:1000:1" is not supported/);
  assert.throws(() => rootfsMountOptions(["X-containerd.mkdir.path=/x"]), /internal mount option "X-containerd.mkdir.path=\/x" was not consumed/);
  assert.throws(() => rootfsMountOptions([`lowerdir=${"/l".repeat(2100)}`]), /mount options is too long/);
});

test("a bind rootfs, read-write and read-only; unmounted again", async () => {
  for (const mode of ["rw", "ro"]) {
    const src = dir("src", { hello: "bind" });
    const bundle = dir("bundle");
    const rootfs = path.join(bundle, "rootfs");
    assert.equal(await mountRootfs(bundle, [m("bind", src, ["rbind", mode])]), true);
    try {
      assert.equal(fs.readFileSync(path.join(rootfs, "hello"), "utf8"), "bind");
      assert.equal(mountsAt(rootfs), 1);
      assert.ok(mountOptions(rootfs).includes(mode), `${mode}: ${mountOptions(rootfs).join(",")}`);
      if (mode === "ro") {
        assert.throws(() => fs.writeFileSync(path.join(rootfs, "new"), "x"), /EROFS/);
        fs.writeFileSync(path.join(src, "new"), "x"); // the source itself stays writable
      } else fs.writeFileSync(path.join(rootfs, "new"), "x");
      assert.ok(fs.existsSync(path.join(src, "new")));
    } finally {
      await unmountRootfs(bundle);
    }
    assert.equal(mountsAt(rootfs), 0, `${mode}: unmounted`);
    assert.equal(fs.existsSync(path.join(rootfs, "hello")), false);
    assert.equal(fs.statSync(rootfs).mode & 0o777, 0o711, "made as containerd makes it");
  }
});

test("an overlay rootfs: lowerdirs, upperdir and workdir", async () => {
  const l1 = dir("lower", { a: "l1", both: "l1" });
  const l2 = dir("lower", { b: "l2", both: "l2" });
  const upper = dir("upper");
  const work = dir("work");
  const bundle = dir("bundle");
  const rootfs = path.join(bundle, "rootfs");
  fs.mkdirSync(rootfs); // an existing rootfs directory is used as it is
  await mountRootfs(bundle, [m("overlay", "overlay", ["index=off", `workdir=${work}`, `upperdir=${upper}`, `lowerdir=${l2}:${l1}`])]);
  try {
    assert.equal(fs.readFileSync(path.join(rootfs, "a"), "utf8"), "l1");
    assert.equal(fs.readFileSync(path.join(rootfs, "b"), "utf8"), "l2");
    assert.equal(fs.readFileSync(path.join(rootfs, "both"), "utf8"), "l2", "the first lowerdir is on top");
    fs.writeFileSync(path.join(rootfs, "c"), "new");
    assert.equal(fs.readFileSync(path.join(upper, "c"), "utf8"), "new", "writes go to the upperdir");
    assert.ok(mountOptions(rootfs).includes("rw"));
  } finally {
    await unmountRootfs(bundle);
  }
  assert.equal(mountsAt(rootfs), 0);
  assert.deepEqual(fs.readdirSync(l1).sort(), ["a", "both"], "the lowerdir untouched");
});

test("a long lowerdir list is shortened as containerd's compactLowerdirOption shortens it", () => {
  assert.equal(compactLowerdirs(["workdir=a"]), undefined);
  assert.equal(compactLowerdirs(["workdir=a", "lowerdir=b"]), undefined);
  assert.deepEqual(compactLowerdirs(["lowerdir=/snapshots/1/fs:/snapshots/10/fs", "workdir=w"]), { dir: "/snapshots", options: ["workdir=w", "lowerdir=1/fs:10/fs"] });
  assert.deepEqual(compactLowerdirs(["lowerdir=/snapshots/1/fs:/snapshots/10/fs:/snapshots/2/fs"]), { dir: "/snapshots", options: ["lowerdir=1/fs:10/fs:2/fs"] });
  assert.deepEqual(compactLowerdirs(["lowerdir=/s/snapshots/1/fs:/s/snapshots/2/fs"]), { dir: "/s/snapshots", options: ["lowerdir=1/fs:2/fs"] });
  assert.equal(compactLowerdirs(["lowerdir=/snapshots/1/fs:/other_snapshots/1/fs"]), undefined, "common dir /");
  assert.equal(compactLowerdirs(["lowerdir=a:aaa"]), undefined, "common dir .");
});

test("an overlay of 40 layers whose lowerdir list is longer than a page", async () => {
  const snapshots = dir(`snapshots-${"x".repeat(100)}`);
  const layers: string[] = [];
  for (let i = 1; i <= 40; i++) {
    const fsDir = path.join(snapshots, String(i), "fs");
    fs.mkdirSync(fsDir, { recursive: true });
    fs.writeFileSync(path.join(fsDir, `layer${i}`), String(i));
    layers.unshift(fsDir); // the top layer first, as containerd lists them
  }
  const [up, wk] = [dir("upper"), dir("work")];
  const options = ["index=off", `workdir=${wk}`, `upperdir=${up}`, `lowerdir=${layers.join(":")}`];
  assert.ok(options.join(",").length > 4096, "too long for one mount(2) as it is");
  const bundle = dir("bundle");
  const rootfs = path.join(bundle, "rootfs");
  await mountRootfs(bundle, [m("overlay", "overlay", options)]);
  try {
    assert.equal(fs.readFileSync(path.join(rootfs, "layer1"), "utf8"), "1");
    assert.equal(fs.readFileSync(path.join(rootfs, "layer40"), "utf8"), "40");
    assert.equal(fs.readdirSync(rootfs).length, 40);
  } finally {
    await unmountRootfs(bundle);
  }
  assert.equal(mountsAt(rootfs), 0);
});

test("a bad option is refused with the component and the reason, and nothing stays mounted", async () => {
  const src = dir("src");
  const bundle = dir("bundle");
  const rootfs = path.join(bundle, "rootfs");
  await assert.rejects(mountRootfs(bundle, [m("bind", src, ["rbind", "loop"])]), /failed to mount rootfs component \{bind .* \[rbind loop\]\}: mount option "loop" is not supported/);
  // a word overlay does not know: the kernel's EINVAL, naming the step and the target
  const [lo, up, wk] = [dir("lower"), dir("upper"), dir("work")];
  await assert.rejects(mountRootfs(bundle, [m("overlay", "overlay", ["rro", `workdir=${wk}`, `upperdir=${up}`, `lowerdir=${lo}`])]), (e: Error) => {
    assert.match(e.message, new RegExp(`mount overlay on ${rootfs}: Invalid argument`));
    return true;
  });
  assert.equal(mountsAt(rootfs), 0);
});

test("a failed second mount unwinds the first", async () => {
  const src = dir("src", { hello: "first" });
  const bundle = dir("bundle");
  const rootfs = path.join(bundle, "rootfs");
  const [up, wk] = [dir("upper"), dir("work")];
  await assert.rejects(
    mountRootfs(bundle, [m("bind", src, ["rbind", "ro"]), m("overlay", "overlay", [`workdir=${wk}`, `upperdir=${up}`, `lowerdir=${path.join(tmp, "missing")}`])]),
    /failed to mount rootfs component \{overlay overlay .*\}: mount overlay on .*: No such file or directory/,
  );
  assert.equal(mountsAt(rootfs), 0, "the bind is gone too");
  assert.equal(fs.existsSync(path.join(rootfs, "hello")), false);
});

test("a stack of mounts on rootfs is unmounted whole; a busy one is detached", async () => {
  const a = dir("src", { which: "a" });
  const b = dir("src", { which: "b" });
  const bundle = dir("bundle");
  const rootfs = path.join(bundle, "rootfs");
  await mountRootfs(bundle, [m("bind", a, ["rbind", "rw"]), m("bind", b, ["rbind", "ro"])]);
  assert.equal(mountsAt(rootfs), 2);
  assert.equal(fs.readFileSync(path.join(rootfs, "which"), "utf8"), "b", "the last is on top");
  assert.ok(mountOptions(rootfs).includes("ro"), "the ro remount reached the top of the stack");
  // a file open on the top mount makes it busy: umount2 says EBUSY, and MNT_DETACH takes it off
  const fd = fs.openSync(path.join(rootfs, "which"), "r");
  try {
    await unmountRootfs(bundle);
    assert.equal(mountsAt(rootfs), 0, "both unmounted");
    assert.equal(fs.readFileSync(fd, "utf8"), "b", "the open file still reads");
  } finally {
    fs.closeSync(fd);
  }
  await unmountRootfs(bundle); // nothing left: a no-op
  await unmountRootfs(path.join(tmp, "no-such-bundle"));
});

test("a symlink (or a file) planted at rootfs is refused: the host directory is not mounted over, nor unmounted through it", async () => {
  const host = dir("host", { secret: "host" });
  const src = dir("src", { hello: "image" });
  const bundle = dir("bundle");
  const rootfs = path.join(bundle, "rootfs");
  fs.symlinkSync(host, rootfs);
  await assert.rejects(mountRootfs(bundle, [m("bind", src, ["rbind", "rw"])]), (e: Error) => {
    assert.equal(e.message, `mount rootfs: ${rootfs} is a symlink`);
    return true;
  });
  assert.equal(mountsAt(host), 0, "nothing mounted on the symlink's target");
  assert.deepEqual(fs.readdirSync(host), ["secret"]);
  // a mount on the symlink's target is not undone through the symlink
  native().mount(src, host, "", 4096, "");
  try {
    await unmountRootfs(bundle);
    assert.equal(mountsAt(host), 1, "still mounted");
  } finally {
    native().umount2(host, 0);
  }
  const b2 = dir("bundle");
  fs.writeFileSync(path.join(b2, "rootfs"), "");
  await assert.rejects(mountRootfs(b2, [m("bind", src, ["rbind"])]), /: mount rootfs: .* is not a directory$/);
});

test("delete of a gone shim unmounts the stacked rootfs (same filesystem: found in mountinfo, a space in the path)", () => {
  const src = dir("src", { hello: "x" });
  const bundle = dir("bundle with space");
  const rootfs = path.join(bundle, "rootfs");
  fs.mkdirSync(rootfs);
  // binds of a directory on the rootfs's own filesystem: the device does not change
  native().mount(src, rootfs, "", 4096, "");
  native().mount(src, rootfs, "", 4096, "");
  assert.equal(mountsAt(rootfs), 2);
  const r = spawnSync(process.execPath, [MAIN, "-namespace", "cshim-mount-test", "-address", `/run/cshim-mount-test-${process.pid}/c.sock`, "-id", "gone", "delete"], {
    cwd: bundle,
    env: { ...process.env, TSRUN_SHIM_ROOT: path.join(tmp, "root") },
  });
  assert.equal(r.status, 0, r.stderr.toString());
  assert.equal(mountsAt(rootfs), 0, "both unmounted");
  // a symlink at rootfs is no mount point: left alone
  const host = dir("host");
  const b2 = dir("bundle");
  fs.symlinkSync(host, path.join(b2, "rootfs"));
  native().mount(src, host, "", 4096, "");
  try {
    const r2 = spawnSync(process.execPath, [MAIN, "-namespace", "cshim-mount-test", "-address", `/run/cshim-mount-test-${process.pid}/c.sock`, "-id", "gone2", "delete"], {
      cwd: b2,
      env: { ...process.env, TSRUN_SHIM_ROOT: path.join(tmp, "root") },
    });
    assert.equal(r2.status, 0, r2.stderr.toString());
    assert.equal(mountsAt(host), 1, "the symlink's target still mounted");
  } finally {
    native().umount2(host, 0);
  }
});
