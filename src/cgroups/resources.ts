// linux.resources -> cgroup files. Each group of settings is written to the cgroup of the controller that
// governs it: the v1 hierarchy that has the controller (resources-v1.ts), else the container's v2 cgroup
// when the controller is enabled there (resources-v2.ts) — so a hybrid host uses v2 for a controller it only
// has on v2 (hugetlb here), where runc would fail. A setting the host cannot take (no such controller, no
// such file, a value the kernel refuses) is an error naming the setting and the file. The only settings
// not written are those runc does not write either; each is named in a warning and in a comment here.
import type { LinuxDevice, LinuxResources } from "../spec/schema";
import { applyDevices } from "./devices";
import { containerDeviceRules } from "./devicerules";
import { CgroupFileError, cgroupFileExists, num, readCgroupFile, readUint, writeCgroupFile } from "./files";
import { controllerDir, isUnifiedOnly } from "./manager";
import * as v1 from "./resources-v1";
import * as v2 from "./resources-v2";

export interface ApplyOptions {
  warn: (msg: string) => void;
  // linux.devices of the config: a default device the config also lists gets no default rule (runc).
  devices?: readonly LinuxDevice[];
  // `update` leaves device rules alone unless it is given some (runc's update always does).
  skipDevices?: boolean;
}

// The one place files are written: errors carry the setting's name and the file.
export class Writer {
  constructor(
    readonly dir: string,
    readonly version: 1 | 2,
    readonly warn: (msg: string) => void,
  ) {}

  write(setting: string, file: string, value: string): void {
    const e = this.attempt(file, value);
    if (e) throw this.fail(setting, e);
  }

  // A write whose failure the caller inspects (runc retries some EINVALs, skips some ENOENTs).
  attempt(file: string, value: string): CgroupFileError | undefined {
    try {
      writeCgroupFile(this.dir, file, value);
      return undefined;
    } catch (e) {
      if (e instanceof CgroupFileError) return e;
      throw e;
    }
  }

  fail(setting: string, e: Error): Error {
    return new Error(`${setting}: ${e.message}`);
  }

  read(setting: string, file: string): string {
    try {
      return readCgroupFile(this.dir, file);
    } catch (e) {
      throw this.fail(setting, e as Error);
    }
  }

  readUint(setting: string, file: string): bigint {
    try {
      return readUint(this.dir, file);
    } catch (e) {
      throw this.fail(setting, e as Error);
    }
  }

  exists(file: string): boolean {
    return cgroupFileExists(this.dir, file);
  }
}

const nz = (v: number | undefined) => v !== undefined && v !== 0;
const any = (l: readonly unknown[] | undefined) => (l?.length ?? 0) > 0;

// Settings runc leaves unwritten on a v2-only host (fs2 has no file for them): warned about and dropped.
function dropV2Unsupported(r: LinuxResources, warn: (m: string) => void): LinuxResources {
  const out: LinuxResources = structuredClone(r);
  const ignored: string[] = [];
  if (out.memory) {
    if (out.memory.useHierarchy === true) delete out.memory.useHierarchy; // v2 is always hierarchical
    if (out.memory.swappiness !== undefined) (ignored.push("memory.swappiness"), delete out.memory.swappiness);
    if (out.memory.disableOOMKiller !== undefined) (ignored.push("memory.disableOOMKiller"), delete out.memory.disableOOMKiller);
  }
  if (out.cpu) {
    if (out.cpu.realtimeRuntime !== undefined) (ignored.push("cpu.realtimeRuntime"), delete out.cpu.realtimeRuntime);
    if (out.cpu.realtimePeriod !== undefined) (ignored.push("cpu.realtimePeriod"), delete out.cpu.realtimePeriod);
  }
  if (out.blockIO) {
    if (out.blockIO.leafWeight !== undefined) (ignored.push("blockIO.leafWeight"), delete out.blockIO.leafWeight);
    if (out.blockIO.weightDevice?.some((d) => d.leafWeight !== undefined)) ignored.push("blockIO.weightDevice[].leafWeight");
  }
  if (out.network) (ignored.push("network"), delete out.network);
  for (const s of ignored) warn(`linux.resources.${s} has no cgroup v2 equivalent and is ignored (as runc does)`);
  return out;
}

export function applyResources(dirs: Record<string, string>, resources: LinuxResources | undefined, o: ApplyOptions): void {
  const unifiedOnly = isUnifiedOnly(dirs);
  let r: LinuxResources = resources ?? {};
  if (r.unified && Object.keys(r.unified).length > 0 && !unifiedOnly)
    throw new Error("linux.resources.unified: invalid configuration: cannot use unified on cgroup v1 (this host mounts v1 hierarchies)");
  if (unifiedOnly) r = dropV2Unsupported(r, o.warn);
  // runc warns and ignores kernel memory limits (the kernel no longer has them).
  if (r.memory?.kernel !== undefined || r.memory?.kernelTCP !== undefined) o.warn("Kernel memory settings are ignored and will be removed");

  // controller: its name, or its v1 and v2 names where they differ (blkio / io).
  const group = (controller: string | [string, string], setting: string, needed: boolean, write: (w: Writer) => void) => {
    if (!needed) return;
    const [c1, c2] = typeof controller === "string" ? [controller, controller] : controller;
    const found = controllerDir(dirs, c1);
    const loc = found?.version === 1 ? found : controllerDir(dirs, c2);
    if (!loc) throw new Error(`${setting}: ${missingController(dirs, c1, c2)}`);
    write(new Writer(loc.dir, loc.version, o.warn));
  };

  const cpu = r.cpu;
  group("cpuset", "linux.resources.cpu", !!(cpu?.cpus || cpu?.mems), (w) => (w.version === 1 ? v1.cpuset(w, cpu!) : v2.cpuset(w, cpu!)));
  if (!o.skipDevices) applyDevices(dirs, containerDeviceRules(r.devices, o.devices));
  const m = r.memory;
  group("memory", "linux.resources.memory", !!m && (nz(m.limit) || nz(m.reservation) || nz(m.swap) || m.swappiness !== undefined || m.disableOOMKiller === true || m.useHierarchy !== undefined), (w) =>
    w.version === 1 ? v1.memory(w, m!) : v2.memory(w, m!),
  );
  group(
    "cpu",
    "linux.resources.cpu",
    !!cpu && (nz(cpu.shares) || nz(cpu.quota) || nz(cpu.period) || cpu.burst !== undefined || cpu.idle !== undefined || nz(cpu.realtimeRuntime) || nz(cpu.realtimePeriod)),
    (w) => (w.version === 1 ? v1.cpu(w, cpu!) : v2.cpu(w, cpu!)),
  );
  // pids.limit 0 is "unset" (runc with runtime-spec 1.2; runc >= 1.4 maps it to 1 for spec 1.3)
  group("pids", "linux.resources.pids.limit", nz(r.pids?.limit), (w) => w.write("linux.resources.pids.limit", "pids.max", r.pids!.limit > 0 ? num(r.pids!.limit) : "max"));
  const b = r.blockIO;
  const blkioNeeded =
    !!b && (nz(b.weight) || nz(b.leafWeight) || any(b.weightDevice) || any(b.throttleReadBpsDevice) || any(b.throttleWriteBpsDevice) || any(b.throttleReadIOPSDevice) || any(b.throttleWriteIOPSDevice));
  group(["blkio", "io"], "linux.resources.blockIO", blkioNeeded, (w) => (w.version === 1 ? v1.blkio(w, b!) : v2.io(w, b!)));
  group("hugetlb", "linux.resources.hugepageLimits", any(r.hugepageLimits), (w) => hugetlb(w, r.hugepageLimits!));
  group("net_cls", "linux.resources.network.classID", nz(r.network?.classID), (w) => w.write("linux.resources.network.classID", "net_cls.classid", String(r.network!.classID)));
  group("net_prio", "linux.resources.network.priorities", any(r.network?.priorities), (w) => {
    for (const p of r.network!.priorities!) w.write("linux.resources.network.priorities", "net_prio.ifpriomap", `${p.name} ${p.priority}`);
  });
  group("rdma", "linux.resources.rdma", Object.keys(r.rdma ?? {}).length > 0, (w) => rdma(w, r.rdma!));
  if (unifiedOnly && r.unified) v2.unified(new Writer(dirs[""]!, 2, o.warn), r.unified);
}

function missingController(dirs: Record<string, string>, c1: string, c2: string): string {
  const v1 = Object.keys(dirs).some((k) => k !== "");
  const parts = [];
  if (v1) parts.push(`the host mounts no v1 ${c1} hierarchy`);
  if (dirs[""] !== undefined) parts.push(`${c2} is not in ${dirs[""]}/cgroup.controllers`);
  return `this container has no ${c1 === c2 ? c1 : `${c1}/${c2}`} cgroup (${parts.join(", and ")})`;
}

// hugetlb.<size>.limit_in_bytes (v1) or hugetlb.<size>.max (v2), and the reservation limit next to it when
// the kernel has one (runc skips .rsvd on kernels without it, as here).
function hugetlb(w: Writer, limits: NonNullable<LinuxResources["hugepageLimits"]>): void {
  const suffix = w.version === 1 ? ".limit_in_bytes" : ".max";
  let rsvd = true;
  limits.forEach((l, i) => {
    const setting = `linux.resources.hugepageLimits[${i}]`;
    const prefix = `hugetlb.${l.pageSize}`;
    const value = BigInt(l.limit).toString();
    w.write(setting, prefix + suffix, value);
    if (!rsvd) return;
    const e = w.attempt(`${prefix}.rsvd${suffix}`, value);
    if (e?.code === "ENOENT") rsvd = false;
    else if (e) throw w.fail(setting, e);
  });
}

function rdma(w: Writer, limits: NonNullable<LinuxResources["rdma"]>): void {
  for (const [device, l] of Object.entries(limits)) {
    let line = device;
    if (l.hcaHandles !== undefined) line += ` hca_handle=${l.hcaHandles}`;
    if (l.hcaObjects !== undefined) line += ` hca_object=${l.hcaObjects}`;
    w.write(`linux.resources.rdma.${device}`, "rdma.max", line);
  }
}

// checkBeforeUpdate: refuse a limit at or below what the cgroup already uses (runc checks memory.current on
// v2; tsrun checks v1's memory.usage_in_bytes the same way). Unreadable usage skips the check, as runc.
export function checkMemoryUsage(w: Writer, m: NonNullable<LinuxResources["memory"]>, usageFile: string): void {
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
  if (swap > 0 && BigInt(swap) <= usage) throw new Error(`linux.resources.memory.swap: rejecting memory+swap limit ${swap} <= usage ${usage} (${w.dir}/${usageFile})`);
  if (limit > 0 && BigInt(limit) <= usage) throw new Error(`linux.resources.memory.limit: rejecting memory limit ${limit} <= usage ${usage} (${w.dir}/${usageFile})`);
}
