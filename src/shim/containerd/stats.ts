// A container's cgroup statistics as containerd's runc shim returns them from Stats, the shapes `ctr task
// metrics` and the CRI decode: on a cgroup v2 host (unified), io.containerd.cgroups.v2.Metrics read from the
// container's cgroup directory as containerd/cgroups' cgroup2 Manager.Stat reads it (metricsV2FromDir);
// otherwise (v1, hybrid) io.containerd.cgroups.v1.Metrics from tsrun's stats (runc's `events` types.Stats as
// plain JSON: cpu.usage.total, memory.raw, blkio.ioServiceBytesRecursive…; metricsFromStats).
import { create } from "@bufbuild/protobuf";
import * as fs from "fs";
import * as path from "path";
import type { JsonValue, Stats } from "../../api";
import { hugePageSizes } from "../../cgroups/controllers/hugetlb";
import { readCgroupFile, readKeyValues, UINT64_MAX } from "../../cgroups/files";
import type { CgroupLayout } from "../../cgroups/layout";
import { type Metrics, MetricsSchema } from "./gen/cgroups/v1/metrics_pb";
import * as v2 from "./gen/cgroups/v2/metrics_pb";
import { hostLayout } from "./oom";

export const V1_TYPE = "io.containerd.cgroups.v1.Metrics";
export const V2_TYPE = "io.containerd.cgroups.v2.Metrics";

type Obj = { [k: string]: JsonValue };
const obj = (v: JsonValue | undefined): Obj => (v !== null && typeof v === "object" && !Array.isArray(v) ? v : {});
const u64 = (v: JsonValue | undefined): bigint => (typeof v === "number" && v > 0 ? BigInt(Math.trunc(v)) : 0n);
const mem = (v: JsonValue | undefined) => {
  const e = obj(v);
  return { limit: u64(e.limit), usage: u64(e.usage), max: u64(e.max), failcnt: u64(e.failcnt) };
};

export function metricsFromStats(s: Stats): Metrics {
  const cpu = obj(s.cpu);
  const usage = obj(cpu.usage);
  const thr = obj(cpu.throttling);
  const memory = obj(s.memory);
  const raw = obj(memory.raw);
  const r = (k: string) => u64(raw[k]);
  const pids = obj(s.pids);
  const blkio = obj(s.blkio);
  const entries = (k: string) => (Array.isArray(blkio[k]) ? (blkio[k] as JsonValue[]) : []).map((x) => {
    const e = obj(x);
    return { op: typeof e.op === "string" ? e.op : "", major: u64(e.major), minor: u64(e.minor), value: u64(e.value) };
  });
  return create(MetricsSchema, {
    pids: { current: u64(pids.current), limit: u64(pids.limit) },
    cpu: {
      usage: { total: u64(usage.total), kernel: u64(usage.kernel), user: u64(usage.user), perCpu: (Array.isArray(usage.percpu) ? usage.percpu : []).map(u64) },
      throttling: { periods: u64(thr.periods), throttledPeriods: u64(thr.throttled_periods), throttledTime: u64(thr.throttled_time) },
    },
    memory: {
      cache: r("cache"),
      rss: r("rss"),
      rssHuge: r("rss_huge"),
      mappedFile: r("mapped_file"),
      dirty: r("dirty"),
      writeback: r("writeback"),
      pgPgIn: r("pgpgin"),
      pgPgOut: r("pgpgout"),
      pgFault: r("pgfault"),
      pgMajFault: r("pgmajfault"),
      inactiveAnon: r("inactive_anon"),
      activeAnon: r("active_anon"),
      inactiveFile: r("inactive_file"),
      activeFile: r("active_file"),
      unevictable: r("unevictable"),
      hierarchicalMemoryLimit: r("hierarchical_memory_limit"),
      hierarchicalSwapLimit: r("hierarchical_memsw_limit"),
      totalCache: r("total_cache"),
      totalRss: r("total_rss"),
      totalRssHuge: r("total_rss_huge"),
      totalMappedFile: r("total_mapped_file"),
      totalDirty: r("total_dirty"),
      totalWriteback: r("total_writeback"),
      totalPgPgIn: r("total_pgpgin"),
      totalPgPgOut: r("total_pgpgout"),
      totalPgFault: r("total_pgfault"),
      totalPgMajFault: r("total_pgmajfault"),
      totalInactiveAnon: r("total_inactive_anon"),
      totalActiveAnon: r("total_active_anon"),
      totalInactiveFile: r("total_inactive_file"),
      totalActiveFile: r("total_active_file"),
      totalUnevictable: r("total_unevictable"),
      usage: mem(memory.usage),
      swap: mem(memory.swap),
      kernel: mem(memory.kernel),
      kernelTcp: mem(memory.kernelTCP),
    },
    blkio: {
      ioServiceBytesRecursive: entries("ioServiceBytesRecursive"),
      ioServicedRecursive: entries("ioServicedRecursive"),
      ioQueuedRecursive: entries("ioQueueRecursive"),
      ioServiceTimeRecursive: entries("ioServiceTimeRecursive"),
      ioWaitTimeRecursive: entries("ioWaitTimeRecursive"),
      ioMergedRecursive: entries("ioMergedRecursive"),
      ioTimeRecursive: entries("ioTimeRecursive"),
      sectorsRecursive: entries("sectorsRecursive"),
    },
    hugetlb: Object.entries(obj(s.hugetlb)).map(([pagesize, v]) => {
      const h = obj(v);
      return { pagesize, usage: u64(h.usage), max: u64(h.max), failcnt: u64(h.failcnt) };
    }),
  });
}

// The cgroup v2 directory of process `pid` when the host is unified (containerd's shim reports v2 metrics
// only then; on a hybrid host it reports v1), else undefined.
export function v2CgroupDir(pid: number, host?: Pick<CgroupLayout, "mode" | "unified">): string | undefined {
  let layout = host;
  try {
    layout ??= hostLayout();
  } catch {
    return undefined;
  }
  if (layout.mode !== "v2" || !layout.unified) return undefined;
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8");
  } catch {
    return undefined;
  }
  const m = /^0::(\/.*)$/m.exec(text);
  if (!m) return undefined;
  const { mountPoint, root } = layout.unified;
  const rel = root !== "/" && (m[1] === root || m[1]!.startsWith(`${root}/`)) ? m[1]!.slice(root.length) : m[1]!;
  return path.join(mountPoint, rel);
}

// cgroup2's readers: a missing or unreadable file reads as nothing (containerd's getStatFileContentUint64
// reads 0; "max" reads as 2^64-1).
function text(dir: string, file: string): string | undefined {
  try {
    return readCgroupFile(dir, file);
  } catch {
    return undefined;
  }
}
function uint(dir: string, file: string): bigint {
  const t = text(dir, file)?.trim();
  if (t === undefined) return 0n;
  if (t === "max") return UINT64_MAX;
  return /^\d+$/.test(t) ? BigInt(t) : 0n;
}
function keyValues(dir: string, file: string): Map<string, bigint> | undefined {
  try {
    return readKeyValues(dir, file);
  } catch {
    return undefined;
  }
}
function psiOf(dir: string, file: string): v2.PSIStats | undefined {
  const t = text(dir, file);
  if (t === undefined) return undefined;
  const out = create(v2.PSIStatsSchema);
  for (const line of t.split("\n")) {
    const [kind, ...fields] = line.trim().split(/\s+/);
    if (kind !== "some" && kind !== "full") continue;
    const d = create(v2.PSIDataSchema);
    for (const f of fields) {
      const [k, v = ""] = f.split("=", 2);
      if (k === "avg10" || k === "avg60" || k === "avg300") d[k] = Number(v) || 0;
      else if (k === "total" && /^\d+$/.test(v)) d.total = BigInt(v);
    }
    out[kind] = d;
  }
  return out;
}
function rdma(dir: string, file: string): v2.RdmaEntry[] {
  const out: v2.RdmaEntry[] = [];
  for (const line of (text(dir, file) ?? "").split("\n")) {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 3) continue;
    const e = create(v2.RdmaEntrySchema, { device: parts[0]! });
    for (const kv of parts.slice(1)) {
      const [k, v = ""] = kv.split("=", 2);
      const n = v === "max" ? 0xffffffff : /^\d+$/.test(v) && Number(v) <= 0xffffffff ? Number(v) : undefined;
      if (n === undefined) continue;
      if (k === "hca_handle") e.hcaHandles = n;
      else if (k === "hca_object") e.hcaObjects = n;
    }
    out.push(e);
  }
  return out;
}

const MEMORY_STAT_FIELDS = {
  anon: "anon", file: "file", kernel_stack: "kernelStack", slab: "slab", sock: "sock", shmem: "shmem", file_mapped: "fileMapped",
  file_dirty: "fileDirty", file_writeback: "fileWriteback", anon_thp: "anonThp", inactive_anon: "inactiveAnon", active_anon: "activeAnon",
  inactive_file: "inactiveFile", active_file: "activeFile", unevictable: "unevictable", slab_reclaimable: "slabReclaimable",
  slab_unreclaimable: "slabUnreclaimable", pgfault: "pgfault", pgmajfault: "pgmajfault", workingset_refault: "workingsetRefault",
  workingset_activate: "workingsetActivate", workingset_nodereclaim: "workingsetNodereclaim", pgrefill: "pgrefill", pgscan: "pgscan",
  pgsteal: "pgsteal", pgactivate: "pgactivate", pgdeactivate: "pgdeactivate", pglazyfree: "pglazyfree", pglazyfreed: "pglazyfreed",
  thp_fault_alloc: "thpFaultAlloc", thp_collapse_alloc: "thpCollapseAlloc", workingset_refault_anon: "workingsetRefaultAnon",
  workingset_refault_file: "workingsetRefaultFile", workingset_activate_anon: "workingsetActivateAnon", workingset_activate_file: "workingsetActivateFile",
} as const satisfies Record<string, keyof v2.MemoryStat>;

// cgroup2's Manager.Stat of directory `dir`: pids, cpu, memory (memory.stat and the usage files), memory
// events (left out when memory.events is missing), io (io.stat per device), rdma and hugetlb (each of the
// host's page sizes, or `pageSizes`).
export function metricsV2FromDir(dir: string, pageSizes: string[] = hugePageSizes()): v2.Metrics {
  const cpu = keyValues(dir, "cpu.stat") ?? new Map<string, bigint>();
  const c = (k: string) => cpu.get(k) ?? 0n;
  const ms = keyValues(dir, "memory.stat") ?? new Map<string, bigint>();
  const memory = create(v2.MemoryStatSchema, {
    usage: uint(dir, "memory.current"),
    usageLimit: uint(dir, "memory.max"),
    maxUsage: uint(dir, "memory.peak"),
    swapUsage: uint(dir, "memory.swap.current"),
    swapLimit: uint(dir, "memory.swap.max"),
    swapMaxUsage: uint(dir, "memory.swap.peak"),
  });
  for (const [k, field] of Object.entries(MEMORY_STAT_FIELDS)) memory[field] = ms.get(k) ?? 0n;
  const psiMem = psiOf(dir, "memory.pressure");
  if (psiMem) memory.psi = psiMem;
  const events = keyValues(dir, "memory.events");
  const io = create(v2.IOStatSchema);
  for (const line of (text(dir, "io.stat") ?? "").split("\n")) {
    const parts = line.split(" ");
    const d = /^(\d+):(\d+)$/.exec(parts[0] ?? "");
    if (parts.length < 2 || !d) continue;
    const e = create(v2.IOEntrySchema, { major: BigInt(d[1]!), minor: BigInt(d[2]!) });
    for (const kv of parts.slice(1)) {
      const [k, v = ""] = kv.split("=");
      if (!/^\d+$/.test(v)) continue;
      if (k === "rbytes" || k === "wbytes" || k === "rios" || k === "wios") e[k] = BigInt(v);
    }
    io.usage.push(e);
  }
  const psiIo = psiOf(dir, "io.pressure");
  if (psiIo) io.psi = psiIo;
  const psiCpu = psiOf(dir, "cpu.pressure");
  return create(v2.MetricsSchema, {
    pids: { current: uint(dir, "pids.current"), limit: uint(dir, "pids.max") },
    cpu: {
      usageUsec: c("usage_usec"),
      userUsec: c("user_usec"),
      systemUsec: c("system_usec"),
      nrPeriods: c("nr_periods"),
      nrThrottled: c("nr_throttled"),
      throttledUsec: c("throttled_usec"),
      nrBursts: c("nr_bursts"),
      burstUsec: c("burst_usec"),
      ...(psiCpu ? { psi: psiCpu } : {}),
    },
    memory,
    ...(events && events.size
      ? { memoryEvents: { low: events.get("low") ?? 0n, high: events.get("high") ?? 0n, max: events.get("max") ?? 0n, oom: events.get("oom") ?? 0n, oomKill: events.get("oom_kill") ?? 0n, oomGroupKill: events.get("oom_group_kill") ?? 0n } }
      : {}),
    io,
    rdma: { current: rdma(dir, "rdma.current"), limit: rdma(dir, "rdma.max") },
    hugetlb: pageSizes.map((size) => ({
      pagesize: size,
      current: uint(dir, `hugetlb.${size}.current`),
      max: uint(dir, `hugetlb.${size}.max`),
      failcnt: keyValues(dir, `hugetlb.${size}.events`)?.get("max") ?? 0n,
    })),
  });
}
