// tsrun's stats (runc's `events` types.Stats as plain JSON: cpu.usage.total, memory.raw, blkio.ioServiceBytesRecursive…) as containerd's cgroup v1 Metrics
// (io.containerd.cgroups.v1.Metrics), the shape `ctr task metrics` and the CRI decode.
import { create } from "@bufbuild/protobuf";
import type { JsonValue, Stats } from "../../api";
import { type Metrics, MetricsSchema } from "./gen/cgroups/v1/metrics_pb";

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
