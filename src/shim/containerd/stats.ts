// tsrun's stats (runc's types.Stats as plain JSON) as containerd's cgroup v1 Metrics
// (io.containerd.cgroups.v1.Metrics), the shape `ctr task metrics` and the CRI decode.
import { create } from "@bufbuild/protobuf";
import type { JsonValue, Stats } from "../../api";
import { type Metrics, MetricsSchema } from "./gen/cgroups/v1/metrics_pb";

type Obj = { [k: string]: JsonValue };
const obj = (v: JsonValue | undefined): Obj => (v !== null && typeof v === "object" && !Array.isArray(v) ? v : {});
const u64 = (v: JsonValue | undefined): bigint => (typeof v === "number" && v > 0 ? BigInt(Math.trunc(v)) : 0n);
const mem = (v: JsonValue | undefined) => {
  const e = obj(v);
  return { limit: u64(e.limit), usage: u64(e.usage), max: u64(e.max_usage), failcnt: u64(e.failcnt) };
};

export function metricsFromStats(s: Stats): Metrics {
  const cpu = obj(s.cpu);
  const usage = obj(cpu.usage);
  const thr = obj(cpu.throttling);
  const memory = obj(s.memory);
  const raw = obj(memory.stats);
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
      usage: { total: u64(usage.total_usage), kernel: u64(usage.usage_in_kernelmode), user: u64(usage.usage_in_usermode), perCpu: (Array.isArray(usage.percpu_usage) ? usage.percpu_usage : []).map(u64) },
      throttling: { periods: u64(thr.periods), throttledPeriods: u64(thr.throttled_periods), throttledTime: u64(thr.throttled_time) },
    },
    memory: {
      cache: u64(memory.cache),
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
      swap: mem(memory.swap_usage),
      kernel: mem(memory.kernel_usage),
      kernelTcp: mem(memory.kernel_tcp_usage),
    },
    blkio: {
      ioServiceBytesRecursive: entries("io_service_bytes_recursive"),
      ioServicedRecursive: entries("io_serviced_recursive"),
      ioQueuedRecursive: entries("io_queue_recursive"),
      ioServiceTimeRecursive: entries("io_service_time_recursive"),
      ioWaitTimeRecursive: entries("io_wait_time_recursive"),
      ioMergedRecursive: entries("io_merged_recursive"),
      ioTimeRecursive: entries("io_time_recursive"),
      sectorsRecursive: entries("sectors_recursive"),
    },
    hugetlb: Object.entries(obj(s.hugetlb)).map(([pagesize, v]) => {
      const h = obj(v);
      return { pagesize, usage: u64(h.usage), max: u64(h.max_usage), failcnt: u64(h.failcnt) };
    }),
  });
}
