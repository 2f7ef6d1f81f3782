// memory: linux.resources.memory (runc's fs/memory.go, fs2/memory.go with runc's swap conversion), its
// statistics, and the OOM kill count `events` watches.
import type { LinuxMemory, LinuxResources } from "../../spec/schema";
import { sortedMap } from "../../gojson";
import type { Controller, Location, Writer } from "../controller";
import { nz } from "../controller";
import { memorySwapToV2, v2Limit } from "../convert";
import { num, readKeyValues, readUint, UINT64_MAX } from "../files";
import { isMissing, nzBig, type Obj, optional, psi } from "../stats";

const M = "linux.resources.memory";

// checkBeforeUpdate: refuse a limit at or below what the cgroup already uses (runc checks memory.current on
// v2; tsrun checks v1's memory.usage_in_bytes the same way). Unreadable usage skips the check, as runc.
function checkMemoryUsage(w: Writer, m: LinuxMemory, usageFile: string): void {
  if (!m.checkBeforeUpdate) return;
  const limit = m.limit ?? 0;
  const swap = m.swap ?? 0;
  if (limit <= 0 && swap <= 0) return;
  let usage: bigint;
  try {
    usage = readUint(w.dir, usageFile);
  } catch {
    return;
  }
  if (swap > 0 && BigInt(swap) <= usage) throw new Error(`${M}.swap: rejecting memory+swap limit ${swap} <= usage ${usage} (${w.dir}/${usageFile})`);
  if (limit > 0 && BigInt(limit) <= usage) throw new Error(`${M}.limit: rejecting memory limit ${limit} <= usage ${usage} (${w.dir}/${usageFile})`);
}

// v1: the order of the memory and memory+swap limits matters: the kernel refuses memsw below the memory
// limit, so when raising (or unlimiting) swap it goes first, otherwise the memory limit does (runc's
// setMemoryAndSwap). -1 memory with no swap given unlimits swap too when the kernel accounts it.
function applyV1(w: Writer, m: LinuxMemory): void {
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

// v2: memory.max / memory.swap.max (swap alone: the spec's memory+swap minus memory) / memory.low.
function applyV2(w: Writer, m: LinuxMemory): void {
  if (m.useHierarchy === false) throw new Error(`${M}.useHierarchy: cgroup v2 is always hierarchical (${w.dir})`);
  const limit = m.limit ?? 0;
  const swapTotal = m.swap ?? 0;
  if (!(limit !== 0 || swapTotal !== 0 || (m.reservation ?? 0) !== 0)) return;
  checkMemoryUsage(w, m, "memory.current");
  let swap: number;
  try {
    swap = memorySwapToV2(swapTotal, limit);
  } catch (e) {
    throw new Error(`${M}.swap: ${(e as Error).message}`);
  }
  let swapStr = v2Limit(swap);
  if (swapStr === "" && swap === 0 && swapTotal > 0) swapStr = "0"; // swap == limit: no swap at all
  if (swapStr !== "") {
    const e = w.attempt("memory.swap.max", swapStr);
    // runc: without swap accounting there is no memory.swap.max; "max" and "0" then mean nothing to do
    if (e && !(e.code === "ENOENT" && (swapStr === "max" || swapStr === "0"))) throw w.fail(`${M}.swap`, e);
  }
  const max = v2Limit(limit);
  if (max) w.write(`${M}.limit`, "memory.max", max);
  const low = v2Limit(m.reservation ?? 0);
  if (low) w.write(`${M}.reservation`, "memory.low", low);
}

// ---------------------------------------------------------------------------------------------------------
// statistics

interface MemoryData {
  usage: bigint;
  max: bigint;
  failcnt: bigint;
  limit: bigint;
}
const ZERO_MEMORY: MemoryData = { usage: 0n, max: 0n, failcnt: 0n, limit: 0n };

function memoryEntry(d: MemoryData): Obj | undefined {
  if (d.usage === 0n && d.max === 0n && d.failcnt === 0n && d.limit === 0n) return undefined; // omitzero
  return { limit: d.limit, usage: nzBig(d.usage), max: nzBig(d.max), failcnt: d.failcnt };
}

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

function statsV1(dir: string): Obj {
  const raw = readKeyValues(dir, "memory.stat");
  const usage = memoryDataV1(dir, "");
  return {
    cache: nzBig(raw.get("cache") ?? 0n),
    usage: memoryEntry(usage),
    swap: memoryEntry(memoryDataV1(dir, "memsw")),
    kernel: memoryEntry(memoryDataV1(dir, "kmem")),
    kernelTCP: memoryEntry(memoryDataV1(dir, "kmem.tcp")),
    raw: raw.size ? sortedMap(raw) : undefined,
  };
}

function memoryDataV2(dir: string, name: string): MemoryData | undefined {
  const mod = name ? `memory.${name}` : "memory";
  const usage = optional(() => readUint(dir, `${mod}.current`));
  if (usage === undefined) return undefined;
  return { usage, limit: readUint(dir, `${mod}.max`), max: optional(() => readUint(dir, `${mod}.peak`)) ?? 0n, failcnt: 0n };
}

function statsV2(dir: string): Obj {
  const raw = optional(() => readKeyValues(dir, "memory.stat"));
  const out: Obj = {};
  if (raw) {
    const usage = memoryDataV2(dir, "");
    if (!usage) throw new Error(`read ${dir}/memory.current: no such file`);
    const swapOnly = memoryDataV2(dir, "swap") ?? ZERO_MEMORY;
    // v1 reports memory+swap: so does runc on v2 (max usage unknown: 0)
    const swap: MemoryData = { usage: swapOnly.usage + usage.usage, limit: swapOnly.limit === UINT64_MAX ? UINT64_MAX : swapOnly.limit + usage.limit, max: 0n, failcnt: swapOnly.failcnt };
    out.cache = nzBig(raw.get("file") ?? 0n);
    out.usage = memoryEntry(usage);
    out.swap = memoryEntry(swap);
    out.raw = raw.size ? sortedMap(raw) : undefined;
  }
  out.psi = psi(dir, "memory.pressure");
  return out;
}

// The OOM kill count: v1 memory.oom_control "oom_kill", v2 memory.events "oom_kill"; undefined when the
// file is missing.
export function oomKills(loc: Location): bigint | undefined {
  try {
    return readKeyValues(loc.dir, loc.version === 1 ? "memory.oom_control" : "memory.events").get("oom_kill") ?? 0n;
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}

export const memory: Controller = {
  name: "memory",
  setting: M,
  needed: (r: LinuxResources) => {
    const m = r.memory;
    return !!m && (nz(m.limit) || nz(m.reservation) || nz(m.swap) || m.swappiness !== undefined || m.disableOOMKiller === true || m.useHierarchy !== undefined);
  },
  apply: (w, r) => (w.version === 1 ? applyV1(w, r.memory!) : applyV2(w, r.memory!)),
  stats: (loc, s) => {
    if (loc) s.memory = loc.version === 1 ? statsV1(loc.dir) : statsV2(loc.dir);
  },
};
