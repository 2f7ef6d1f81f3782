// cgroup v1 writers, as runc's fs package (memory.go, cpu.go, cpuset.go, blkio.go). Values of 0 mean
// "unset" and are not written, as in runc.
import type { LinuxBlockIO, LinuxCPU, LinuxMemory } from "../spec/schema";
import { num } from "./files";
import { checkMemoryUsage, type Writer } from "./resources";

const M = "linux.resources.memory";
const C = "linux.resources.cpu";
const B = "linux.resources.blockIO";

// Old kernels mounted cpuset with "noprefix": cpus/mems without the "cpuset." prefix (runc's cpusetFile).
export function cpuset(w: Writer, c: LinuxCPU): void {
  const file = (name: string) => (w.exists(`cpuset.${name}`) || !w.exists(name) ? `cpuset.${name}` : name);
  if (c.cpus) w.write(`${C}.cpus`, file("cpus"), c.cpus);
  if (c.mems) w.write(`${C}.mems`, file("mems"), c.mems);
}

// The order of the memory and memory+swap limits matters: the kernel refuses memsw below the memory limit,
// so when raising (or unlimiting) swap it goes first, otherwise the memory limit does (runc's
// setMemoryAndSwap). -1 memory with no swap given unlimits swap too when the kernel accounts it.
export function memory(w: Writer, m: LinuxMemory): void {
  checkMemoryUsage(w, m, "memory.usage_in_bytes");
  const limit = m.limit ?? 0;
  let swap = m.swap ?? 0;
  if (limit === -1 && swap === 0 && w.exists("memory.memsw.limit_in_bytes")) swap = -1;
  const setMemory = () => {
    if (limit === 0) return;
    const e = w.attempt("memory.limit_in_bytes", num(limit));
    if (!e) return;
    if (e.code === "EBUSY") {
      const usage = w.readUint(`${M}.limit`, "memory.usage_in_bytes");
      const peak = w.readUint(`${M}.limit`, "memory.max_usage_in_bytes");
      throw new Error(`${M}.limit: unable to set memory limit to ${num(limit)} (current usage: ${usage}, peak usage: ${peak}) in ${e.file}`);
    }
    throw w.fail(`${M}.limit`, e);
  };
  const setSwap = () => {
    if (swap !== 0) w.write(`${M}.swap`, "memory.memsw.limit_in_bytes", num(swap));
  };
  if (limit !== 0 && swap !== 0 && (swap === -1 || w.readUint(`${M}.limit`, "memory.limit_in_bytes") < BigInt(swap))) {
    setSwap();
    setMemory();
  } else {
    setMemory();
    setSwap();
  }
  if (m.reservation) w.write(`${M}.reservation`, "memory.soft_limit_in_bytes", num(m.reservation));
  if (m.disableOOMKiller) w.write(`${M}.disableOOMKiller`, "memory.oom_control", "1");
  if (m.swappiness !== undefined && m.swappiness < 2 ** 64) {
    // uint64 -1 (2^64-1, which a double reads as 2^64) leaves the kernel's default, as runc
    if (m.swappiness > 100) throw new Error(`${M}.swappiness: invalid memory swappiness value: ${num(m.swappiness)} (valid range is 0-100)`);
    w.write(`${M}.swappiness`, "memory.swappiness", num(m.swappiness));
  }
  // runc ignores useHierarchy; tsrun writes it (current kernels only take 1: hierarchy is always on).
  if (m.useHierarchy !== undefined) {
    const want = m.useHierarchy ? "1" : "0";
    if (w.read(`${M}.useHierarchy`, "memory.use_hierarchy").trim() !== want) w.write(`${M}.useHierarchy`, "memory.use_hierarchy", want);
  }
}

// runc's CpuGroup.Set: a new period or burst the kernel refuses (EINVAL: it would break the current quota)
// is retried after the quota is written.
export function cpu(w: Writer, c: LinuxCPU): void {
  if (c.shares) {
    w.write(`${C}.shares`, "cpu.shares", num(c.shares));
    const got = w.readUint(`${C}.shares`, "cpu.shares");
    if (BigInt(c.shares) > got) throw new Error(`${C}.shares: the maximum allowed cpu-shares is ${got} (${w.dir}/cpu.shares)`);
    if (BigInt(c.shares) < got) throw new Error(`${C}.shares: the minimum allowed cpu-shares is ${got} (${w.dir}/cpu.shares)`);
  }
  const quota = c.quota ?? 0;
  let period = "";
  if (c.period) {
    const e = w.attempt("cpu.cfs_period_us", num(c.period));
    if (e && (e.code !== "EINVAL" || quota === 0)) throw w.fail(`${C}.period`, e);
    if (e) period = num(c.period);
  }
  let burst = "";
  if (c.burst !== undefined) {
    const e = w.attempt("cpu.cfs_burst_us", num(c.burst));
    // runc skips burst where the kernel has no cpu.cfs_burst_us (before 5.14)
    if (e && e.code !== "ENOENT") {
      if (e.code !== "EINVAL" || quota === 0) throw w.fail(`${C}.burst`, e);
      burst = num(c.burst);
    } else if (e) {
      w.warn(`${C}.burst: ${e.file} does not exist (kernel without CFS burst); ignored as runc does`);
    }
  }
  if (quota !== 0) {
    w.write(`${C}.quota`, "cpu.cfs_quota_us", num(quota));
    if (period) w.write(`${C}.period`, "cpu.cfs_period_us", period);
    if (burst) w.write(`${C}.burst`, "cpu.cfs_burst_us", burst);
  }
  if (c.idle !== undefined) w.write(`${C}.idle`, "cpu.idle", num(c.idle));
  rtSched(w, c);
}

// Real-time bandwidth: same dance between period and runtime.
function rtSched(w: Writer, c: LinuxCPU): void {
  const runtime = c.realtimeRuntime ?? 0;
  let period = "";
  if (c.realtimePeriod) {
    const e = w.attempt("cpu.rt_period_us", num(c.realtimePeriod));
    if (e && (e.code !== "EINVAL" || runtime === 0)) throw w.fail(`${C}.realtimePeriod`, e);
    if (e) period = num(c.realtimePeriod);
  }
  if (runtime !== 0) {
    w.write(`${C}.realtimeRuntime`, "cpu.rt_runtime_us", num(runtime));
    if (period) w.write(`${C}.realtimePeriod`, "cpu.rt_period_us", period);
  }
}

// blkio.weight where the kernel has CFQ's files, else BFQ's blkio.bfq.weight (runc's detectWeightFilenames).
export function blkio(w: Writer, b: LinuxBlockIO): void {
  const cfq = w.exists("blkio.weight");
  const weightFile = cfq ? "blkio.weight" : "blkio.bfq.weight";
  const weightDeviceFile = cfq ? "blkio.weight_device" : "blkio.bfq.weight_device";
  if (b.weight) w.write(`${B}.weight`, weightFile, String(b.weight));
  if (b.leafWeight) w.write(`${B}.leafWeight`, "blkio.leaf_weight", String(b.leafWeight));
  (b.weightDevice ?? []).forEach((d, i) => {
    if (d.weight) w.write(`${B}.weightDevice[${i}].weight`, weightDeviceFile, `${d.major}:${d.minor} ${d.weight}`);
    if (d.leafWeight) w.write(`${B}.weightDevice[${i}].leafWeight`, "blkio.leaf_weight_device", `${d.major}:${d.minor} ${d.leafWeight}`);
  });
  const throttles: [keyof LinuxBlockIO, string][] = [
    ["throttleReadBpsDevice", "blkio.throttle.read_bps_device"],
    ["throttleWriteBpsDevice", "blkio.throttle.write_bps_device"],
    ["throttleReadIOPSDevice", "blkio.throttle.read_iops_device"],
    ["throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"],
  ];
  for (const [key, file] of throttles) {
    const list = (b[key] ?? []) as { major: number; minor: number; rate: number }[];
    list.forEach((t, i) => w.write(`${B}.${key}[${i}]`, file, `${t.major}:${t.minor} ${num(t.rate)}`));
  }
}
