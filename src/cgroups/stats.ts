// A container's cgroup statistics in the shape `runc events` prints (runc's types.Stats: cpu, cpuset,
// memory, pids, blkio, hugetlb, intel_rdt, network_interfaces), read as runc's fs (v1 and hybrid hosts) and
// fs2 (v2-only hosts) managers read them. Fields Go would omit (omitempty/omitzero) are left undefined.
// On a hybrid host, hugetlb is read from the v2 cgroup when only v2 has it (as resources.ts writes it).
import * as fs from "fs";
import * as path from "path";
import { errnoCode } from "../errors";
import { type GoJson, sortedMap } from "../gojson";
import { controllerDir, isUnifiedOnly } from "./manager";
import { parseUint, readCgroupFile, readKeyValues, readUint, UINT64_MAX } from "./files";

type Obj = { [key: string]: GoJson };
const nz = (v: bigint): bigint | undefined => (v === 0n ? undefined : v);
const nonEmpty = <T>(l: T[]): T[] | undefined => (l.length === 0 ? undefined : l);
const isMissing = (e: unknown) => errnoCode(e) === "ENOENT" || errnoCode(e) === "ENODEV";

// undefined when the file does not exist (an optional knob), errors otherwise.
function optional<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------
// shared shapes

interface MemoryData {
  usage: bigint;
  max: bigint;
  failcnt: bigint;
  limit: bigint;
}
const ZERO_MEMORY: MemoryData = { usage: 0n, max: 0n, failcnt: 0n, limit: 0n };

function memoryEntry(d: MemoryData): Obj | undefined {
  if (d.usage === 0n && d.max === 0n && d.failcnt === 0n && d.limit === 0n) return undefined; // omitzero
  return { limit: d.limit, usage: nz(d.usage), max: nz(d.max), failcnt: d.failcnt };
}

interface BlkioEntry {
  major: bigint;
  minor: bigint;
  op: string;
  value: bigint;
}
function blkioEntries(l: BlkioEntry[]): GoJson {
  return nonEmpty(l.map((e) => ({ major: nz(e.major), minor: nz(e.minor), op: e.op || undefined, value: nz(e.value) })));
}

// "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" / "full ..." (v2 only).
function psi(dir: string, file: string): Obj | undefined {
  const text = optional(() => readCgroupFile(dir, file));
  if (text === undefined) return undefined;
  const out: Obj = {};
  for (const line of text.split("\n")) {
    const [kind, ...fields] = line.trim().split(/\s+/);
    if (kind !== "some" && kind !== "full") continue;
    const d: Record<string, number | bigint> = { avg10: 0, avg60: 0, avg300: 0, total: 0n };
    for (const f of fields) {
      const [k, v] = f.split("=");
      if (k === "total") d.total = parseUint(v ?? "", path.join(dir, file));
      else if (k === "avg10" || k === "avg60" || k === "avg300") d[k] = Number(v);
    }
    if (d.avg10 !== 0 || d.avg60 !== 0 || d.avg300 !== 0 || d.total !== 0n) out[kind] = { avg10: d.avg10!, avg60: d.avg60!, avg300: d.avg300!, total: d.total! };
  }
  return out;
}

// "0-3,7" -> [0,1,2,3,7]
function cpuList(text: string, where: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(",")) {
    if (!part) continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`unable to parse ${where}: ${JSON.stringify(text.trim())}`);
    const from = Number(m[1]);
    const to = m[2] !== undefined ? Number(m[2]) : from;
    if (from > to) throw new Error(`unable to parse ${where}: invalid values, from > to`);
    for (let i = from; i <= to; i++) out.push(i);
  }
  return out;
}

// The host's huge page sizes as the hugetlb files name them ("2MB", "1GB").
export function hugePageSizes(): string[] {
  let names: string[];
  try {
    names = fs.readdirSync("/sys/kernel/mm/hugepages");
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names.sort()) {
    const m = /^hugepages-(\d+)kB$/.exec(n);
    if (!m) continue;
    const kb = Number(m[1]);
    out.push(kb >= 1 << 20 ? `${kb >> 20}GB` : kb >= 1 << 10 ? `${kb >> 10}MB` : `${kb}KB`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// cgroup v1 (runc's fs)

function memoryDataV1(dir: string, name: string): MemoryData {
  const mod = name ? `memory.${name}` : "memory";
  const usage = optional(() => readUint(dir, `${mod}.usage_in_bytes`));
  if (usage === undefined) {
    if (name) return ZERO_MEMORY; // no swap accounting / no kmem
    throw new Error(`read ${dir}/${mod}.usage_in_bytes: no such file`);
  }
  const limit = name === "kmem" ? (optional(() => readUint(dir, `${mod}.limit_in_bytes`)) ?? 0n) : readUint(dir, `${mod}.limit_in_bytes`);
  return { usage, max: readUint(dir, `${mod}.max_usage_in_bytes`), failcnt: readUint(dir, `${mod}.failcnt`), limit };
}

function memoryV1(dir: string): Obj {
  const raw = readKeyValues(dir, "memory.stat");
  const usage = memoryDataV1(dir, "");
  return {
    cache: nz(raw.get("cache") ?? 0n),
    usage: memoryEntry(usage),
    swap: memoryEntry(memoryDataV1(dir, "memsw")),
    kernel: memoryEntry(memoryDataV1(dir, "kmem")),
    kernelTCP: memoryEntry(memoryDataV1(dir, "kmem.tcp")),
    raw: raw.size ? sortedMap(raw) : undefined,
  };
}

const CLOCK_TICKS = 100n; // USER_HZ, as runc hard-codes it

function cpuV1(cpuDir: string | undefined, acctDir: string | undefined): Obj {
  const out: Obj = {};
  if (acctDir) {
    const stat = readCgroupFile(acctDir, "cpuacct.stat");
    const f = stat.trim().split(/\s+/);
    if (f.length < 4 || f[0] !== "user" || f[2] !== "system") throw new Error(`unable to parse ${acctDir}/cpuacct.stat: ${JSON.stringify(stat)}`);
    const user = (parseUint(f[1]!, `${acctDir}/cpuacct.stat`) * 1_000_000_000n) / CLOCK_TICKS;
    const kernel = (parseUint(f[3]!, `${acctDir}/cpuacct.stat`) * 1_000_000_000n) / CLOCK_TICKS;
    const percpu = readCgroupFile(acctDir, "cpuacct.usage_percpu")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map((v) => parseUint(v, `${acctDir}/cpuacct.usage_percpu`));
    const pk: bigint[] = [];
    const pu: bigint[] = [];
    const all = optional(() => readCgroupFile(acctDir, "cpuacct.usage_all"));
    if (all !== undefined) {
      const [header, ...rows] = all.split("\n");
      if (!header?.startsWith("cpu user system")) throw new Error(`unable to parse ${acctDir}/cpuacct.usage_all: ${JSON.stringify(header)}`);
      for (const row of rows) {
        const c = row.split(" ");
        if (c.length < 3) continue;
        pu.push(parseUint(c[1]!, `${acctDir}/cpuacct.usage_all`));
        pk.push(parseUint(c[2]!, `${acctDir}/cpuacct.usage_all`));
      }
    }
    out.usage = {
      total: nz(readUint(acctDir, "cpuacct.usage")),
      percpu: nonEmpty(percpu),
      percpu_kernel: nonEmpty(pk),
      percpu_user: nonEmpty(pu),
      kernel,
      user,
    };
  }
  if (cpuDir) {
    const s = optional(() => readKeyValues(cpuDir, "cpu.stat")) ?? new Map<string, bigint>();
    out.throttling = throttling(s.get("nr_periods") ?? 0n, s.get("nr_throttled") ?? 0n, s.get("throttled_time") ?? 0n);
  }
  return out;
}

function throttling(periods: bigint, throttled: bigint, time: bigint): Obj | undefined {
  if (periods === 0n && throttled === 0n && time === 0n) return undefined;
  return { periods: nz(periods), throttledPeriods: nz(throttled), throttledTime: nz(time) };
}

function cpusetV1(dir: string | undefined): Obj {
  const num = (f: string): bigint => (dir ? (optional(() => readUint(dir, `cpuset.${f}`)) ?? 0n) : 0n);
  const list = (f: string) => (dir ? optional(() => readCgroupFile(dir, `cpuset.${f}`)) : undefined);
  const cpus = list("cpus");
  const mems = list("mems");
  const relax = dir ? optional(() => readCgroupFile(dir, "cpuset.sched_relax_domain_level").trim()) : undefined;
  return {
    cpus: cpus !== undefined ? nonEmpty(cpuList(cpus, `${dir}/cpuset.cpus`)) : undefined,
    cpu_exclusive: num("cpu_exclusive"),
    mems: mems !== undefined ? nonEmpty(cpuList(mems, `${dir}/cpuset.mems`)) : undefined,
    mem_hardwall: num("mem_hardwall"),
    mem_exclusive: num("mem_exclusive"),
    memory_migrate: num("memory_migrate"),
    memory_spread_page: num("memory_spread_page"),
    memory_spread_slab: num("memory_spread_slab"),
    memory_pressure: num("memory_pressure"),
    sched_load_balance: num("sched_load_balance"),
    sched_relax_domain_level: relax && /^-?\d+$/.test(relax) ? BigInt(relax) : 0n,
  };
}

function pidsStats(dir: string | undefined, countProcs: boolean): Obj {
  if (!dir || !fs.existsSync(dir)) return {};
  const current = optional(() => readUint(dir, "pids.current"));
  if (current === undefined) {
    if (!countProcs) return {};
    const n = BigInt(readCgroupFile(dir, "cgroup.procs").split("\n").filter(Boolean).length);
    return { current: nz(n) };
  }
  const max = readUint(dir, "pids.max");
  return { current: nz(current), limit: nz(max === UINT64_MAX ? 0n : max) };
}

// "8:0 Read 1282048" lines ("Total N" lines skipped), as runc's getBlkioStat.
function blkioFile(dir: string, file: string): BlkioEntry[] | undefined {
  const text = optional(() => readCgroupFile(dir, file));
  if (text === undefined) return undefined;
  const out: BlkioEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(/[ :]/).filter(Boolean);
    if (f.length === 0 || (f.length === 2 && f[0] === "Total")) continue;
    if (f.length < 3) throw new Error(`unable to parse ${dir}/${file}: malformed line ${JSON.stringify(line)}`);
    const where = path.join(dir, file);
    out.push({ major: parseUint(f[0]!, where), minor: parseUint(f[1]!, where), op: f.length === 4 ? f[2]! : "", value: parseUint(f[f.length === 4 ? 3 : 2]!, where) });
  }
  return out;
}

// runc's order of preference: BFQ debug files, BFQ, CFQ, throttle (recursive), throttle. The first group
// whose first file exists is used.
const BLKIO_GROUPS: [string, string][][] = [
  [
    ["blkio.bfq.sectors_recursive", "sectorsRecursive"],
    ["blkio.bfq.io_service_time_recursive", "ioServiceTimeRecursive"],
    ["blkio.bfq.io_wait_time_recursive", "ioWaitTimeRecursive"],
    ["blkio.bfq.io_merged_recursive", "ioMergedRecursive"],
    ["blkio.bfq.io_queued_recursive", "ioQueueRecursive"],
    ["blkio.bfq.time_recursive", "ioTimeRecursive"],
    ["blkio.bfq.io_serviced_recursive", "ioServicedRecursive"],
    ["blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive"],
  ],
  [
    ["blkio.bfq.io_serviced_recursive", "ioServicedRecursive"],
    ["blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive"],
  ],
  [
    ["blkio.sectors_recursive", "sectorsRecursive"],
    ["blkio.io_service_time_recursive", "ioServiceTimeRecursive"],
    ["blkio.io_wait_time_recursive", "ioWaitTimeRecursive"],
    ["blkio.io_merged_recursive", "ioMergedRecursive"],
    ["blkio.io_queued_recursive", "ioQueueRecursive"],
    ["blkio.time_recursive", "ioTimeRecursive"],
    ["blkio.io_serviced_recursive", "ioServicedRecursive"],
    ["blkio.io_service_bytes_recursive", "ioServiceBytesRecursive"],
  ],
  [
    ["blkio.throttle.io_serviced_recursive", "ioServicedRecursive"],
    ["blkio.throttle.io_service_bytes_recursive", "ioServiceBytesRecursive"],
  ],
  [
    ["blkio.throttle.io_serviced", "ioServicedRecursive"],
    ["blkio.throttle.io_service_bytes", "ioServiceBytesRecursive"],
  ],
];
const BLKIO_FIELDS = ["ioServiceBytesRecursive", "ioServicedRecursive", "ioQueueRecursive", "ioServiceTimeRecursive", "ioWaitTimeRecursive", "ioMergedRecursive", "ioTimeRecursive", "sectorsRecursive"];

function blkioV1(dir: string | undefined): Obj {
  const found: Record<string, BlkioEntry[]> = {};
  if (dir) {
    for (const group of BLKIO_GROUPS) {
      const first = blkioFile(dir, group[0]![0]);
      if (first === undefined) continue;
      found[group[0]![1]] = first;
      for (const [file, field] of group.slice(1)) {
        const e = blkioFile(dir, file);
        if (e === undefined) throw new Error(`read ${dir}/${file}: no such file`);
        found[field] = e;
      }
      break;
    }
  }
  return Object.fromEntries(BLKIO_FIELDS.map((f) => [f, blkioEntries(found[f] ?? [])]));
}

function hugetlbV1(dir: string): Obj {
  const out: Record<string, Obj> = {};
  for (const size of hugePageSizes()) {
    const prefix = optional(() => readUint(dir, `hugetlb.${size}.rsvd.usage_in_bytes`)) !== undefined ? `hugetlb.${size}.rsvd` : `hugetlb.${size}`;
    const usage = optional(() => readUint(dir, `${prefix}.usage_in_bytes`));
    if (usage === undefined) continue;
    out[size] = { usage: nz(usage), max: nz(readUint(dir, `${prefix}.max_usage_in_bytes`)), failcnt: readUint(dir, `${prefix}.failcnt`) };
  }
  return sortedMap(out);
}

// ---------------------------------------------------------------------------------------------------------
// cgroup v2 (runc's fs2)

function memoryDataV2(dir: string, name: string): MemoryData | undefined {
  const mod = name ? `memory.${name}` : "memory";
  const usage = optional(() => readUint(dir, `${mod}.current`));
  if (usage === undefined) return undefined;
  return { usage, limit: readUint(dir, `${mod}.max`), max: optional(() => readUint(dir, `${mod}.peak`)) ?? 0n, failcnt: 0n };
}

function memoryV2(dir: string): Obj {
  const raw = optional(() => readKeyValues(dir, "memory.stat"));
  const out: Obj = {};
  if (raw) {
    const usage = memoryDataV2(dir, "");
    if (!usage) throw new Error(`read ${dir}/memory.current: no such file`);
    const swapOnly = memoryDataV2(dir, "swap") ?? ZERO_MEMORY;
    // v1 reports memory+swap: so does runc on v2 (max usage unknown: 0)
    const swap: MemoryData = { usage: swapOnly.usage + usage.usage, limit: swapOnly.limit === UINT64_MAX ? UINT64_MAX : swapOnly.limit + usage.limit, max: 0n, failcnt: swapOnly.failcnt };
    out.cache = nz(raw.get("file") ?? 0n);
    out.usage = memoryEntry(usage);
    out.swap = memoryEntry(swap);
    out.raw = raw.size ? sortedMap(raw) : undefined;
  }
  out.psi = psi(dir, "memory.pressure");
  return out;
}

function cpuV2(dir: string): Obj {
  const s = optional(() => readKeyValues(dir, "cpu.stat")) ?? new Map<string, bigint>();
  const g = (k: string) => s.get(k) ?? 0n;
  const total = g("usage_usec") * 1000n;
  const user = g("user_usec") * 1000n;
  const kernel = g("system_usec") * 1000n;
  return {
    usage: total === 0n && user === 0n && kernel === 0n ? undefined : { total: nz(total), kernel, user },
    throttling: throttling(g("nr_periods"), g("nr_throttled"), g("throttled_usec") * 1000n),
    psi: psi(dir, "cpu.pressure"),
  };
}

// io.stat "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ..." in v1's terms (Read/Write per device).
function blkioV2(dir: string): Obj {
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  const text = optional(() => readCgroupFile(dir, "io.stat")) ?? "";
  const where = path.join(dir, "io.stat");
  for (const line of text.split("\n").sort()) {
    const [dev, ...items] = line.trim().split(/\s+/);
    const d = /^(\d+):(\d+)$/.exec(dev ?? "");
    if (!d) continue;
    const [major, minor] = [BigInt(d[1]!), BigInt(d[2]!)];
    for (const item of items) {
      const [k, v] = item.split("=");
      const to = k === "rbytes" || k === "wbytes" ? bytes : k === "rios" || k === "wios" ? ios : undefined;
      if (!to || v === undefined) continue;
      to.push({ major, minor, op: k!.startsWith("r") ? "Read" : "Write", value: parseUint(v, where) });
    }
  }
  const out: Obj = Object.fromEntries(BLKIO_FIELDS.map((f) => [f, undefined]));
  out.ioServiceBytesRecursive = blkioEntries(bytes);
  out.ioServicedRecursive = blkioEntries(ios);
  out.psi = psi(dir, "io.pressure");
  return out;
}

function hugetlbV2(dir: string): Obj {
  const out: Record<string, Obj> = {};
  for (const size of hugePageSizes()) {
    const prefix = `hugetlb.${size}`;
    const usage = optional(() => readUint(dir, `${prefix}.rsvd.current`)) ?? optional(() => readUint(dir, `${prefix}.current`));
    if (usage === undefined) continue;
    const events = optional(() => readKeyValues(dir, `${prefix}.events`));
    out[size] = { usage: nz(usage), failcnt: events?.get("max") ?? 0n };
  }
  return sortedMap(out);
}

// ---------------------------------------------------------------------------------------------------------

export function collectStats(dirs: Record<string, string>): Obj {
  let cpu: Obj, cpuset: Obj, memory: Obj, pids: Obj, blkio: Obj, hugetlb: Obj;
  if (isUnifiedOnly(dirs)) {
    const d = dirs[""]!;
    cpu = cpuV2(d);
    cpuset = cpusetV1(undefined); // runc's fs2 reports no cpuset statistics
    memory = memoryV2(d);
    pids = pidsStats(d, true);
    blkio = blkioV2(d);
    hugetlb = hugetlbV2(d);
  } else {
    const v1 = (c: string) => {
      const loc = controllerDir(dirs, c);
      return loc?.version === 1 && fs.existsSync(loc.dir) ? loc.dir : undefined;
    };
    cpu = cpuV1(v1("cpu"), v1("cpuacct"));
    cpuset = cpusetV1(v1("cpuset"));
    const mem = v1("memory");
    memory = mem ? memoryV1(mem) : {};
    pids = pidsStats(v1("pids"), false);
    blkio = blkioV1(v1("blkio"));
    const h = controllerDir(dirs, "hugetlb");
    hugetlb = h ? (h.version === 1 ? hugetlbV1(h.dir) : hugetlbV2(h.dir)) : {};
  }
  return { cpu, cpuset, memory, pids, blkio, hugetlb, intel_rdt: {}, network_interfaces: null };
}

// The OOM kill count: v1 memory.oom_control "oom_kill", v2 memory.events "oom_kill"; undefined without a
// memory controller.
export function oomKillCount(dirs: Record<string, string>): bigint | undefined {
  const loc = controllerDir(dirs, "memory");
  if (!loc) return undefined;
  try {
    return readKeyValues(loc.dir, loc.version === 1 ? "memory.oom_control" : "memory.events").get("oom_kill") ?? 0n;
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}
