// AppArmor and SELinux (src/plan/build.ts lsm*Ops, native/helper/lsm.cc) on a host that has neither:
// - the plan: where the profile, the exec label and the keyring label are written (after the user, the
//   capabilities and no_new_privs, before the filter and the wait for start), and linux.mountLabel as
//   runc's label.FormatMountLabel adds it (which mounts, the quoting);
// - the helper's real writes, with TSRUN_TEST_LSM_ATTR_DIR standing in for the attr directory: a container
//   (and an exec) runs and the files hold what the kernel would have been given;
// - the attack: an image whose /proc is a fake directory or a symlink never receives the write (it goes to
//   the helper's own procfs, where this kernel, without AppArmor, refuses it, as runc's write is refused).
// The same with a real AppArmor is test/hosts/apparmor.test.ts (the systemd guest).
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { type BuildOptions, buildExecPlan, buildPlan, formatMountLabel } from "../src/plan/build";
import type { HostFacts, LsmFacts } from "../src/plan/host";
import { defaultSpec } from "../src/spec/default";
import type { Spec } from "../src/spec/schema";
import { cleanup, makeBundle, ok, tsrun, uniqueId, waitFor, work } from "./helpers";

const AA: LsmFacts = { apparmor: true, apparmorAttr: "apparmor/exec", selinux: false };
const SE: LsmFacts = { apparmor: false, apparmorAttr: "exec", selinux: true };
const LABEL = "system_u:system_r:container_t:s0:c1,c2";
const FILE_LABEL = "system_u:object_r:container_file_t:s0:c1,c2";

function host(lsm?: LsmFacts): HostFacts {
  return { uid: 0, home: "/root", hasKcore: true, sharedNamespaces: [], bindSources: {}, ...(lsm ? { lsm } : {}) };
}

function createPlan(patch: (s: Spec) => void, lsm?: LsmFacts, more: Partial<BuildOptions> = {}): string[] {
  const spec = defaultSpec({ cgroupNamespace: false });
  spec.process!.terminal = false;
  patch(spec);
  return buildPlan({
    id: "c1",
    spec,
    bundle: "/b",
    rootfs: "/b/rootfs",
    noPivot: false,
    noNewKeyring: false,
    extraFds: 0,
    syncFd: 3,
    stateDirFd: 4,
    cgroupProcs: [],
    cgroupDirs: { memory: "/sys/fs/cgroup/memory/c1", "": "/sys/fs/cgroup/unified/c1" },
    cgroupMode: "hybrid",
    host: host(lsm),
    warn: () => undefined,
    ...more,
  }).describe();
}

function at(ops: string[], prefix: string): number {
  const i = ops.findIndex((l) => l.startsWith(prefix));
  assert.ok(i >= 0, `${prefix} in the plan:\n${ops.join("\n")}`);
  return i;
}

describe("LSM plan", () => {
  test("the AppArmor profile and SELinux label are written after the user, the capabilities and no_new_privs, before the wait for start and the filter", () => {
    const ops = createPlan((s) => {
      s.process!.apparmorProfile = "docker-default";
      s.process!.selinuxLabel = LABEL;
      s.process!.noNewPrivileges = true;
      s.process!.user = { uid: 1000, gid: 1000 };
    }, { ...AA, selinux: true }, { seccomp: { program: Buffer.alloc(8), flags: 0 } });
    const aa = at(ops, 'LSM_ATTR("apparmor/exec", "exec docker-default", "unable to apply apparmor profile docker-default")');
    const se = at(ops, `LSM_ATTR("exec", ${JSON.stringify(LABEL)}`);
    for (const before of ["SET_USER(", "CAPS(", "NO_NEW_PRIVS(", "LOOKUP_EXEC(", "OPEN_PROC("]) assert.ok(at(ops, before) < aa, `${before} before the profile`);
    assert.ok(aa < at(ops, "READY(") && se < at(ops, "READY("), "before the wait for start (the helper's procfs is closed then)");
    assert.ok(at(ops, "READY(") < at(ops, "SECCOMP("));
    // the keyring made under the label, the label reset after it (runc's SetKeyLabel)
    const key = at(ops, "KEYRING(");
    assert.equal(ops[key - 1], `LSM_ATTR("keycreate", ${JSON.stringify(LABEL)}, "set keyring label")`);
    assert.equal(ops[key + 1], 'LSM_ATTR("keycreate", "", "reset keyring label")');
  });

  test("attr/exec where the kernel has no attr/apparmor (runc's fallback); none of it without a profile or label", () => {
    const ops = createPlan((s) => (s.process!.apparmorProfile = "unconfined"), { ...AA, apparmorAttr: "exec" });
    at(ops, 'LSM_ATTR("exec", "exec unconfined"');
    const none = createPlan((s) => (s.process!.apparmorProfile = ""), { ...AA, selinux: true });
    assert.ok(!none.some((l) => l.startsWith("LSM_") || l.startsWith("FILE_LABEL") || l.startsWith("MASK_TMPFS")), none.join("\n"));
  });

  test("linux.mountLabel: context=\"...\" on new filesystems but proc, sysfs and mqueue; none on binds; mqueue's root and masked directories labelled", () => {
    const ops = createPlan((s) => {
      s.linux!.mountLabel = FILE_LABEL;
      s.mounts!.push({ destination: "/data", type: "bind", source: "/srv", options: ["rbind", "ro"] });
      s.mounts!.push({ destination: "/run", type: "tmpfs", source: "tmpfs" });
      s.mounts!.push({ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup" });
    }, SE);
    const q = JSON.stringify(FILE_LABEL);
    const ctx = `context=${q}`;
    const mount = (dest: string) => ops.find((l) => l.startsWith("MOUNT(") && l.split(", ")[1] === JSON.stringify(dest))!;
    const data = (d: string) => JSON.stringify(d); // as describe() shows the data argument
    assert.ok(mount("/dev").includes(data(`mode=755,size=65536k,${ctx}`)), mount("/dev"));
    const inner = data(`,${ctx}`).slice(1, -1); // the option at the end of the others
    assert.ok(mount("/dev/pts").includes(`${inner}"`), mount("/dev/pts"));
    assert.ok(mount("/dev/shm").includes(`${inner}"`), mount("/dev/shm"));
    assert.ok(mount("/run").includes(data(ctx)), mount("/run"));
    assert.ok(mount("/sys/fs/cgroup").includes(data(`mode=755,${ctx}`)), "the v1 cgroup tmpfs (runc mounts it as a tmpfs mount)");
    for (const d of ["/proc", "/sys", "/dev/mqueue", "/data"]) assert.ok(!mount(d).includes("context="), `${d}: ${mount(d)}`);
    assert.equal(ops[at(ops, 'MOUNT("mqueue"') + 1], `FILE_LABEL("/dev/mqueue", ${q})`);
    assert.ok(at(ops, "MASK_TMPFS_DATA(") < at(ops, "MASK_PATH("));
    assert.equal(ops[at(ops, "MASK_TMPFS_DATA(")], `MASK_TMPFS_DATA(${JSON.stringify(`context=${q}`)})`);
    // SELinux disabled: runc's label.SetFileLabel does nothing, FormatMountLabel still adds the option
    const off = createPlan((s) => (s.linux!.mountLabel = FILE_LABEL));
    assert.ok(!off.some((l) => l.startsWith("FILE_LABEL(")));
    assert.ok(off.some((l) => l.startsWith('MOUNT("tmpfs", "/dev"') && l.includes("context=")));
  });

  test("formatMountLabel quotes as Go's %q", () => {
    assert.equal(formatMountLabel("", FILE_LABEL), `context="${FILE_LABEL}"`);
    assert.equal(formatMountLabel("mode=755", FILE_LABEL), `mode=755,context="${FILE_LABEL}"`);
    assert.equal(formatMountLabel("mode=755", undefined), "mode=755");
    assert.equal(formatMountLabel("mode=755", ""), "mode=755");
  });

  test("exec --apparmor/--process-label: the helper's procfs opened on the host, the attributes written after the identity, before the filter and execve", () => {
    const spec = defaultSpec({});
    const proc = { ...spec.process!, terminal: false, apparmorProfile: "p2", selinuxLabel: LABEL, user: { uid: 5, gid: 5 } };
    const ops = buildExecPlan({ spec, proc, host: { uid: 0, home: "/", lsm: { ...AA, selinux: true } }, extraFds: 0, syncFd: 3, pidFd: 4, rootFd: 5, nsFlags: 0, cgroupProcs: [], seccomp: { program: Buffer.alloc(8), flags: 0 }, warn: () => undefined }).describe();
    assert.ok(at(ops, "OPEN_PROC(") < at(ops, "CLONE_INIT("));
    const aa = at(ops, 'LSM_ATTR("apparmor/exec", "exec p2"');
    const se = at(ops, `LSM_ATTR("exec", ${JSON.stringify(LABEL)}`);
    assert.ok(at(ops, "CAPS(") < aa && aa < se && se < at(ops, "SECCOMP(") && at(ops, "SECCOMP(") < at(ops, "EXEC("));
  });
});

describe("LSM attributes written by the helper", { concurrency: false }, () => {
  after(cleanup);

  // A directory standing in for the process's attr directory (TSRUN_TEST_LSM_ATTR_DIR), writable by the
  // container's user as the real attr files are (0666).
  function fakeAttrDir(): string {
    const dir = path.join(work(), uniqueId("attr"));
    fs.mkdirSync(path.join(dir, "apparmor"), { recursive: true, mode: 0o755 });
    for (const f of ["apparmor/exec", "exec", "keycreate"]) {
      fs.writeFileSync(path.join(dir, f), "");
      fs.chmodSync(path.join(dir, f), 0o666);
    }
    return dir;
  }
  function withAttrDir<T>(dir: string, f: () => T): T {
    process.env.TSRUN_TEST_LSM_ATTR_DIR = dir;
    try {
      return f();
    } finally {
      delete process.env.TSRUN_TEST_LSM_ATTR_DIR;
    }
  }
  const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), "utf8");

  test("create: the profile, the exec label and the keyring label reach the attributes, and the container runs (as a non-root user)", () => {
    const dir = fakeAttrDir();
    const b = makeBundle(["facts"], (s) => {
      s.process!.apparmorProfile = "tsrun-test";
      s.process!.selinuxLabel = LABEL;
      s.process!.user = { uid: 1000, gid: 1000 };
    });
    const r = withAttrDir(dir, () => tsrun(["run", "--bundle", b.dir, b.id]));
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout.split("\n")[0]!) as { uid: number }).uid, 1000);
    assert.equal(read(dir, "apparmor/exec"), "exec tsrun-test");
    assert.equal(read(dir, "exec"), LABEL);
    assert.equal(read(dir, "keycreate"), LABEL); // then "" (reset): an empty write appends nothing
  });

  test("exec --apparmor and --process-label", () => {
    const dir = fakeAttrDir();
    const b = makeBundle(["sleep", "30"]);
    withAttrDir(dir, () => {
      ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
      const r = tsrun(["exec", "--apparmor", "other", "--process-label", "u:r:t:s0", b.id, "/probe", "facts"]);
      assert.equal(r.status, 0, r.stderr);
    });
    assert.equal(read(dir, "apparmor/exec"), "exec other");
    assert.equal(read(dir, "exec"), "u:r:t:s0");
    ok(tsrun(["delete", "--force", b.id]));
  });

  test("features: AppArmor and SELinux as the host has them", () => {
    const f = JSON.parse(ok(tsrun(["features"])).stdout) as { linux: { apparmor: { enabled: boolean }; selinux: { enabled: boolean } } };
    assert.equal(f.linux.apparmor.enabled, fs.existsSync("/sys/kernel/security/apparmor") && fs.readFileSync("/sys/module/apparmor/parameters/enabled", "utf8").startsWith("Y"));
    assert.equal(f.linux.selinux.enabled, false);
    const faked = JSON.parse(withAttrDir(fakeAttrDir(), () => ok(tsrun(["features"]))).stdout) as typeof f;
    assert.deepEqual([faked.linux.apparmor.enabled, faked.linux.selinux.enabled], [true, true]);
  });

  // The image decides what its /proc is when config.json mounts no procfs there: a directory of fake attr
  // files, or a symlink to one. The helper writes through its own procfs, so neither is touched; this
  // kernel has no AppArmor and refuses the write (runc: "apparmor failed to apply profile: ... invalid argument").
  for (const kind of ["directory", "symlink"] as const) {
    test(`attack: an image whose /proc is a fake ${kind} never receives the profile`, () => {
      const b = makeBundle(["facts"], (s) => {
        s.process!.apparmorProfile = "tsrun-test";
        s.mounts = s.mounts!.filter((m) => m.destination !== "/proc");
      });
      const fake = path.join(b.rootfs, kind === "directory" ? "proc" : "fake");
      if (kind === "symlink") {
        fs.rmdirSync(path.join(b.rootfs, "proc"));
        fs.symlinkSync("/fake", path.join(b.rootfs, "proc"));
      }
      const files: string[] = [];
      for (const self of ["self", "thread-self", "1", "1/task/1"]) {
        for (const f of ["attr/apparmor/exec", "attr/exec"]) {
          const p = path.join(fake, self, f);
          fs.mkdirSync(path.dirname(p), { recursive: true });
          fs.writeFileSync(p, "");
          fs.chmodSync(p, 0o666);
          files.push(p);
        }
      }
      const r = tsrun(["run", "--bundle", b.dir, b.id]);
      for (const p of files) assert.equal(fs.readFileSync(p, "utf8"), "", `${p} was written`);
      const apparmor = fs.existsSync("/sys/module/apparmor/parameters/enabled") && fs.readFileSync("/sys/module/apparmor/parameters/enabled", "utf8").startsWith("Y");
      if (!apparmor) {
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /unable to apply apparmor profile tsrun-test: write \/proc\/\d+\/task\/\d+\/attr\/(apparmor\/)?exec: Invalid argument/);
      }
    });
  }

  test("linux.mountLabel on a host without SELinux: the kernel refuses the labelled mount, as runc's", () => {
    const b = makeBundle(["facts"], (s) => (s.linux!.mountLabel = FILE_LABEL));
    const r = tsrun(["run", "--bundle", b.dir, b.id]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /mount tmpfs on \/dev .*context/);
    // and the state of a failed create is gone
    waitFor(() => !fs.existsSync(path.join(work(), "state", b.id)), 5000);
  });
});
