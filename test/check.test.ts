// `tsrun check`: on this host (hybrid cgroups, no systemd, no LSM, seccomp with user notification, user
// namespaces and openat2 working) and, through buildReport, on hosts that lack something.
import * as assert from "assert";
import { after, describe, it } from "node:test";
import type { CheckFacts } from "../src/check/facts";
import { buildReport, renderText, useColour, type CheckReport } from "../src/check/report";
import { cleanup, tsrun } from "./helpers";

after(cleanup);

const thisHost = process.env.TSRUN_GUEST !== "1" ? false : "the facts pinned are this machine's, not the guest's";

function itemOf(r: CheckReport, id: string) {
  const found = r.groups.flatMap((g) => g.items).find((i) => i.id === id);
  assert.ok(found, `no item ${id}`);
  return found;
}

describe("tsrun check on this host", { skip: thisHost }, () => {
  it("prints groups with ✓/✗/! and no colour when stdout is not a terminal; status 0", () => {
    const r = tsrun(["check"]);
    assert.strictEqual(r.status, 0, r.stdout + r.stderr);
    for (const g of ["Namespaces", "Cgroups", "Kernel interfaces", "Seccomp", "Security modules", "systemd", "Other"]) assert.match(r.stdout, new RegExp(`^${g}$`, "m"));
    assert.match(r.stdout, /^ {2}✓ openat2 \(RESOLVE_IN_ROOT\): works$/m);
    assert.match(r.stdout, /^ {2}! AppArmor: not enabled\n {6}cost: a container that names an AppArmor profile .* fails: the kernel refuses the profile, as with runc$/m);
    assert.match(r.stdout, /^ {2}! systemd as PID 1: /m);
    assert.match(r.stdout, /✓ the default config \(tsrun spec\) can run here/);
    assert.ok(!r.stdout.includes("\x1b["), "no colour off a terminal");
  });

  it("--format json: the typed report with the facts known here", () => {
    const r = tsrun(["check", "--format", "json"]);
    assert.strictEqual(r.status, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as CheckReport;
    const f = rep.facts;
    assert.strictEqual(f.cgroups.mode, "hybrid");
    assert.deepStrictEqual(f.cgroups.v2?.controllers, ["hugetlb"]);
    assert.ok(f.cgroups.v1.some((h) => h.controllers.includes("devices") && h.writable));
    assert.notStrictEqual(f.systemd.pid1, "systemd");
    assert.strictEqual(f.apparmor.enabled, false);
    assert.strictEqual(f.selinux.mounted, false);
    assert.strictEqual(f.seccomp.enabled, true);
    assert.strictEqual(f.seccomp.notifSizes, 0);
    assert.ok(f.seccomp.actions.includes("SCMP_ACT_NOTIFY"));
    assert.strictEqual(f.seccomp.flags.SECCOMP_FILTER_FLAG_NEW_LISTENER, 0);
    for (const ns of ["user", "time", "cgroup", "pid", "network", "mount"] as const) assert.strictEqual(f.namespaces[ns], 0, ns);
    assert.ok((f.userns.maxUserNamespaces ?? 0) > 0);
    for (const s of ["openat2", "open_tree", "move_mount", "mount_setattr", "pidfd_open", "pidfd_send_signal", "clone3"] as const) assert.strictEqual(f.syscalls[s], 0, s);
    assert.strictEqual(f.idmap.errno, 0, f.idmap.step);
    assert.strictEqual(rep.exitCode, 0);
    assert.deepStrictEqual(rep.missingRequired, []);
    assert.strictEqual(itemOf(rep, "lsm.apparmor").status, "warn");
    assert.strictEqual(itemOf(rep, "systemd.pid1").status, "warn");
    assert.strictEqual(itemOf(rep, "syscall.openat2").status, "ok");
    assert.strictEqual(itemOf(rep, "cgroup.layout").detail, "hybrid: v1 controllers, v2 at /sys/fs/cgroup/unified");
  });
});

// A host where everything works: the facts the builder is tested against.
function goodHost(): CheckFacts {
  return {
    kernel: "6.18.0",
    uid: 0,
    namespaces: { user: 0, pid: 0, network: 0, mount: 0, ipc: 0, uts: 0, cgroup: 0, time: 0 },
    userns: { maxUserNamespaces: 1000, unprivilegedClone: null, apparmorRestrict: null },
    cgroups: {
      mode: "v2",
      v1: [],
      v2: { mountPoint: "/sys/fs/cgroup", controllers: ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"], own: "/sys/fs/cgroup/x", ownControllers: ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"], writable: true },
    },
    systemd: { pid1: "systemd", booted: true, dbusSocket: true },
    seccomp: {
      enabled: true,
      actionsAvail: ["kill_process", "kill_thread", "trap", "errno", "user_notif", "trace", "log", "allow"],
      actions: ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"],
      flags: { SECCOMP_FILTER_FLAG_TSYNC: 0, SECCOMP_FILTER_FLAG_LOG: 0, SECCOMP_FILTER_FLAG_SPEC_ALLOW: 0, SECCOMP_FILTER_FLAG_NEW_LISTENER: 0, SECCOMP_FILTER_FLAG_TSYNC_ESRCH: 0, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 0 },
      notifSizes: 0,
    },
    apparmor: { enabled: true, securityfs: true },
    selinux: { mounted: false, enforce: null },
    syscalls: { openat2: 0, open_tree: 0, move_mount: 0, mount_setattr: 0, fsopen: 0, pidfd_open: 0, pidfd_send_signal: 0, clone3: 0, bpf: 0 },
    idmap: { path: "/tmp", fsType: "0x1021994", errno: 0, step: "" },
    criu: { path: "/usr/sbin/criu", version: "3.17.1", error: null },
    notifySocket: null,
  };
}

describe("the report builder", () => {
  it("a host with everything: status 0, nothing missing", () => {
    const r = buildReport(goodHost());
    assert.strictEqual(r.exitCode, 0);
    assert.deepStrictEqual(r.missingRequired, []);
    assert.deepStrictEqual(
      r.groups.flatMap((g) => g.items).filter((i) => i.status !== "ok").map((i) => i.id),
      ["lsm.selinux", "checkpoint"],
    );
    // tsrun's own gap, whatever the host has (CRIU here)
    const c = itemOf(r, "checkpoint");
    assert.strictEqual(c.detail, "not implemented by tsrun");
    assert.match(c.cost ?? "", /checkpoint/);
  });

  it("a missing fact the default config needs is ✗ with its cost, and makes the status 1", () => {
    const f = goodHost();
    f.syscalls.openat2 = 38; // ENOSYS
    const r = buildReport(f);
    assert.strictEqual(r.exitCode, 1);
    assert.deepStrictEqual(r.missingRequired, ["syscall.openat2"]);
    const i = itemOf(r, "syscall.openat2");
    assert.strictEqual(i.status, "missing");
    assert.strictEqual(i.detail, "not in this kernel (ENOSYS)");
    assert.match(i.cost ?? "", /no container/);
    const text = renderText(r, false);
    assert.match(text, /^ {2}✗ openat2 \(RESOLVE_IN_ROOT\): not in this kernel \(ENOSYS\)\n {6}cost: /m);
    assert.match(text, /✗ the default config \(tsrun spec\) cannot run here: syscall\.openat2/);
  });

  it("each required fact: pid namespace, cgroups, the v2 device filter, root", () => {
    const cases: [string, (f: CheckFacts) => void][] = [
      ["namespace.pid", (f) => (f.namespaces.pid = 1)],
      ["cgroup.layout", (f) => (f.cgroups = { mode: "none", v1: [], v2: null })],
      ["cgroup.v2.bpf", (f) => (f.syscalls.bpf = 38)],
      ["cgroup.v2.writable", (f) => f.cgroups.v2 && (f.cgroups.v2.writable = false)],
      ["root", (f) => (f.uid = 1000)],
    ];
    for (const [id, change] of cases) {
      const f = goodHost();
      change(f);
      const r = buildReport(f);
      assert.strictEqual(r.exitCode, 1, id);
      assert.ok(r.missingRequired.includes(id), `${id}: ${r.missingRequired.join(",")}`);
    }
  });

  it("an optional fact is ! with its cost and leaves the status 0", () => {
    const f = goodHost();
    f.namespaces.time = 22;
    f.seccomp.notifSizes = 38;
    f.systemd = { pid1: "init", booted: false, dbusSocket: false };
    f.cgroups.v2!.ownControllers = ["memory", "pids"];
    const r = buildReport(f);
    assert.strictEqual(r.exitCode, 0);
    assert.strictEqual(itemOf(r, "namespace.time").status, "warn");
    assert.match(itemOf(r, "namespace.time").cost ?? "", /timeOffsets/);
    assert.strictEqual(itemOf(r, "seccomp.notify").status, "warn");
    assert.strictEqual(itemOf(r, "systemd.pid1").status, "warn");
    assert.match(itemOf(r, "cgroup.v2.delegated").cost ?? "", /cpuset, cpu, io, hugetlb/);
  });

  it("colour only on a terminal, never with NO_COLOR or TERM=dumb", () => {
    assert.strictEqual(useColour(true, {}), true);
    assert.strictEqual(useColour(false, {}), false);
    assert.strictEqual(useColour(true, { NO_COLOR: "1" }), false);
    assert.strictEqual(useColour(true, { TERM: "dumb" }), false);
    const r = buildReport(goodHost());
    assert.ok(renderText(r, true).includes("\x1b[32m✓\x1b[0m"));
    assert.ok(!renderText(r, false).includes("\x1b["));
  });
});
