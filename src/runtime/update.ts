// update: change a running (or paused, or created) container's resources, from runc's flags or from a
// linux.resources JSON document (-r FILE, "-" for stdin, as containerd sends it). The new values are merged
// into the container's recorded resources as runc merges them (values not given are kept; quota and period
// that only one is given for keep the other; weight and throttle devices are upserted), the whole set is
// written again (as runc's Set), and the record is saved so state.json says what the cgroups hold.
// Device rules are left alone unless the document has "devices" (runc's update never changes them; tsrun
// replaces them then: the v1 lists, or the v2 program).
import * as fs from "fs";
import { CgroupManager } from "../cgroups/manager";
import { ramInBytes } from "../cgroups/convert";
import { TsrunError, messageOf } from "../errors";
import { type LinuxResources, parseResources, SpecError, type UpdateResources } from "../spec/schema";
import type { Context } from "./context";
import { validateId } from "../state/store";

export interface UpdateFlags {
  blkioWeight?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  cpuBurst?: string;
  cpuShare?: string;
  cpuRtPeriod?: string;
  cpuRtRuntime?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  cpuIdle?: string;
  kernelMemory?: string;
  kernelMemoryTcp?: string;
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  pidsLimit?: string;
  l3CacheSchema?: string;
  memBwSchema?: string;
}

export interface UpdateOptions {
  // -r: a file name, "-" for stdin; the flags are then ignored (as runc)
  resources?: string;
  flags?: UpdateFlags;
}

function uint(opt: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new TsrunError(`invalid value for ${opt}: ${JSON.stringify(v)} is not an unsigned integer`);
  return Number(v);
}

function int(opt: string, v: string): number {
  if (!/^-?\d+$/.test(v)) throw new TsrunError(`invalid value for ${opt}: ${JSON.stringify(v)} is not an integer`);
  return Number(v);
}

function bytes(opt: string, v: string): number {
  if (v === "-1") return -1;
  try {
    return ramInBytes(v);
  } catch (e) {
    throw new TsrunError(`invalid value for ${opt}: ${messageOf(e)}`);
  }
}

// runc's flags as a resources document.
export function resourcesFromFlags(f: UpdateFlags): UpdateResources {
  if (f.l3CacheSchema) throw new TsrunError("Intel RDT/CAT: l3 cache schema is not enabled");
  if (f.memBwSchema) throw new TsrunError("Intel RDT/MBA: memory bandwidth schema is not enabled");
  const r: UpdateResources = { memory: { checkBeforeUpdate: false }, cpu: {}, blockIO: {}, pids: {} };
  const cpu = r.cpu!;
  const mem = r.memory!;
  if (f.blkioWeight !== undefined && uint("blkio-weight", f.blkioWeight) !== 0) r.blockIO!.weight = uint("blkio-weight", f.blkioWeight);
  if (f.cpusetCpus) cpu.cpus = f.cpusetCpus;
  if (f.cpusetMems) cpu.mems = f.cpusetMems;
  if (f.cpuIdle !== undefined) cpu.idle = int("cpu-idle", f.cpuIdle);
  if (f.cpuBurst !== undefined) cpu.burst = uint("cpu-burst", f.cpuBurst);
  if (f.cpuPeriod !== undefined) cpu.period = uint("cpu-period", f.cpuPeriod);
  if (f.cpuRtPeriod !== undefined) cpu.realtimePeriod = uint("cpu-rt-period", f.cpuRtPeriod);
  if (f.cpuShare !== undefined) cpu.shares = uint("cpu-share", f.cpuShare);
  if (f.cpuQuota !== undefined) cpu.quota = int("cpu-quota", f.cpuQuota);
  if (f.cpuRtRuntime !== undefined) cpu.realtimeRuntime = int("cpu-rt-runtime", f.cpuRtRuntime);
  if (f.memory !== undefined) mem.limit = bytes("memory", f.memory);
  if (f.memorySwap !== undefined) mem.swap = bytes("memory-swap", f.memorySwap);
  if (f.kernelMemory !== undefined) mem.kernel = bytes("kernel-memory", f.kernelMemory);
  if (f.kernelMemoryTcp !== undefined) mem.kernelTCP = bytes("kernel-memory-tcp", f.kernelMemoryTcp);
  if (f.memoryReservation !== undefined) mem.reservation = bytes("memory-reservation", f.memoryReservation);
  if (f.pidsLimit !== undefined) r.pids!.limit = int("pids-limit", f.pidsLimit);
  return r;
}

function readDocument(source: string): UpdateResources {
  let text: string;
  try {
    text = fs.readFileSync(source === "-" ? 0 : source, "utf8");
  } catch (e) {
    throw new TsrunError(`update: read ${source === "-" ? "stdin" : source}: ${messageOf(e)}`);
  }
  const name = source === "-" ? "resources (stdin)" : source;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new TsrunError(`${name}: invalid JSON: ${messageOf(e)}`);
  }
  try {
    return parseResources(value, name);
  } catch (e) {
    throw new TsrunError(e instanceof SpecError ? e.message : messageOf(e));
  }
}

type Dev = { major: number; minor: number };
function upsert<T extends Dev>(list: T[] | undefined, add: readonly T[] | undefined, merge: (old: T, add: T) => T): T[] | undefined {
  if (!add?.length) return list;
  const out = [...(list ?? [])];
  for (const d of add) {
    let i = out.length - 1; // the last of duplicates wins, as runc
    while (i >= 0 && !(out[i]!.major === d.major && out[i]!.minor === d.minor)) i--;
    if (i >= 0) out[i] = merge(out[i]!, d);
    else out.push(d);
  }
  return out;
}

// The container's resources after an update, as runc's update.go merges them.
export function mergeResources(cur: LinuxResources, r: UpdateResources): LinuxResources {
  const out: LinuxResources = structuredClone(cur);
  // runc's fix-up: unlimited memory with no swap given leaves swap unset (not "swap without memory")
  if (r.memory?.limit === -1 && r.memory.swap === undefined) r.memory.swap = 0;
  if (r.blockIO) {
    const b = (out.blockIO ??= {});
    if (r.blockIO.weight !== undefined) b.weight = r.blockIO.weight;
    if (r.blockIO.leafWeight !== undefined) b.leafWeight = r.blockIO.leafWeight;
    const wd = upsert(b.weightDevice, r.blockIO.weightDevice, (o, a) => ({ ...o, ...(a.weight !== undefined ? { weight: a.weight } : {}), ...(a.leafWeight !== undefined ? { leafWeight: a.leafWeight } : {}) }));
    if (wd) b.weightDevice = wd;
    for (const k of ["throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"] as const) {
      const t = upsert(b[k], r.blockIO[k], (o, a) => ({ ...o, rate: a.rate }));
      if (t) b[k] = t;
    }
  }
  if (r.cpu) {
    const c = (out.cpu ??= {});
    const p = r.cpu.period ?? 0;
    const q = r.cpu.quota ?? 0;
    // quota and period given together (or neither) replace both; one alone keeps the other
    if ((p === 0 && q === 0) || (p !== 0 && q !== 0)) {
      if (r.cpu.period !== undefined || r.cpu.quota !== undefined) {
        c.period = p;
        c.quota = q;
      }
    } else if (p !== 0) c.period = p;
    else c.quota = q;
    if (r.cpu.burst !== undefined) c.burst = r.cpu.burst;
    if (r.cpu.shares !== undefined) c.shares = r.cpu.shares;
    if (r.cpu.realtimePeriod !== undefined) c.realtimePeriod = r.cpu.realtimePeriod;
    if (r.cpu.realtimeRuntime !== undefined) c.realtimeRuntime = r.cpu.realtimeRuntime;
    if (r.cpu.cpus) c.cpus = r.cpu.cpus;
    if (r.cpu.mems) c.mems = r.cpu.mems;
    if (r.cpu.idle !== undefined) {
      c.idle = r.cpu.idle;
      if (r.cpu.shares === undefined) delete c.shares; // runc: no cpu.weight next to cpu.idle (v2 refuses it)
    }
  }
  if (r.memory) {
    const m = (out.memory ??= {});
    for (const k of ["limit", "reservation", "swap", "checkBeforeUpdate"] as const) if (r.memory[k] !== undefined) (m as Record<string, unknown>)[k] = r.memory[k];
  }
  if (r.pids?.limit !== undefined) out.pids = { limit: r.pids.limit };
  if (r.unified) out.unified = { ...(out.unified ?? {}), ...r.unified };
  // settings runc's update does not take from a document but tsrun records and applies alike
  if (r.hugepageLimits) out.hugepageLimits = r.hugepageLimits;
  if (r.network) out.network = r.network;
  if (r.rdma) out.rdma = { ...(out.rdma ?? {}), ...r.rdma };
  if (r.devices) out.devices = r.devices;
  // groups the flags brought in empty and that were not there before are not recorded
  for (const k of ["blockIO", "cpu"] as const) if (cur[k] === undefined && Object.keys(out[k] ?? {}).length === 0) delete out[k];
  return out;
}

// The CLI's inputs (-r FILE or runc's flags) as the resources they ask for.
export function resourcesFromOptions(o: UpdateOptions): UpdateResources {
  return o.resources !== undefined ? readDocument(o.resources) : resourcesFromFlags(o.flags ?? {});
}

export async function update(ctx: Context, id: string, r: UpdateResources): Promise<void> {
  validateId(id);
  if (r.memory?.kernel !== undefined || r.memory?.kernelTCP !== undefined) ctx.logger.warn("Kernel memory settings are ignored and will be removed");
  const { lock, record } = await ctx.store.open(id);
  try {
    const status = ctx.store.status(record);
    if (status === "stopped" || status === "creating") throw new TsrunError("container not running", "NOT_RUNNING");
    const linux = (record.config.linux ??= {});
    const old = withoutKernelMemory(linux.resources ?? {});
    const merged = withoutKernelMemory(mergeResources(old, r));
    const options = (skipDevices: boolean) => ({ warn: (m: string) => ctx.logger.warn(m), skipDevices, ...(linux.devices ? { devices: linux.devices } : {}), ...(record.rootlessCgroups ? { rootless: true } : {}) });
    const cgroups = CgroupManager.fromRecord(record.cgroup);
    try {
      await cgroups.update(merged, options(r.devices === undefined));
    } catch (e) {
      // as runc: put the previous values back, keep the previous record
      try {
        await cgroups.update(old, { ...options(r.devices === undefined), warn: () => {} });
      } catch (e2) {
        ctx.logger.warn(`update: restoring the previous resources: ${messageOf(e2)}`);
      }
      throw new TsrunError(messageOf(e));
    }
    linux.resources = merged;
    ctx.store.write(record);
  } finally {
    lock.release();
  }
}

function withoutKernelMemory(r: LinuxResources): LinuxResources {
  if (r.memory?.kernel === undefined && r.memory?.kernelTCP === undefined) return r;
  const memory = { ...r.memory };
  delete memory.kernel;
  delete memory.kernelTCP;
  return { ...r, memory };
}
