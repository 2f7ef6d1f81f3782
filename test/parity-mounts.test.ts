// runc parity for mounts and the rootfs (issue 12): what a script or an engine can tell from inside the
// container, pinned to runc HEAD's behaviour (libcontainer/rootfs_linux.go).
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { cleanup, makeBundle, ok, tsrun, work } from "./helpers";

after(cleanup);

interface MountEntry {
  id: number;
  parent: number;
  root: string;
  mountPoint: string;
  fsType: string;
  options: string[];
  optional: string[];
  superOptions: string[];
  source: string;
}

function sh(cmd: string, ...args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
}

function lines(stdout: string): unknown[] {
  return stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as unknown);
}

// The optional fields (shared:N, master:N) of the host's mount at `mp`.
function hostOptional(mp: string): string[] {
  for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const f = line.split(" ");
    if (f[4] === mp) return f.slice(6, f.indexOf("-"));
  }
  return [];
}

function rootMount(mounts: MountEntry[]): MountEntry {
  return mounts.filter((m) => m.mountPoint === "/").at(-1)!;
}

describe("linux.rootfsPropagation (runc 1.4: applied to the container's / after pivot_root)", () => {
  // The rootfs is a shared mount on the host, as on a host with systemd, so "slave" has a master to show.
  for (const [value, want] of [
    ["private", []],
    ["slave", ["master:"]],
    ["shared", ["shared:"]],
    ["unbindable", ["unbindable"]],
  ] as const) {
    test(`${value}: findmnt -o PROPAGATION / says ${want.join(",") || "private"}`, () => {
      const b = makeBundle(["mountinfo"], (s) => {
        s.linux!.rootfsPropagation = value;
      });
      sh("mount", "--bind", b.rootfs, b.rootfs);
      sh("mount", "--make-shared", b.rootfs);
      const r = ok(tsrun(["run", "--bundle", b.dir, b.id]));
      const root = rootMount(lines(r.stdout)[0] as MountEntry[]);
      const tags = root.optional.map((o) => o.replace(/\d+$/, ""));
      assert.deepEqual(tags, [...want], JSON.stringify(root));
      // a shared root is a peer group of its own: nothing mounted in the container reaches the host
      const host = hostOptional(b.rootfs);
      if (value === "shared") assert.ok(!host.includes(root.optional[0]!), `${root.optional[0]} is the host's ${host.join(" ")}`);
      if (value === "slave") assert.equal(root.optional[0]!.replace("master:", "shared:"), host[0], "a slave of the host's rootfs mount");
    });
  }
});

describe("a read-only /dev (runc remounts it read-only last)", () => {
  test("a tmpfs on /dev with ro: devpts, shm, mqueue and the nodes are there, then /dev is read-only", () => {
    const b = makeBundle(["multi", "mountinfo", "--", "write", "/dev/new", "x", "--", "write", "/dev/null", "x"], (s) => {
      const dev = s.mounts!.find((m) => m.destination === "/dev")!;
      dev.options = [...(dev.options ?? []), "ro"];
    });
    const out = lines(ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout);
    const mounts = out[0] as MountEntry[];
    const dev = mounts.find((m) => m.mountPoint === "/dev")!;
    assert.ok(dev.options.includes("ro"), JSON.stringify(dev));
    for (const mp of ["/dev/pts", "/dev/shm", "/dev/mqueue"]) assert.ok(mounts.some((m) => m.mountPoint === mp), mp);
    assert.equal((out[1] as { errno: number }).errno, 30, "EROFS in the read-only /dev");
    assert.equal((out[2] as { ok: boolean }).ok, true, "/dev/null was made and is writable");
  });
});

describe("recursive mount attributes (mount_setattr AT_RECURSIVE, as runc)", () => {
  test("rro on an rbind: the submount is read-only too; rnosuid/rnodev/rnoexec reach it", () => {
    const src = fs.mkdtempSync(path.join(work(), "rro-"));
    fs.mkdirSync(path.join(src, "sub"));
    sh("mount", "-t", "tmpfs", "-o", "size=1m", "rro-sub", path.join(src, "sub"));
    const b = makeBundle(["multi", "mountinfo", "--", "write", "/data/x", "x", "--", "write", "/data/sub/x", "x"], (s) => {
      s.mounts!.push({ destination: "/data", type: "bind", source: src, options: ["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime"] });
    });
    const out = lines(ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout);
    const mounts = out[0] as MountEntry[];
    for (const mp of ["/data", "/data/sub"]) {
      const m = mounts.find((e) => e.mountPoint === mp)!;
      for (const o of ["ro", "nosuid", "nodev", "noexec", "noatime"]) assert.ok(m.options.includes(o), `${mp}: ${o} in ${m.options.join(",")}`);
    }
    assert.equal((out[1] as { errno: number }).errno, 30, "EROFS in /data");
    assert.equal((out[2] as { errno: number }).errno, 30, "EROFS in the submount /data/sub");
    assert.ok(!fs.existsSync(path.join(src, "sub", "x")));
  });

  test("rrw clears what ro set, on the whole tree", () => {
    const src = fs.mkdtempSync(path.join(work(), "rrw-"));
    const b = makeBundle(["write", "/data/x", "x"], (s) => {
      s.mounts!.push({ destination: "/data", type: "bind", source: src, options: ["rbind", "ro", "rrw"] });
    });
    assert.equal((lines(ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout)[0] as { ok: boolean }).ok, true);
  });

  test("features lists them in mountOptions", () => {
    const f = JSON.parse(ok(tsrun(["features"])).stdout) as { mountOptions: string[] };
    for (const o of ["rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec", "rnoatime", "ratime", "rrelatime", "rnorelatime", "rnodiratime", "rdiratime", "rstrictatime", "rnostrictatime", "rnosymfollow", "rsymfollow"])
      assert.ok(f.mountOptions.includes(o), o);
  });
});

describe("idmapped mounts (mount uidMappings/gidMappings, idmap/ridmap, as runc)", () => {
  // runc's idmap.bats: a mapping containerID:hostID:size maps the ids on disk (containerID side) to the ids
  // seen through the mount (hostID side).
  function idmapSource(): string {
    const src = fs.mkdtempSync(path.join(work(), "idmap-"));
    fs.chmodSync(src, 0o777);
    fs.writeFileSync(path.join(src, "foo.txt"), "x");
    fs.writeFileSync(path.join(src, "one.txt"), "x");
    fs.chownSync(path.join(src, "one.txt"), 1, 1);
    return src;
  }
  const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

  test("simple idmap mount [no userns]: root's file shows as 100000, uid 1's as 100001", () => {
    const src = idmapSource();
    const b = makeBundle(["ls", "/data/foo.txt", "/data/one.txt"], (s) => {
      s.mounts!.push({ destination: "/data", type: "bind", source: src, options: ["bind"], uidMappings: MAP, gidMappings: MAP });
    });
    const [foo, one] = lines(ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout)[0] as { uid: number; gid: number }[];
    assert.deepEqual([foo!.uid, foo!.gid, one!.uid, one!.gid], [100000, 100000, 100001, 100001], JSON.stringify([foo, one]));
  });

  test("simple idmap mount [userns]: root's file shows as 0 to the container's root, and what it writes is root's", () => {
    const src = idmapSource();
    const b = makeBundle(["multi", "ls", "/data/foo.txt", "--", "write", "/data/bar", "x"], (s) => {
      s.linux!.namespaces!.push({ type: "user" });
      s.linux!.uidMappings = MAP;
      s.linux!.gidMappings = MAP;
      s.mounts!.push({ destination: "/data", type: "bind", source: src, options: ["bind", "idmap"] }); // the container's maps
    });
    fs.mkdirSync(path.join(b.rootfs, "data")); // the container's root (host uid 100000) cannot make it in a rootfs owned by host root
    const out = lines(ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout);
    const [foo] = out[0] as { uid: number; gid: number }[];
    assert.deepEqual([foo!.uid, foo!.gid], [0, 0], JSON.stringify(foo));
    assert.equal((out[1] as { ok: boolean }).ok, true, JSON.stringify(out[1]));
    const st = fs.statSync(path.join(src, "bar"));
    assert.deepEqual([st.uid, st.gid], [0, 0], "written as host root through the mapping");
  });

  test("runc's rules: bind only, both maps", () => {
    const b = makeBundle(["facts"], (s) => {
      s.mounts!.push({ destination: "/data", type: "tmpfs", source: "tmpfs", uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }], gidMappings: [{ containerID: 0, hostID: 1000, size: 1 }] });
    });
    const r = tsrun(["create", "--bundle", b.dir, b.id]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /id-mapped mounts are only supported for bind-mounts/);
    const c = makeBundle(["facts"], (s) => {
      s.mounts!.push({ destination: "/data", type: "bind", source: "/tmp", options: ["rbind", "idmap"] }); // no maps of its own, no user namespace
    });
    const r2 = tsrun(["create", "--bundle", c.dir, c.id]);
    assert.match(r2.stderr, /id-mapped mounts must have both uid and gid mappings specified/);
  });

  test("features: idmap and ridmap in mountOptions, mountExtensions.idmap enabled", () => {
    const f = JSON.parse(ok(tsrun(["features"])).stdout) as { mountOptions: string[]; linux: { mountExtensions: { idmap: { enabled: boolean } } } };
    assert.ok(f.mountOptions.includes("idmap") && f.mountOptions.includes("ridmap"));
    assert.equal(f.linux.mountExtensions.idmap.enabled, true);
  });
});

describe("bind sources opened on the host (runc's mount source fds)", () => {
  test("a user-namespaced container binds a file under a 0700 root directory", () => {
    const closed = fs.mkdtempSync(path.join(work(), "closed-"));
    fs.chmodSync(closed, 0o700);
    fs.writeFileSync(path.join(closed, "conf"), "from a closed directory");
    fs.chmodSync(path.join(closed, "conf"), 0o644);
    const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
    const b = makeBundle(["read", "/etc/conf"], (s) => {
      s.linux!.namespaces!.push({ type: "user" });
      s.linux!.uidMappings = map;
      s.linux!.gidMappings = map;
      s.mounts!.push({ destination: "/etc/conf", type: "bind", source: path.join(closed, "conf"), options: ["bind", "ro"] });
    });
    fs.writeFileSync(path.join(b.rootfs, "etc", "conf"), ""); // the mount point (the rootfs is host root's)
    const out = lines(ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout);
    assert.equal((out[0] as { content: string }).content, "from a closed directory", JSON.stringify(out[0]));
  });
});

describe("--no-pivot hides the host's procfs and sysfs (runc's msMoveRoot)", () => {
  // listmount/statmount see every mount of a namespace, also those out of its root's reach (mountinfo,
  // from inside or through /proc/PID, shows only what is under the process's root).
  const LSM = "// Counts the mounts of a process's mount namespace whose superblock is dev MAJ:MIN, from the namespace's\n// own root mount down (listmount/statmount see mounts out of the process root's reach; mountinfo does not).\n#define _GNU_SOURCE\n#include <fcntl.h>\n#include <sched.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <sys/syscall.h>\n#include <unistd.h>\nstruct req { uint32_t size, spare; uint64_t mnt_id, param; };\nstatic uint64_t buf[512];\nstatic int stat_mount(uint64_t id, uint64_t what) {\n  struct req q = {24, 0, id, what};\n  return (int)syscall(457, &q, buf, sizeof(buf), 0);\n}\nint main(int argc, char** argv) {\n  if (argc < 4) return 2;\n  char ns[64];\n  snprintf(ns, sizeof(ns), \"/proc/%s/ns/mnt\", argv[1]);\n  int fd = open(ns, O_RDONLY);\n  if (fd < 0 || setns(fd, CLONE_NEWNS) != 0) { perror(\"setns\"); return 2; }\n  /* the mount at \"/\" (after setns: the top one), then up its parents to the namespace's root mount */\n  uint64_t id = 0;\n  {\n    struct req r = {24, 0, ~0ULL, 0};\n    uint64_t first[1];\n    if (syscall(458, &r, first, 1, 0) < 1) { perror(\"listmount\"); return 2; }\n    if (stat_mount(first[0], 2 /* STATMOUNT_MNT_BASIC */) != 0) { perror(\"statmount\"); return 2; }\n    id = buf[6]; /* the parent of a mount under \"/\" */\n  }\n  for (;;) {\n    if (stat_mount(id, 2) != 0) { perror(\"statmount\"); return 2; }\n    uint64_t parent = buf[6];\n    if (parent == id || stat_mount(parent, 2) != 0) break;\n    id = parent;\n  }\n  static uint64_t all[8192];\n  int n = 1, count = 0;\n  all[0] = id;\n  unsigned maj = strtoul(argv[2], 0, 10), min = strtoul(argv[3], 0, 10);\n  for (int i = 0; i < n; i++) {\n    struct req r = {24, 0, all[i], 0};\n    static uint64_t kids[4096];\n    long k = syscall(458, &r, kids, 4096, 0);\n    if (k < 0) { perror(\"listmount\"); return 2; }\n    for (long j = 0; j < k; j++) {\n      int seen = 0;\n      for (int x = 0; x < n; x++) seen |= all[x] == kids[j];\n      if (!seen && n < 8192) all[n++] = kids[j];\n    }\n    if (stat_mount(all[i], 1 /* STATMOUNT_SB_BASIC */) != 0) { perror(\"statmount\"); return 2; }\n    uint32_t* w = (uint32_t*)buf;\n    if (w[4] == maj && w[5] == min) count++;\n  }\n  printf(\"%d\\n\", count);\n  return 0;\n}\n";

  function hostDev(type: string, mp: string): [string, string] {
    for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
      const f = line.split(" ");
      if (f[4] === mp && f[f.indexOf("-") + 1] === type) return f[2]!.split(":") as [string, string];
    }
    throw new Error(`no ${type} at ${mp} on the host`);
  }

  test("no mount of the host's /proc or /sys is left in the container's mount namespace", () => {
    const bin = path.join(work(), "lsm");
    fs.writeFileSync(`${bin}.c`, LSM);
    sh("cc", "-O2", "-o", bin, `${bin}.c`);
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["create", "--no-pivot", "--bundle", b.dir, b.id]));
    const pid = (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { pid: number }).pid;
    for (const [type, mp] of [["proc", "/proc"], ["sysfs", "/sys"]] as const) {
      const [maj, min] = hostDev(type, mp);
      const r = spawnSync(bin, [String(pid), maj, min], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), "0", `mounts of the host's ${type} (${maj}:${min}) in the container's namespace`);
    }
    ok(tsrun(["delete", "--force", b.id]));
  });
});
