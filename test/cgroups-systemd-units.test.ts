// The systemd cgroup driver's pure part against runc's known outputs (opencontainers/cgroups systemd tests:
// TestExpandSlice cases, TestRangeToBits, TestSystemdVersion, TestAddCPUQuota; devices/systemd.go and
// v1.go / v2.go property lists): slice expansion, unit names and the cgroupsPath form, and linux.resources as
// unit properties.
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { outsideUid } from "../src/userns";
import { deviceProperties, expandSlice, parseCgroupsPath, type Property, rangeToBits, resourceProperties, startProperties, systemdVersionAtoi, unitCgroupPath, unitName } from "../src/cgroups/systemd/units";

const byName = (props: Property[]) => Object.fromEntries(props.map((p) => [p.name, p.value]));
const MAX = 2n ** 64n - 1n;

describe("the uid the user's bus sees", () => {
  test("outsideUid maps through a uid_map (rootless podman's: root is the user, the rest subordinate ids)", () => {
    const podman = "         0       1000          1\n         1     100000      65536\n";
    assert.equal(outsideUid(0, podman), 1000);
    assert.equal(outsideUid(1, podman), 100000);
    assert.equal(outsideUid(65536, podman), 165535);
    assert.equal(outsideUid(65537, podman), undefined);
    assert.equal(outsideUid(0, "0 0 4294967295"), 0);
    assert.equal(outsideUid(0, "garbage\n"), undefined);
  });
});

describe("slices and units", () => {
  test("expandSlice: a-b-c.slice is /a.slice/a-b.slice/a-b-c.slice (runc's ExpandSlice)", () => {
    assert.equal(expandSlice("system.slice"), "/system.slice");
    assert.equal(expandSlice("test-a-b.slice"), "/test.slice/test-a.slice/test-a-b.slice");
    assert.equal(expandSlice("machine-foo.slice"), "/machine.slice/machine-foo.slice");
    assert.equal(expandSlice("-.slice"), "/");
    for (const bad of ["", ".slice"[0]!, "foo", "foo.scope", "-test.slice", "test--a.slice", "test-.slice", "a/b.slice", "slice"]) {
      assert.throws(() => expandSlice(bad), /^Error: invalid slice name: /, bad);
    }
  });

  test("unit names and the slice:prefix:name form (runc's specconv and getUnitName)", () => {
    assert.equal(unitName("docker", "abc"), "docker-abc.scope");
    assert.equal(unitName("", "kubepods-pod1.slice"), "kubepods-pod1.slice");
    assert.deepEqual(parseCgroupsPath("system.slice:docker:abc", "id", false), { unit: "docker-abc.scope", slice: "system.slice", name: "abc", rootless: false });
    assert.deepEqual(parseCgroupsPath(undefined, "c1", false), { unit: "runc-c1.scope", slice: "system.slice", name: "c1", rootless: false });
    assert.deepEqual(parseCgroupsPath("", "c1", true), { unit: "runc-c1.scope", slice: "user.slice", name: "c1", rootless: true });
    assert.equal(parseCgroupsPath(":crio:x", "c1", false).slice, "system.slice");
    assert.throws(() => parseCgroupsPath("/a/b", "c1", false), /expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "\/a\/b" instead/);
    assert.throws(() => parseCgroupsPath("a:b:c:d", "c1", false), /slice:prefix:name/);
    assert.equal(unitCgroupPath(parseCgroupsPath("kubepods-besteffort-pod12.slice:cri-containerd:abc", "x", false)), "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope");
    assert.equal(unitCgroupPath(parseCgroupsPath("-.slice:p:n", "x", false)), "/p-n.scope");
    // the user instance (rootless): below the manager's ControlGroup, podman's default slice user.slice
    assert.equal(unitCgroupPath(parseCgroupsPath("user.slice:libpod:abc", "abc", true), "/user.slice/user-1000.slice/user@1000.service"), "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-abc.scope");
    assert.equal(unitCgroupPath(parseCgroupsPath(undefined, "abc", true), "/user.slice/user-1000.slice/user@1000.service/"), "/user.slice/user-1000.slice/user@1000.service/user.slice/runc-abc.scope");
  });

  test("systemd's version string (runc's TestSystemdVersion)", () => {
    const cases: [string, number][] = [['"219"', 219], ['"v245.4-1.fc32"', 245], ['"241-1"', 241], ['"v241-1"', 241], ['333.45"', 333], ["v321-0", 321]];
    for (const [s, v] of cases) assert.equal(systemdVersionAtoi(s), v, s);
    for (const s of ["NaN", "", "v"]) assert.throws(() => systemdVersionAtoi(s), /can't parse version/, s);
  });

  test("rangeToBits (runc's TestRangeToBits)", () => {
    const cases: [string, number[]][] = [
      ["0", [1]],
      ["1", [2]],
      ["0-1", [3]],
      ["0,1", [3]],
      [",0,1,", [3]],
      ["0-3", [0x0f]],
      ["0,1,2-3", [0x0f]],
      ["4-7", [0xf0]],
      ["0-7", [0xff]],
      ["0-15", [0xff, 0xff]],
      ["16", [0, 0, 1]],
      ["0-3,32-33", [0x0f, 0, 0, 0, 3]],
      ["1, 2, 1-2", [6]],
      ["    , 1   , 3  ,  5-7,\t", [0xea]],
      ["128-130,1", [2, ...Array<number>(15).fill(0), 7]],
    ];
    for (const [i, o] of cases) assert.deepEqual([...rangeToBits(i)], o, i);
    for (const bad of ["", "-", "1-", "-3", "54-53", "1 - 2"]) assert.throws(() => rangeToBits(bad), Error, bad);
  });
});

describe("properties", () => {
  const rec = parseCgroupsPath("machine.slice:libpod:abc", "x", false);

  test("StartTransientUnit: runc's Apply list (scope in a Slice, delegated, the pid, accounting, no default deps)", () => {
    assert.deepEqual(startProperties(rec, 4242, { v2: true, version: 252 }), [
      { name: "Description", sig: "s", value: "libcontainer container abc" },
      { name: "Slice", sig: "s", value: "machine.slice" },
      { name: "Delegate", sig: "b", value: true },
      { name: "PIDs", sig: "au", value: [4242] },
      { name: "MemoryAccounting", sig: "b", value: true },
      { name: "CPUAccounting", sig: "b", value: true },
      { name: "IOAccounting", sig: "b", value: true },
      { name: "TasksAccounting", sig: "b", value: true },
      { name: "DefaultDependencies", sig: "b", value: false },
    ]);
    const v1 = byName(startProperties(rec, 1, { v2: false, version: 252 }));
    assert.equal(v1.BlockIOAccounting, true);
    assert.equal(v1.IOAccounting, undefined);
    const slice = startProperties(parseCgroupsPath("system.slice::pods-x.slice", "x", false), 7, { v2: true, version: 252 });
    assert.deepEqual(byName(slice).Wants, ["system.slice"]);
    assert.equal(byName(slice).Delegate, undefined);
    // OOMPolicy from memory.oom.group, systemd 253+ only
    const oom = (v: string, version: number) => byName(startProperties(rec, 1, { v2: true, version, resources: { unified: { "memory.oom.group": v } } })).OOMPolicy;
    assert.equal(oom("1", 253), "kill");
    assert.equal(oom("0", 253), "continue");
    assert.equal(oom("1", 252), undefined);
  });

  test("v2: memory, swap, cpu weight from shares, quota, pids, cpuset (runc's genV2ResourcesProperties)", () => {
    const warn: string[] = [];
    const { props, resources } = resourceProperties(
      { memory: { limit: 268435456, reservation: 134217728, swap: 536870912 }, cpu: { shares: 1024, quota: 50000, period: 100000, cpus: "0-1", mems: "0" }, pids: { limit: 0 } },
      { v2: true, version: 252, warn: (m) => warn.push(m), skipDevices: true },
    );
    assert.deepEqual(
      props.map((p) => p.name),
      ["MemoryMax", "MemoryLow", "MemorySwapMax", "CPUWeight", "CPUQuotaPeriodUSec", "CPUQuotaPerSecUSec", "TasksMax", "AllowedCPUs", "AllowedMemoryNodes"],
    );
    const v = byName(props);
    assert.equal(v.MemoryMax, 268435456n);
    assert.equal(v.MemoryLow, 134217728n);
    assert.equal(v.MemorySwapMax, 268435456n); // memory+swap minus memory
    assert.equal(v.CPUWeight, 100n); // cpu.shares 1024 -> cpu.weight 100
    assert.equal(v.CPUQuotaPerSecUSec, 500000n);
    assert.equal(v.TasksMax, 1n); // systemd does not take 0
    assert.deepEqual([...(v.AllowedCPUs as Buffer)], [3]);
    assert.deepEqual([...(v.AllowedMemoryNodes as Buffer)], [1]);
    assert.equal(resources.cpu?.quota, 50000);
    assert.deepEqual(warn, []);
    // unlimited: -1 is infinity
    const inf = byName(resourceProperties({ memory: { limit: -1 }, pids: { limit: -1 } }, { v2: true, version: 252, warn: () => {}, skipDevices: true }).props);
    assert.equal(inf.MemoryMax, MAX);
    assert.equal(inf.TasksMax, MAX);
    assert.equal(inf.MemorySwapMax, MAX);
    // older systemd: no period, no cpuset properties
    const old = byName(resourceProperties({ cpu: { quota: 50000, period: 100000, cpus: "0" } }, { v2: true, version: 241, warn: () => {}, skipDevices: true }).props);
    assert.equal(old.CPUQuotaPeriodUSec, undefined);
    assert.equal(old.AllowedCPUs, undefined);
    assert.equal(old.CPUQuotaPerSecUSec, 500000n);
  });

  test("cpu quota rounded up to whole percents, and the quota written to files with it (runc's TestAddCPUQuota)", () => {
    for (const [quota, period, perSec, written] of [
      [500000, 1000000, 500000n, 500000],
      [123456, 0, 1240000n, 124000],
      [500000, 900000, 560000n, 504000],
    ] as const) {
      const cpu = period ? { quota, period } : { quota };
      const { props, resources } = resourceProperties({ cpu }, { v2: true, version: 252, warn: () => {}, skipDevices: true });
      assert.equal(byName(props).CPUQuotaPerSecUSec, perSec, `${quota}/${period}`);
      assert.equal(resources.cpu?.quota, written, `${quota}/${period}`);
    }
    // a period alone: no quota (infinity)
    assert.equal(byName(resourceProperties({ cpu: { period: 50000 } }, { v2: true, version: 252, warn: () => {}, skipDevices: true }).props).CPUQuotaPerSecUSec, MAX);
  });

  test("cpu.idle as CPUWeight=0 (systemd 252+), which wins over a weight", () => {
    const warn: string[] = [];
    const v = byName(resourceProperties({ cpu: { idle: 1, shares: 1024 } }, { v2: true, version: 252, warn: (m) => warn.push(m), skipDevices: true }).props);
    assert.equal(v.CPUWeight, 0n);
    assert.equal(warn.length, 1);
    assert.equal(byName(resourceProperties({ cpu: { idle: 1 } }, { v2: true, version: 251, warn: () => {}, skipDevices: true }).props).CPUWeight, undefined);
  });

  test("v2 unified keys systemd knows (runc's unifiedResToSystemdProps); the rest only go to files", () => {
    const { props } = resourceProperties(
      { unified: { "memory.max": "max", "memory.high": "1000000", "memory.min": "4096", "pids.max": "0", "cpu.weight": "50", "cpu.max": "max 50000", "cpuset.cpus": "1", "io.weight": "default 100" } },
      { v2: true, version: 252, warn: () => {}, skipDevices: true },
    );
    const v = byName(props);
    assert.equal(v.MemoryMax, MAX);
    assert.equal(v.MemoryHigh, 1000000n);
    assert.equal(v.MemoryMin, 4096n);
    assert.equal(v.TasksMax, 1n);
    assert.equal(v.CPUWeight, 50n);
    assert.equal(v.CPUQuotaPeriodUSec, 50000n);
    assert.equal(v.CPUQuotaPerSecUSec, MAX);
    assert.deepEqual([...(v.AllowedCPUs as Buffer)], [2]);
    assert.equal(props.length, 8);
    assert.throws(() => resourceProperties({ unified: { "memory/max": "1" } }, { v2: true, version: 252, warn: () => {}, skipDevices: true }), /must be a file name/);
    assert.throws(() => resourceProperties({ unified: { memory: "1" } }, { v2: true, version: 252, warn: () => {}, skipDevices: true }), /CONTROLLER.PARAMETER/);
    assert.throws(() => resourceProperties({ unified: { "memory.max": "lots" } }, { v2: true, version: 252, warn: () => {}, skipDevices: true }), /conversion error/);
  });

  test("v1: MemoryLimit, CPUShares, BlockIOWeight (runc's genV1ResourcesProperties)", () => {
    const v = byName(resourceProperties({ memory: { limit: 1048576 }, cpu: { shares: 512 }, blockIO: { weight: 300 }, pids: { limit: 10 } }, { v2: false, version: 252, warn: () => {}, skipDevices: true }).props);
    assert.deepEqual(v, { MemoryLimit: 1048576n, CPUShares: 512n, BlockIOWeight: 300n, TasksMax: 10n });
  });

  test("devices: strict policy with runc's default allow list, auto for allow-all, deny-all for a blacklist", () => {
    const warn: string[] = [];
    const props = deviceProperties({ devices: [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 10, minor: 229, access: "rw" }] }, { version: 252, warn: (m) => warn.push(m) });
    assert.deepEqual(props.slice(0, 2), [
      { name: "DeviceAllow", sig: "a(ss)", value: [] },
      { name: "DevicePolicy", sig: "s", value: "strict" },
    ]);
    assert.deepEqual(props[2], {
      name: "DeviceAllow",
      sig: "a(ss)",
      value: [
        ["block-*", "m"],
        ["char-*", "m"],
        ["/dev/char/1:3", "rwm"],
        ["/dev/char/1:5", "rwm"],
        ["/dev/char/1:7", "rwm"],
        ["/dev/char/1:8", "rwm"],
        ["/dev/char/1:9", "rwm"],
        ["/dev/char/5:0", "rwm"],
        ["/dev/char/5:2", "rwm"],
        ["/dev/char/10:200", "rwm"],
        ["/dev/char/10:229", "rw"],
        ["char-136", "rwm"],
      ],
    });
    assert.deepEqual(warn, []);
    assert.deepEqual(deviceProperties({ devices: [{ allow: true, access: "rwm" }] }, { version: 252, warn: () => {} }), [
      { name: "DeviceAllow", sig: "a(ss)", value: [] },
      { name: "DevicePolicy", sig: "s", value: "auto" },
    ]);
    const warned: string[] = [];
    const bl = deviceProperties({ devices: [{ allow: true, access: "rwm" }, { allow: false, type: "c", major: 10, minor: 229, access: "rwm" }] }, { version: 252, warn: (m) => warned.push(m) });
    assert.equal(bl.length, 2);
    assert.match(warned[0]!, /blacklist/);
    assert.deepEqual(deviceProperties({}, { version: 252, warn: () => {}, skipDevices: true }), []);
  });
});
