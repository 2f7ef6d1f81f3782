// Resource writing checked file by file in fake cgroup trees (temporary directories holding the files a v1
// or v2 cgroup has): every controller, including those this host cannot give a container on v2, and each
// of runc's conversions. Also the device rules: the emulator's v1 transitions and the v2 BPF program,
// decoded from its bytes and run by a small interpreter.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, afterEach, beforeEach, describe, mock, test } from "node:test";
import { blkioWeightToIoWeight, cpuSharesToWeight, memorySwapToV2, ramInBytes, v2Limit } from "../src/cgroups/convert";
import { deviceFilter, LICENSE } from "../src/cgroups/devicefilter";
import { containerDeviceRules, DeviceEmulator, ruleString } from "../src/cgroups/devicerules";
import * as files from "../src/cgroups/files";
import { CgroupManager } from "../src/cgroups/manager";
import { type GoJson, goJson } from "../src/gojson";
import { mergeResources, resourcesFromFlags } from "../src/runtime/update";
import type { LinuxResources } from "../src/spec/schema";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-fake-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let seq = 0;
// A directory with the given files (name -> initial content).
function cgroup(contents: Record<string, string>): string {
  const d = path.join(tmp, `cg${seq++}`);
  fs.mkdirSync(d);
  for (const [f, v] of Object.entries(contents)) fs.writeFileSync(path.join(d, f), v);
  return d;
}

interface Write {
  file: string;
  value: string;
}
let writes: Write[] = [];
// Kernel refusals to simulate: "file=value" -> errno name (the first write of that pair fails).
let refuse = new Map<string, string>();
const realWrite = files.writeCgroupFile;

beforeEach(() => {
  writes = [];
  refuse = new Map();
  // Record each write in order (the fake file keeps the last value, as a cgroup file would show it).
  mock.method(files, "writeCgroupFile", (dir: string, file: string, value: string) => {
    const key = `${file}=${value}`;
    const code = refuse.get(key);
    if (code) {
      refuse.delete(key);
      writes.push({ file, value: `${value} (refused: ${code})` });
      throw new files.CgroupFileError(`write ${JSON.stringify(value)} to ${path.join(dir, file)}: simulated ${code}`, code, path.join(dir, file));
    }
    if (!fs.existsSync(path.join(dir, file))) return realWrite(dir, file, value); // the real ENOENT error
    writes.push({ file, value });
    fs.writeFileSync(path.join(dir, file), value);
  });
});
afterEach(() => mock.restoreAll());

// A manager over the fake tree: its layout (v1, hybrid, v2) is read from the keys, as from a state.json record.
const manager = (dirs: Record<string, string>) => CgroupManager.fromRecord({ dirs, created: [] });

function apply(dirs: Record<string, string>, r: LinuxResources, skipDevices = true): string[] {
  const warnings: string[] = [];
  manager(dirs).apply(r, { warn: (m) => warnings.push(m), skipDevices });
  return warnings;
}

const collectStats = (dirs: Record<string, string>) => manager(dirs).stats();

const pairs = () => writes.map((w) => [w.file, w.value]);

// ---------------------------------------------------------------------------------------------------------
describe("runc's conversions", () => {
  test("cpu shares -> cpu.weight (values computed independently from runc's formula)", () => {
    const cases: [number, number][] = [[0, 0], [1, 1], [2, 1], [3, 2], [512, 59], [1024, 100], [2048, 174], [4096, 303], [100000, 4340], [262143, 10000], [262144, 10000], [300000, 10000]];
    for (const [shares, weight] of cases) assert.equal(cpuSharesToWeight(shares), weight, `shares ${shares}`);
  });
  test("blkio weight -> io.weight", () => {
    for (const [w, io] of [[0, 0], [10, 1], [100, 910], [500, 4950], [1000, 10000]] as const) assert.equal(blkioWeightToIoWeight(w), io);
  });
  test("memory+swap -> memory.swap.max (runc's table)", () => {
    const ok: [number, number, number][] = [[0, 0, 0], [-1, 0, -1], [-1, -1, -1], [-1, 1000, -1], [1000, 1000, 0], [500, 200, 300], [0, -1, -1]];
    for (const [swap, mem, want] of ok) assert.equal(memorySwapToV2(swap, mem), want, `swap ${swap} memory ${mem}`);
    assert.throws(() => memorySwapToV2(-2, 0), /unable to set swap limit without memory limit/);
    assert.throws(() => memorySwapToV2(300, 400), /memory\+swap limit should be >= memory limit/);
    assert.throws(() => memorySwapToV2(300, -3), /invalid memory value: -3/);
    assert.deepEqual([0, -1, 10].map(v2Limit), ["", "max", "10"]);
  });
  test("sizes as runc update parses them", () => {
    assert.equal(ramInBytes("512m"), 512 * 2 ** 20);
    assert.equal(ramInBytes("1g"), 2 ** 30);
    assert.equal(ramInBytes("1.5KiB"), 1536);
    assert.equal(ramInBytes("4096"), 4096);
    assert.throws(() => ramInBytes("lots"), /invalid size/);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe("cgroup v1 files", () => {
  const v1 = () => ({
    memory: cgroup({
      "memory.limit_in_bytes": "9223372036854771712",
      "memory.memsw.limit_in_bytes": "9223372036854771712",
      "memory.soft_limit_in_bytes": "",
      "memory.oom_control": "",
      "memory.swappiness": "",
      "memory.use_hierarchy": "1",
      "memory.usage_in_bytes": "1000",
      "memory.max_usage_in_bytes": "2000",
    }),
    "cpu,cpuacct": cgroup({ "cpu.shares": "", "cpu.cfs_period_us": "", "cpu.cfs_quota_us": "", "cpu.cfs_burst_us": "", "cpu.idle": "", "cpu.rt_period_us": "", "cpu.rt_runtime_us": "" }),
    cpuset: cgroup({ "cpuset.cpus": "", "cpuset.mems": "" }),
    pids: cgroup({ "pids.max": "" }),
    blkio: cgroup({ "blkio.bfq.weight": "", "blkio.bfq.weight_device": "", "blkio.throttle.read_bps_device": "", "blkio.throttle.write_bps_device": "", "blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": "" }),
    hugetlb: cgroup({ "hugetlb.2MB.limit_in_bytes": "", "hugetlb.2MB.rsvd.limit_in_bytes": "", "hugetlb.1GB.limit_in_bytes": "", "hugetlb.1GB.rsvd.limit_in_bytes": "" }),
    "net_cls,net_prio": cgroup({ "net_cls.classid": "", "net_prio.ifpriomap": "" }),
    rdma: cgroup({ "rdma.max": "" }),
    "": cgroup({ "cgroup.controllers": "" }),
  });

  test("memory: limit before memsw when lowering, reservation, OOM killer, swappiness; use_hierarchy already 1", () => {
    const d = v1();
    apply(d, { memory: { limit: 268435456, swap: 536870912, reservation: 134217728, disableOOMKiller: true, swappiness: 10, useHierarchy: true } });
    assert.deepEqual(pairs(), [
      ["memory.limit_in_bytes", "268435456"],
      ["memory.memsw.limit_in_bytes", "536870912"],
      ["memory.soft_limit_in_bytes", "134217728"],
      ["memory.oom_control", "1"],
      ["memory.swappiness", "10"],
    ]);
  });

  test("memory: memsw first when it rises above the current limit, and for -1", () => {
    const d = v1();
    fs.writeFileSync(path.join(d.memory, "memory.limit_in_bytes"), "104857600");
    apply(d, { memory: { limit: 209715200, swap: 419430400 } });
    assert.deepEqual(pairs(), [
      ["memory.memsw.limit_in_bytes", "419430400"],
      ["memory.limit_in_bytes", "209715200"],
    ]);
    writes = [];
    apply(d, { memory: { limit: -1 } }); // -1 with no swap: both unlimited, memsw first
    assert.deepEqual(pairs(), [
      ["memory.memsw.limit_in_bytes", "-1"],
      ["memory.limit_in_bytes", "-1"],
    ]);
  });

  test("memory: refusals name the setting and the file", () => {
    const d = v1();
    assert.throws(() => apply(d, { memory: { swappiness: 101 } }), /^Error: linux\.resources\.memory\.swappiness: invalid memory swappiness value: 101 \(valid range is 0-100\)$/);
    refuse.set("memory.limit_in_bytes=4096", "EBUSY");
    assert.throws(() => apply(d, { memory: { limit: 4096 } }), /linux\.resources\.memory\.limit: unable to set memory limit to 4096 \(current usage: 1000, peak usage: 2000\) in .*\/memory\.limit_in_bytes$/);
    refuse.set("memory.use_hierarchy=0", "EINVAL");
    assert.throws(() => apply(d, { memory: { useHierarchy: false } }), /linux\.resources\.memory\.useHierarchy: write "0" to .*memory\.use_hierarchy: simulated EINVAL/);
    // checkBeforeUpdate: a limit at or below the usage is refused before anything is written
    writes = [];
    assert.throws(() => apply(d, { memory: { limit: 1000, checkBeforeUpdate: true } }), /rejecting memory limit 1000 <= usage 1000/);
    assert.deepEqual(writes, []);
    // no memsw file (no swap accounting): the swap setting fails naming it
    fs.rmSync(path.join(d.memory, "memory.memsw.limit_in_bytes"));
    assert.throws(() => apply(d, { memory: { limit: 1 << 20, swap: 1 << 21 } }), /linux\.resources\.memory\.swap: write "2097152" to .*memory\.memsw\.limit_in_bytes: no such file or directory/i);
  });

  test("cpu: shares (read back), period, burst, quota, idle, real-time", () => {
    const d = v1();
    apply(d, { cpu: { shares: 512, quota: 50000, period: 100000, burst: 1000, idle: 1, realtimePeriod: 1000000, realtimeRuntime: 950000 } });
    assert.deepEqual(pairs(), [
      ["cpu.shares", "512"],
      ["cpu.cfs_period_us", "100000"],
      ["cpu.cfs_burst_us", "1000"],
      ["cpu.cfs_quota_us", "50000"],
      ["cpu.idle", "1"],
      ["cpu.rt_period_us", "1000000"],
      ["cpu.rt_runtime_us", "950000"],
    ]);
  });

  test("cpu: a period or rt period the kernel refuses first is written again after the quota / runtime", () => {
    const d = v1();
    refuse.set("cpu.cfs_period_us=10000", "EINVAL");
    refuse.set("cpu.rt_period_us=20000", "EINVAL");
    apply(d, { cpu: { quota: 5000, period: 10000, realtimePeriod: 20000, realtimeRuntime: 1000 } });
    assert.deepEqual(pairs(), [
      ["cpu.cfs_period_us", "10000 (refused: EINVAL)"],
      ["cpu.cfs_quota_us", "5000"],
      ["cpu.cfs_period_us", "10000"],
      ["cpu.rt_period_us", "20000 (refused: EINVAL)"],
      ["cpu.rt_runtime_us", "1000"],
      ["cpu.rt_period_us", "20000"],
    ]);
    // without a quota, the refusal is the error
    refuse.set("cpu.cfs_period_us=10000", "EINVAL");
    assert.throws(() => apply(d, { cpu: { period: 10000 } }), /linux\.resources\.cpu\.period: write "10000" to .*cpu\.cfs_period_us: simulated EINVAL/);
  });

  test("cpu: shares the kernel clamps are an error", () => {
    const d = v1();
    mock.restoreAll();
    mock.method(files, "writeCgroupFile", (dir: string, file: string) => fs.writeFileSync(path.join(dir, file), "262144")); // the clamp
    assert.throws(() => apply(d, { cpu: { shares: 300000 } }), /the maximum allowed cpu-shares is 262144/);
  });

  test("cpuset, pids (-1 is max, 0 is 1 as in runtime-spec 1.3, no limit leaves it), hugetlb (with and without .rsvd), net_cls, net_prio, rdma", () => {
    const d = v1();
    apply(d, {
      cpu: { cpus: "0-1", mems: "0" },
      pids: { limit: 64 },
      hugepageLimits: [
        { pageSize: "2MB", limit: 4194304 },
        { pageSize: "1GB", limit: 0 },
      ],
      network: { classID: 0x100001, priorities: [{ name: "eth0", priority: 5 }, { name: "lo", priority: 2 }] },
      rdma: { mlx5_1: { hcaHandles: 3, hcaObjects: 10000 }, mlx4_0: { hcaObjects: 7 } },
    });
    assert.deepEqual(pairs(), [
      ["cpuset.cpus", "0-1"],
      ["cpuset.mems", "0"],
      ["pids.max", "64"],
      ["hugetlb.2MB.limit_in_bytes", "4194304"],
      ["hugetlb.2MB.rsvd.limit_in_bytes", "4194304"],
      ["hugetlb.1GB.limit_in_bytes", "0"],
      ["hugetlb.1GB.rsvd.limit_in_bytes", "0"],
      ["net_cls.classid", "1048577"],
      ["net_prio.ifpriomap", "eth0 5"],
      ["net_prio.ifpriomap", "lo 2"],
      ["rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"],
      ["rdma.max", "mlx4_0 hca_object=7"],
    ]);
    writes = [];
    apply(d, { pids: { limit: -1 } });
    apply(d, { pids: { limit: 0 } });
    apply(d, { pids: {} });
    assert.deepEqual(pairs(), [
      ["pids.max", "max"],
      ["pids.max", "1"],
    ]);
    writes = [];
    fs.rmSync(path.join(d.hugetlb, "hugetlb.2MB.rsvd.limit_in_bytes"));
    apply(d, { hugepageLimits: [{ pageSize: "2MB", limit: 2097152 }] });
    assert.deepEqual(pairs(), [["hugetlb.2MB.limit_in_bytes", "2097152"]]);
    assert.throws(() => apply(d, { hugepageLimits: [{ pageSize: "64KB", limit: 1 }] }), /linux\.resources\.hugepageLimits\[0\]: write "1" to .*hugetlb\.64KB\.limit_in_bytes: no such file/i);
  });

  test("blkio: BFQ files when there is no blkio.weight, CFQ's otherwise; throttles; leaf weight needs CFQ", () => {
    const d = v1();
    const io: LinuxResources["blockIO"] = {
      weight: 500,
      weightDevice: [{ major: 8, minor: 0, weight: 300 }],
      throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
      throttleWriteBpsDevice: [{ major: 8, minor: 16, rate: 2097152 }],
      throttleReadIOPSDevice: [{ major: 8, minor: 0, rate: 100 }],
      throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 200 }],
    };
    apply(d, { blockIO: io });
    assert.deepEqual(pairs(), [
      ["blkio.bfq.weight", "500"],
      ["blkio.bfq.weight_device", "8:0 300"],
      ["blkio.throttle.read_bps_device", "8:0 1048576"],
      ["blkio.throttle.write_bps_device", "8:16 2097152"],
      ["blkio.throttle.read_iops_device", "8:0 100"],
      ["blkio.throttle.write_iops_device", "8:0 200"],
    ]);
    assert.throws(() => apply(d, { blockIO: { leafWeight: 300 } }), /linux\.resources\.blockIO\.leafWeight: write "300" to .*blkio\.leaf_weight: no such file/i);
    for (const f of ["blkio.weight", "blkio.weight_device", "blkio.leaf_weight", "blkio.leaf_weight_device"]) fs.writeFileSync(path.join(d.blkio, f), "");
    writes = [];
    apply(d, { blockIO: { weight: 600, leafWeight: 700, weightDevice: [{ major: 8, minor: 0, weight: 100, leafWeight: 200 }] } });
    assert.deepEqual(pairs(), [
      ["blkio.weight", "600"],
      ["blkio.leaf_weight", "700"],
      ["blkio.weight_device", "8:0 100"],
      ["blkio.leaf_weight_device", "8:0 200"],
    ]);
  });

  test("a controller the host lacks is an error naming it; unified is refused with v1 hierarchies", () => {
    const d = v1();
    const noRdma: Record<string, string> = { ...d };
    delete noRdma.rdma;
    assert.throws(
      () => apply(noRdma, { rdma: { mlx5_1: { hcaHandles: 1 } } }),
      /^Error: linux\.resources\.rdma: this container has no rdma cgroup \(the host mounts no v1 rdma hierarchy, and rdma is not in .*\/cgroup\.controllers\)$/,
    );
    assert.throws(() => apply(d, { unified: { "memory.high": "1" } }), /linux\.resources\.unified: invalid configuration: cannot use unified on cgroup v1/);
    // nothing asked of a controller: nothing needed from it
    assert.deepEqual(apply(noRdma, { memory: {}, cpu: { shares: 0 }, rdma: {} }), []);
    assert.deepEqual(writes, []);
    // kernel memory: warned about and ignored, as runc
    assert.deepEqual(apply(d, { memory: { kernel: 1 << 20 } }), ["Kernel memory settings are ignored and will be removed"]);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe("cgroup v2 files", () => {
  const v2 = (extra: Record<string, string> = {}) => ({
    "": cgroup({
      "cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc",
      "memory.max": "",
      "memory.swap.max": "",
      "memory.low": "",
      "memory.current": "5000",
      "memory.high": "",
      "cpu.weight": "",
      "cpu.max": "",
      "cpu.max.burst": "",
      "cpu.idle": "",
      "cpuset.cpus": "",
      "cpuset.mems": "",
      "io.weight": "",
      "io.max": "",
      "pids.max": "",
      "hugetlb.2MB.max": "",
      "hugetlb.2MB.rsvd.max": "",
      "rdma.max": "",
      ...extra,
    }),
  });

  test("memory: swap is converted from memory+swap; -1 is max; equal limits turn swap off", () => {
    const d = v2();
    apply(d, { memory: { limit: 268435456, swap: 536870912, reservation: 134217728 } });
    apply(d, { memory: { limit: 268435456, swap: 268435456 } });
    apply(d, { memory: { limit: -1 } });
    apply(d, { memory: { limit: 1048576, swap: -1 } });
    assert.deepEqual(pairs(), [
      ["memory.swap.max", "268435456"],
      ["memory.max", "268435456"],
      ["memory.low", "134217728"],
      ["memory.swap.max", "0"],
      ["memory.max", "268435456"],
      ["memory.swap.max", "max"],
      ["memory.max", "max"],
      ["memory.swap.max", "max"],
      ["memory.max", "1048576"],
    ]);
  });

  test("memory: no swap accounting skips max/0 as runc, refuses a real swap limit; errors", () => {
    const d = v2();
    fs.rmSync(path.join(d[""], "memory.swap.max"));
    apply(d, { memory: { limit: -1 } });
    assert.deepEqual(pairs(), [["memory.max", "max"]]);
    assert.throws(() => apply(d, { memory: { limit: 1 << 20, swap: 1 << 21 } }), /linux\.resources\.memory\.swap: write "1048576" to .*memory\.swap\.max: no such file/i);
    assert.throws(() => apply(d, { memory: { swap: 1 << 20 } }), /linux\.resources\.memory\.swap: unable to set swap limit without memory limit/);
    assert.throws(() => apply(d, { memory: { limit: 4096, checkBeforeUpdate: true } }), /rejecting memory limit 4096 <= usage 5000 \(.*memory\.current\)/);
    assert.throws(() => apply(d, { memory: { useHierarchy: false } }), /cgroup v2 is always hierarchical/);
  });

  test("memory: v1-only knobs are warned about, not written", () => {
    const d = v2();
    const warnings = apply(d, { memory: { swappiness: 10, disableOOMKiller: true, useHierarchy: true } });
    assert.deepEqual(writes, []);
    assert.deepEqual(warnings, [
      "linux.resources.memory.swappiness has no cgroup v2 equivalent and is ignored (as runc does)",
      "linux.resources.memory.disableOOMKiller has no cgroup v2 equivalent and is ignored (as runc does)",
    ]);
  });

  test("cpu: idle, weight from shares, burst, cpu.max with the default period; real-time is warned about", () => {
    const d = v2();
    const warnings = apply(d, { cpu: { idle: 0, shares: 512, burst: 1000, quota: 50000, realtimeRuntime: 1 } });
    apply(d, { cpu: { quota: -1, period: 200000 } });
    apply(d, { cpu: { period: 50000 } });
    apply(d, { cpu: { shares: 1024, cpus: "1", mems: "0" } });
    assert.deepEqual(pairs(), [
      ["cpu.idle", "0"],
      ["cpu.weight", "59"],
      ["cpu.max.burst", "1000"],
      ["cpu.max", "50000 100000"],
      ["cpu.max", "max 200000"],
      ["cpu.max", "max 50000"],
      ["cpu.weight", "100"], // runc's fs2 order: cpu before cpuset
      ["cpuset.cpus", "1"],
      ["cpuset.mems", "0"],
    ]);
    assert.deepEqual(warnings, ["linux.resources.cpu.realtimeRuntime has no cgroup v2 equivalent and is ignored (as runc does)"]);
  });

  test("io: converted io.weight without BFQ; BFQ weight as is, per device when BFQ lists devices; io.max", () => {
    const d = v2();
    const warnings = apply(d, {
      blockIO: {
        weight: 500,
        weightDevice: [{ major: 8, minor: 0, weight: 300 }],
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
        throttleWriteBpsDevice: [{ major: 8, minor: 0, rate: 2097152 }],
        throttleReadIOPSDevice: [{ major: 8, minor: 0, rate: 100 }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 200 }],
      },
    });
    assert.deepEqual(pairs(), [
      ["io.weight", "4950"],
      ["io.max", "8:0 rbps=1048576"],
      ["io.max", "8:0 wbps=2097152"],
      ["io.max", "8:0 riops=100"],
      ["io.max", "8:16 wiops=200"],
    ]);
    assert.match(warnings[0]!, /blockIO\.weightDevice: .* has no per-device BFQ weights/);
    const bfq = v2({ "io.bfq.weight": "default 100\n" });
    writes = [];
    apply(bfq, { blockIO: { weight: 500, weightDevice: [{ major: 8, minor: 0, weight: 300 }] } });
    assert.deepEqual(pairs(), [
      ["io.bfq.weight", "500"],
      ["io.bfq.weight", "8:0 300"],
    ]);
  });

  test("hugetlb, pids, rdma, and unified last (line by line)", () => {
    const d = v2();
    apply(d, {
      hugepageLimits: [{ pageSize: "2MB", limit: 2097152 }],
      pids: { limit: 10 },
      rdma: { mlx5_1: { hcaHandles: 2, hcaObjects: 3 } },
      unified: { "memory.high": "1000000", "io.max": "8:0 rbps=1\n8:16 wbps=2" },
    });
    assert.deepEqual(pairs(), [
      ["pids.max", "10"],
      ["hugetlb.2MB.max", "2097152"],
      ["hugetlb.2MB.rsvd.max", "2097152"],
      ["rdma.max", "mlx5_1 hca_handle=2 hca_object=3"],
      ["memory.high", "1000000"],
      ["io.max", "8:0 rbps=1"],
      ["io.max", "8:16 wbps=2"],
    ]);
    assert.throws(() => apply(d, { unified: { "../memory.max": "1" } }), /unified resource must be a file name/);
    assert.throws(() => apply(d, { unified: { "foo.bar": "1" } }), /linux\.resources\.unified\["foo\.bar"\]: unified resource can't be set: controller "foo" not available in .*cgroup\.controllers/);
    assert.throws(() => apply(d, { unified: { nodot: "1" } }), /must be in the form CONTROLLER\.PARAMETER/);
  });

  test("controllers not enabled for the cgroup are errors naming cgroup.controllers; network is warned about", () => {
    const d = { "": cgroup({ "cgroup.controllers": "hugetlb" }) };
    assert.throws(() => apply(d, { memory: { limit: 1 << 20 } }), /^Error: linux\.resources\.memory: this container has no memory cgroup \(memory is not in .*\/cgroup\.controllers\)$/);
    assert.throws(() => apply(d, { pids: { limit: 5 } }), /linux\.resources\.pids\.limit: this container has no pids cgroup/);
    assert.throws(() => apply(d, { blockIO: { weight: 100 } }), /linux\.resources\.blockIO: this container has no blkio\/io cgroup \(io is not in/);
    assert.deepEqual(apply(d, { network: { classID: 1 } }), ["linux.resources.network has no cgroup v2 equivalent and is ignored (as runc does)"]);
    assert.deepEqual(writes, []);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe("device rules", () => {
  const specRules = [{ allow: false, access: "rwm" }]; // runc's default config

  test("the config's rules, then runc's defaults; a default device the config lists drops its rule", () => {
    const rules = containerDeviceRules(specRules, undefined).map((r) => `${r.allow ? "allow" : "deny"} ${ruleString(r)}`);
    assert.deepEqual(rules, [
      "deny a *:* rwm",
      "allow c *:* m",
      "allow b *:* m",
      "allow c 1:3 rwm",
      "allow c 1:8 rwm",
      "allow c 1:7 rwm",
      "allow c 5:0 rwm",
      "allow c 1:5 rwm",
      "allow c 1:9 rwm",
      "allow c 136:* rwm",
      "allow c 5:2 rwm",
      "allow c 10:200 rwm",
    ]);
    const own = containerDeviceRules(specRules, [{ path: "/dev/null", type: "c", major: 1, minor: 3 }]);
    assert.ok(!own.some((r) => r.major === 1 && r.minor === 3));
    assert.throws(() => containerDeviceRules([{ allow: true }], undefined), /device access at 0 field cannot be empty/);
  });

  test("v1: from allow-all (a new cgroup) the transition is deny a, then the allow list in order", () => {
    const current = DeviceEmulator.fromList("a *:* rwm\n");
    const target = DeviceEmulator.fromRules(containerDeviceRules(specRules, undefined));
    const t = current.transition(target).map((r) => `${r.allow ? "devices.allow" : "devices.deny"} ${ruleString(r)}`);
    assert.deepEqual(t, [
      "devices.deny a *:* rwm",
      "devices.allow b *:* m",
      "devices.allow c *:* m",
      "devices.allow c 1:3 rwm",
      "devices.allow c 1:5 rwm",
      "devices.allow c 1:7 rwm",
      "devices.allow c 1:8 rwm",
      "devices.allow c 1:9 rwm",
      "devices.allow c 5:0 rwm",
      "devices.allow c 5:2 rwm",
      "devices.allow c 10:200 rwm",
      "devices.allow c 136:* rwm",
    ]);
  });

  test("v1: from a listed allow-list only the differences are written (no moment without rules)", () => {
    const current = DeviceEmulator.fromList("c 1:3 rwm\nc 1:5 rwm\nc 10:229 rw\n");
    const target = DeviceEmulator.fromRules([
      { type: "a", major: -1, minor: -1, access: "rwm", allow: false },
      { type: "c", major: 1, minor: 3, access: "rwm", allow: true },
      { type: "c", major: 10, minor: 229, access: "r", allow: true },
      { type: "c", major: 1, minor: 9, access: "rw", allow: true },
    ]);
    const t = current.transition(target).map((r) => `${r.allow ? "allow" : "deny"} ${ruleString(r)}`);
    assert.deepEqual(t, ["deny c 1:5 rwm", "deny c 10:229 w", "allow c 1:9 rw"]);
  });

  test("a rule punching a hole in a wildcard allow is refused, as by v1", () => {
    assert.throws(
      () =>
        DeviceEmulator.fromRules([
          { type: "a", major: -1, minor: -1, access: "rwm", allow: false },
          { type: "c", major: 1, minor: -1, access: "rwm", allow: true },
          { type: "c", major: 1, minor: 3, access: "w", allow: false },
        ]),
      /cannot punch a hole in the wildcard rule c 1:\* rwm/,
    );
  });

  // A BPF interpreter for the few opcodes the filter uses, reading the raw bytes given to BPF_PROG_LOAD.
  function run(bytes: Buffer, type: "b" | "c", access: string, major: number, minor: number): boolean {
    const acc = [...access].reduce((a, c) => a | ({ m: 1, r: 2, w: 4 } as Record<string, number>)[c]!, 0);
    const ctx = [((acc << 16) | (type === "b" ? 1 : 2)) >>> 0, major >>> 0, minor >>> 0];
    const reg = new Array<bigint>(11).fill(0n);
    const M32 = 0xffffffffn;
    for (let pc = 0; pc * 8 < bytes.length; pc++) {
      const code = bytes[pc * 8]!;
      const dst = bytes[pc * 8 + 1]! & 0xf;
      const src = bytes[pc * 8 + 1]! >> 4;
      const off = bytes.readInt16LE(pc * 8 + 2);
      const imm = bytes.readInt32LE(pc * 8 + 4);
      const immU64 = BigInt.asUintN(64, BigInt(imm));
      switch (code) {
        case 0x61: // ldxw dst, [src+off]
          assert.equal(src, 1);
          reg[dst] = BigInt(ctx[off / 4]!);
          break;
        case 0x54: // and32 dst, imm
          reg[dst] = reg[dst]! & M32 & BigInt(imm >>> 0);
          break;
        case 0x74: // rsh32 dst, imm
          reg[dst] = (reg[dst]! & M32) >> BigInt(imm);
          break;
        case 0xb4: // mov32 dst, imm
          reg[dst] = BigInt(imm >>> 0);
          break;
        case 0xbc: // mov32 dst, src
          reg[dst] = reg[src]! & M32;
          break;
        case 0x55: // jne dst, imm, +off
          if (reg[dst] !== immU64) pc += off;
          break;
        case 0x5d: // jne dst, src, +off
          if (reg[dst] !== reg[src]) pc += off;
          break;
        case 0x15: // jeq dst, imm, +off
          if (reg[dst] === immU64) pc += off;
          break;
        case 0x95: // exit
          return reg[0] === 1n;
        default:
          assert.fail(`unexpected opcode 0x${code.toString(16)} at ${pc}`);
      }
    }
    return assert.fail("the program fell off its end");
  }

  test("v2: the BPF program allows exactly the rules (runc's default list)", () => {
    const { bytes, defaultAllow, insns } = deviceFilter(containerDeviceRules(specRules, undefined));
    assert.equal(LICENSE, "Apache");
    assert.equal(defaultAllow, false);
    assert.equal(bytes.length, insns.length * 8);
    // the prologue: r2 = type, r3 = access, r4 = major, r5 = minor
    assert.equal(bytes.subarray(0, 48).toString("hex"), "6112000000000000" + "540200" + "00ffff0000" + "6113000000000000" + "7403000010000000" + "6114040000000000" + "6115080000000000");
    const cases: [("b" | "c"), string, number, number, boolean][] = [
      ["c", "rw", 1, 3, true],
      ["c", "r", 1, 5, true],
      ["c", "w", 1, 9, true],
      ["c", "rw", 5, 2, true],
      ["c", "rw", 136, 7, true],
      ["c", "rw", 10, 200, true],
      ["c", "m", 10, 229, true], // mknod of anything
      ["b", "m", 8, 0, true],
      ["c", "w", 10, 229, false],
      ["c", "r", 1, 1, false],
      ["b", "r", 8, 0, false],
      ["c", "rw", 137, 0, false],
    ];
    for (const [type, access, major, minor, want] of cases) assert.equal(run(bytes, type, access, major, minor), want, `${type} ${major}:${minor} ${access}`);
  });

  test("v2: partial access, wildcards, and a deny-list (allow by default with exceptions)", () => {
    const some = deviceFilter([
      { type: "a", major: -1, minor: -1, access: "rwm", allow: false },
      { type: "c", major: 10, minor: 229, access: "r", allow: true },
      { type: "b", major: 7, minor: -1, access: "rw", allow: true },
    ]).bytes;
    assert.equal(run(some, "c", "r", 10, 229), true);
    assert.equal(run(some, "c", "w", 10, 229), false);
    assert.equal(run(some, "c", "rw", 10, 229), false);
    assert.equal(run(some, "b", "rw", 7, 3), true);
    assert.equal(run(some, "c", "rw", 7, 3), false);
    const deny = deviceFilter([
      { type: "a", major: -1, minor: -1, access: "rwm", allow: true },
      { type: "c", major: 1, minor: 3, access: "w", allow: false },
    ]);
    assert.equal(deny.defaultAllow, true);
    assert.equal(run(deny.bytes, "c", "w", 1, 3), false);
    assert.equal(run(deny.bytes, "c", "rw", 1, 3), false); // any overlap with a deny rule, as v1
    assert.equal(run(deny.bytes, "c", "r", 1, 3), true);
    assert.equal(run(deny.bytes, "b", "rw", 8, 0), true);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe("stats as runc's events prints them", () => {
  // (hugetlb sizes come from /sys/kernel/mm/hugepages: this host has 2MB and 1GB)
  test("v1: cpuacct, cpu throttling, cpuset, memory (+memsw, kmem), pids, blkio (BFQ), hugetlb", () => {
    const dirs = {
      cpu: cgroup({ "cpu.stat": "nr_periods 10\nnr_throttled 3\nthrottled_time 123456\n" }),
      cpuacct: cgroup({
        "cpuacct.stat": "user 150\nsystem 50\n",
        "cpuacct.usage": "2000000000\n",
        "cpuacct.usage_percpu": "1200000000 800000000 \n",
        "cpuacct.usage_all": "cpu user system\n0 1000 200\n1 700 100\n",
      }),
      cpuset: cgroup({ "cpuset.cpus": "0-2,5\n", "cpuset.mems": "0\n", "cpuset.cpu_exclusive": "0\n", "cpuset.sched_load_balance": "1\n", "cpuset.sched_relax_domain_level": "-1\n" }),
      memory: cgroup({
        "memory.stat": "cache 4096\nrss 8192\n",
        "memory.usage_in_bytes": "12288\n",
        "memory.max_usage_in_bytes": "20480\n",
        "memory.failcnt": "2\n",
        "memory.limit_in_bytes": "67108864\n",
        "memory.memsw.usage_in_bytes": "12288\n",
        "memory.memsw.max_usage_in_bytes": "20480\n",
        "memory.memsw.failcnt": "0\n",
        "memory.memsw.limit_in_bytes": "9223372036854771712\n",
        "memory.kmem.usage_in_bytes": "1000\n",
        "memory.kmem.max_usage_in_bytes": "2000\n",
        "memory.kmem.failcnt": "0\n",
        "memory.kmem.limit_in_bytes": "9223372036854771712\n",
      }),
      pids: cgroup({ "pids.current": "3\n", "pids.max": "max\n" }),
      blkio: cgroup({
        "blkio.bfq.io_serviced_recursive": "8:0 Read 10\n8:0 Write 5\nTotal 15\n",
        "blkio.bfq.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n",
      }),
      hugetlb: cgroup({ "hugetlb.2MB.usage_in_bytes": "2097152\n", "hugetlb.2MB.max_usage_in_bytes": "4194304\n", "hugetlb.2MB.failcnt": "1\n" }),
      "": cgroup({ "cgroup.controllers": "" }),
    };
    assert.equal(
      goJson(collectStats(dirs)),
      '{"cpu":{"usage":{"total":2000000000,"percpu":[1200000000,800000000],"percpu_kernel":[200,100],"percpu_user":[1000,700],"kernel":500000000,"user":1500000000},' +
        '"throttling":{"periods":10,"throttledPeriods":3,"throttledTime":123456}},' +
        '"cpuset":{"cpus":[0,1,2,5],"cpu_exclusive":0,"mems":[0],"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":1,"sched_relax_domain_level":-1},' +
        '"memory":{"cache":4096,"usage":{"limit":67108864,"usage":12288,"max":20480,"failcnt":2},"swap":{"limit":9223372036854771712,"usage":12288,"max":20480,"failcnt":0},' +
        '"kernel":{"limit":9223372036854771712,"usage":1000,"max":2000,"failcnt":0},"raw":{"cache":4096,"rss":8192}},' +
        '"pids":{"current":3},' +
        '"blkio":{"ioServiceBytesRecursive":[{"major":8,"op":"Read","value":4096},{"major":8,"op":"Write"}],"ioServicedRecursive":[{"major":8,"op":"Read","value":10},{"major":8,"op":"Write","value":5}]},' +
        '"hugetlb":{"2MB":{"usage":2097152,"max":4194304,"failcnt":1}},"intel_rdt":{},"network_interfaces":null}',
    );
  });

  test("v2: cpu.stat in ns, PSI, memory (+swap as memory+swap), pids, io.stat, hugetlb", () => {
    const dirs = {
      "": cgroup({
        "cgroup.controllers": "cpu memory pids io hugetlb",
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 20\n",
        "cpu.pressure": "some avg10=1.71 avg60=2.36 avg300=2.57 total=230548833\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        "memory.stat": "anon 8192\nfile 4096\n",
        "memory.current": "12288\n",
        "memory.max": "max\n",
        "memory.peak": "20480\n",
        "memory.swap.current": "0\n",
        "memory.swap.max": "max\n",
        "pids.current": "2\n",
        "pids.max": "10\n",
        "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
        "hugetlb.2MB.current": "0\n",
        "hugetlb.2MB.events": "max 0\n",
      }),
    };
    assert.equal(
      goJson(collectStats(dirs)),
      '{"cpu":{"usage":{"total":1500000,"kernel":500000,"user":1000000},"throttling":{"periods":4,"throttledPeriods":1,"throttledTime":20000},' +
        '"psi":{"some":{"avg10":1.71,"avg60":2.36,"avg300":2.57,"total":230548833}}},' +
        '"cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":0,"sched_relax_domain_level":0},' +
        '"memory":{"cache":4096,"usage":{"limit":18446744073709551615,"usage":12288,"max":20480,"failcnt":0},"swap":{"limit":18446744073709551615,"usage":12288,"failcnt":0},"raw":{"anon":8192,"file":4096}},' +
        '"pids":{"current":2,"limit":10},' +
        '"blkio":{"ioServiceBytesRecursive":[{"major":8,"op":"Read","value":4096},{"major":8,"op":"Write","value":8192}],"ioServicedRecursive":[{"major":8,"op":"Read","value":1},{"major":8,"op":"Write","value":2}]},' +
        '"hugetlb":{"2MB":{"failcnt":0}},"intel_rdt":{},"network_interfaces":null}',
    );
    // a v2 cgroup without controllers: cpu.stat and pressure files are always there; pids come from cgroup.procs
    const bare = { "": cgroup({ "cgroup.controllers": "", "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n", "cgroup.procs": "7\n9\n" }) };
    const s = collectStats(bare);
    assert.deepEqual(s.pids, { current: 2n });
    assert.equal(goJson(s.memory as GoJson), "{}");
  });

  test("a malformed file is an error naming it", () => {
    const dirs = { "": cgroup({ "cgroup.controllers": "pids", "pids.current": "lots\n", "pids.max": "max\n" }) };
    assert.throws(() => collectStats(dirs), /unable to parse .*\/pids\.current: "lots" is not a number/);
  });
});

describe("update: runc's flags and merge", () => {
  const cur: LinuxResources = {
    cpu: { quota: 50000, period: 100000, shares: 512, cpus: "0" },
    memory: { limit: 64 << 20, checkBeforeUpdate: true },
    pids: { limit: 10 },
    blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 100 }], throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1 }] },
  };

  test("flags become a resources document (sizes as runc parses them); RDT schemas are refused", () => {
    assert.deepEqual(resourcesFromFlags({ memory: "512m", memorySwap: "-1", cpuShare: "256", cpuQuota: "-1", pidsLimit: "20", blkioWeight: "300", cpusetCpus: "1" }), {
      memory: { checkBeforeUpdate: false, limit: 512 << 20, swap: -1 },
      cpu: { cpus: "1", shares: 256, quota: -1 },
      blockIO: { weight: 300 },
      pids: { limit: 20 },
    });
    assert.throws(() => resourcesFromFlags({ memory: "lots" }), /invalid value for memory: invalid size: 'lots'/);
    assert.throws(() => resourcesFromFlags({ cpuShare: "-5" }), /invalid value for cpu-share/);
    assert.throws(() => resourcesFromFlags({ l3CacheSchema: "L3:0=f" }), /Intel RDT\/CAT: l3 cache schema is not enabled/);
    assert.throws(() => resourcesFromFlags({ memBwSchema: "MB:0=50" }), /Intel RDT\/MBA: memory bandwidth schema is not enabled/);
  });

  test("a quota alone keeps the period (and the other way round); what is not given is kept", () => {
    const q = mergeResources(cur, resourcesFromFlags({ cpuQuota: "20000" }));
    assert.deepEqual(q.cpu, { quota: 20000, period: 100000, shares: 512, cpus: "0" });
    assert.deepEqual(q.pids, { limit: 10 });
    assert.deepEqual(q.memory, { limit: 64 << 20, checkBeforeUpdate: false }, "flags reset checkBeforeUpdate, as runc's constant");
    const p = mergeResources(cur, resourcesFromFlags({ cpuPeriod: "50000" }));
    assert.deepEqual(p.cpu, { quota: 50000, period: 50000, shares: 512, cpus: "0" });
    const both = mergeResources(cur, { cpu: { quota: 1000, period: 2000 } });
    assert.deepEqual(both.cpu, { quota: 1000, period: 2000, shares: 512, cpus: "0" });
    assert.deepEqual(mergeResources(cur, {}), cur);
  });

  test("runc's fix-ups: -1 memory without swap unsets swap; idle without shares drops the weight", () => {
    assert.deepEqual(mergeResources(cur, { memory: { limit: -1 } }).memory, { limit: -1, swap: 0, checkBeforeUpdate: true });
    assert.deepEqual(mergeResources(cur, { cpu: { idle: 1 } }).cpu, { quota: 50000, period: 100000, cpus: "0", idle: 1 });
  });

  test("weight and throttle devices are upserted; devices and unified from a document", () => {
    const m = mergeResources(cur, {
      blockIO: { weightDevice: [{ major: 8, minor: 0, leafWeight: 50 }, { major: 8, minor: 16, weight: 200 }], throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 5 }] },
      devices: [{ allow: true, type: "c", major: 10, minor: 229, access: "rw" }],
      unified: { "memory.high": "1" },
    });
    assert.deepEqual(m.blockIO, {
      weightDevice: [
        { major: 8, minor: 0, weight: 100, leafWeight: 50 },
        { major: 8, minor: 16, weight: 200 },
      ],
      throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 5 }],
    });
    assert.deepEqual(m.devices, [{ allow: true, type: "c", major: 10, minor: 229, access: "rw" }]);
    assert.deepEqual(m.unified, { "memory.high": "1" });
  });
});
