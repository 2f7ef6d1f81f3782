// cpu: shares/weight, CFS quota, period and burst, idle, real-time bandwidth (runc's fs/cpu.go, fs2/cpu.go
// with runc's shares -> weight conversion), throttling statistics; cpuacct (v1): usage statistics (on v2 they
// are in cpu.stat).
import type { LinuxCPU, LinuxResources } from "../../spec/schema";
import type { Controller, Location, Writer } from "../controller";
import { nz } from "../controller";
import { cpuSharesToWeight } from "../convert";
import { num, parseUint, readCgroupFile, readKeyValues, readUint } from "../files";
import { nonEmpty, nzBig, type Obj, optional, psi, type Stats } from "../stats";

const C = "linux.resources.cpu";

// v1, runc's CpuGroup.Set: a new period or burst the kernel refuses (EINVAL: it would break the current
// quota) is retried after the quota is written.
function applyV1(w: Writer, c: LinuxCPU): void {
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

// Real-time bandwidth (v1): same dance between period and runtime.
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

// v2: cpu.weight from the shares, cpu.max "QUOTA|max PERIOD" (period defaults to 100000), cpu.max.burst, cpu.idle.
function applyV2(w: Writer, c: LinuxCPU): void {
  if (c.idle !== undefined) w.write(`${C}.idle`, "cpu.idle", num(c.idle));
  const weight = cpuSharesToWeight(c.shares ?? 0);
  if (weight !== 0) w.write(`${C}.shares`, "cpu.weight", String(weight));
  const quota = c.quota ?? 0;
  let burst = "";
  if (c.burst !== undefined) {
    const e = w.attempt("cpu.max.burst", num(c.burst));
    if (e && (e.code !== "EINVAL" || quota === 0)) throw w.fail(`${C}.burst`, e);
    if (e) burst = num(c.burst);
  }
  if (quota !== 0 || (c.period ?? 0) !== 0) {
    const value = `${quota > 0 ? num(quota) : "max"} ${num(c.period || 100000)}`;
    w.write(quota !== 0 ? `${C}.quota` : `${C}.period`, "cpu.max", value);
    if (burst) w.write(`${C}.burst`, "cpu.max.burst", burst);
  }
}

// ---------------------------------------------------------------------------------------------------------
// statistics

function throttling(periods: bigint, throttled: bigint, time: bigint): Obj | undefined {
  if (periods === 0n && throttled === 0n && time === 0n) return undefined;
  return { periods: nzBig(periods), throttledPeriods: nzBig(throttled), throttledTime: nzBig(time) };
}

function statsV1(dir: string, s: Stats): void {
  const st = optional(() => readKeyValues(dir, "cpu.stat")) ?? new Map<string, bigint>();
  s.cpu.throttling = throttling(st.get("nr_periods") ?? 0n, st.get("nr_throttled") ?? 0n, st.get("throttled_time") ?? 0n);
}

function statsV2(dir: string, s: Stats): void {
  const st = optional(() => readKeyValues(dir, "cpu.stat")) ?? new Map<string, bigint>();
  const g = (k: string) => st.get(k) ?? 0n;
  const total = g("usage_usec") * 1000n;
  const user = g("user_usec") * 1000n;
  const kernel = g("system_usec") * 1000n;
  s.cpu = {
    usage: total === 0n && user === 0n && kernel === 0n ? undefined : { total: nzBig(total), kernel, user },
    throttling: throttling(g("nr_periods"), g("nr_throttled"), g("throttled_usec") * 1000n),
    psi: psi(dir, "cpu.pressure"),
  };
}

const CLOCK_TICKS = 100n; // USER_HZ, as runc hard-codes it

function acctStats(dir: string, s: Stats): void {
  const stat = readCgroupFile(dir, "cpuacct.stat");
  const f = stat.trim().split(/\s+/);
  if (f.length < 4 || f[0] !== "user" || f[2] !== "system") throw new Error(`unable to parse ${dir}/cpuacct.stat: ${JSON.stringify(stat)}`);
  const user = (parseUint(f[1]!, `${dir}/cpuacct.stat`) * 1_000_000_000n) / CLOCK_TICKS;
  const kernel = (parseUint(f[3]!, `${dir}/cpuacct.stat`) * 1_000_000_000n) / CLOCK_TICKS;
  const percpu = readCgroupFile(dir, "cpuacct.usage_percpu")
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((v) => parseUint(v, `${dir}/cpuacct.usage_percpu`));
  const pk: bigint[] = [];
  const pu: bigint[] = [];
  const all = optional(() => readCgroupFile(dir, "cpuacct.usage_all"));
  if (all !== undefined) {
    const [header, ...rows] = all.split("\n");
    if (!header?.startsWith("cpu user system")) throw new Error(`unable to parse ${dir}/cpuacct.usage_all: ${JSON.stringify(header)}`);
    for (const row of rows) {
      const c = row.split(" ");
      if (c.length < 3) continue;
      pu.push(parseUint(c[1]!, `${dir}/cpuacct.usage_all`));
      pk.push(parseUint(c[2]!, `${dir}/cpuacct.usage_all`));
    }
  }
  s.cpu.usage = {
    total: nzBig(readUint(dir, "cpuacct.usage")),
    percpu: nonEmpty(percpu),
    percpu_kernel: nonEmpty(pk),
    percpu_user: nonEmpty(pu),
    kernel,
    user,
  };
}

export const cpu: Controller = {
  name: "cpu",
  setting: C,
  needed: (r: LinuxResources) => {
    const c = r.cpu;
    return !!c && (nz(c.shares) || nz(c.quota) || nz(c.period) || c.burst !== undefined || c.idle !== undefined || nz(c.realtimeRuntime) || nz(c.realtimePeriod));
  },
  apply: (w, r) => (w.version === 1 ? applyV1(w, r.cpu!) : applyV2(w, r.cpu!)),
  stats: (loc: Location | undefined, s) => {
    if (loc?.version === 1) statsV1(loc.dir, s);
    else if (loc) statsV2(loc.dir, s);
  },
};

// Statistics only: nothing in linux.resources is cpuacct's. Read before cpu's (usage comes first).
export const cpuacct: Controller = {
  name: "cpuacct",
  setting: C,
  needed: () => false,
  apply: () => {},
  stats: (loc, s) => {
    if (loc?.version === 1) acctStats(loc.dir, s);
  },
};
