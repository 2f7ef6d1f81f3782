// The systemd cgroup driver's pure part, as runc's (opencontainers/cgroups systemd/common.go, v1.go, v2.go,
// cpuset.go, devices/systemd.go and runc's specconv): the unit a container gets from its cgroupsPath
// ("slice:prefix:name"), where systemd puts that unit in the cgroup tree (a slice name "a-b-c.slice" is the
// directory /a.slice/a-b.slice/a-b-c.slice), and linux.resources as the unit properties systemd knows.
// No D-Bus here: a property is {name, signature, value} and dbus.ts sends it.
import type { LinuxDevice, LinuxResources } from "../../spec/schema";
import { cpuSharesToWeight, memorySwapToV2 } from "../convert";
import { containerDeviceRules, DeviceEmulator, WILDCARD } from "../devicerules";

// One unit property: D-Bus signature of the value, and the value (64-bit integers as bigint, "ay" as a
// Buffer, "a(ss)" as [string, string][]).
export interface Property {
  name: string;
  sig: string;
  value: unknown;
}

// What state.json keeps of a systemd-managed container (CgroupRecord.systemd).
export interface SystemdRecord {
  unit: string; // e.g. "runc-<id>.scope", or "<name>.slice" when cgroupsPath names a slice
  slice: string; // the parent slice ("system.slice" by default), as given (Slice= or Wants=)
  name: string; // the unit's name part (runc's Cgroup.Name), for its Description
  rootless: boolean; // the user's systemd instance (session bus) instead of the system's
}

const SLICE = ".slice";

// runc's ExpandSlice: "test-a-b.slice" -> "/test.slice/test-a.slice/test-a-b.slice"; "-.slice" is the root.
export function expandSlice(slice: string): string {
  if (slice.length < SLICE.length || !slice.endsWith(SLICE) || slice.includes("/")) throw new Error(`invalid slice name: ${slice}`);
  const name = slice.slice(0, -SLICE.length);
  if (name === "-") return "/";
  let out = "";
  let prefix = "";
  for (const component of name.split("-")) {
    if (component === "") throw new Error(`invalid slice name: ${slice}`);
    out += `/${prefix}${component}${SLICE}`;
    prefix += `${component}-`;
  }
  return out;
}

// runc's getUnitName: a scope "<prefix>-<name>.scope", unless the name is itself a slice.
export function unitName(prefix: string, name: string): string {
  return name.endsWith(SLICE) ? name : `${prefix}-${name}.scope`;
}

// runc's specconv for the systemd driver: an empty cgroupsPath is the scope "runc-<id>.scope" in the default
// slice (system.slice, or user.slice for the user's instance); otherwise exactly "slice:prefix:name" (an
// empty slice: the default).
export function parseCgroupsPath(cgroupsPath: string | undefined, id: string, rootless: boolean): SystemdRecord {
  const fallback = rootless ? "user.slice" : "system.slice";
  if (!cgroupsPath) return { unit: unitName("runc", id), slice: fallback, name: id, rootless };
  const parts = cgroupsPath.split(":");
  if (parts.length !== 3) throw new Error(`expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "${cgroupsPath}" instead`);
  const [slice, prefix, name] = parts as [string, string, string];
  return { unit: unitName(prefix, name), slice: slice || fallback, name, rootless };
}

// The unit's directory below a hierarchy's mount point (runc's initPaths / initPath). The user instance's
// units live below the manager's own cgroup (its ControlGroup property, e.g.
// "/user.slice/user-1000.slice/user@1000.service"), which only systemd can tell: `managerCgroup`.
export function unitCgroupPath(r: SystemdRecord, managerCgroup = ""): string {
  const slice = r.slice ? expandSlice(r.slice) : "/system.slice";
  const base = managerCgroup.replace(/\/+$/, "");
  return `${base}${slice === "/" ? "" : slice}/${r.unit}`;
}

// runc's systemdVersionAtoi: "v245.4-1.fc32", "245", "\"219\"" -> the leading number.
export function systemdVersionAtoi(text: string): number {
  const m = /^\d+/.exec(text.replace(/^["v]+/, ""));
  if (!m) throw new Error(`can't parse version: ${JSON.stringify(text)}`);
  return Number(m[0]);
}

// runc's RangeToBits: a cpu or memory-node list ("0-3,8") as the little-endian bitmask AllowedCPUs takes.
export function rangeToBits(list: string): Buffer {
  const bits: number[] = [];
  const num = (s: string) => {
    if (!/^\d+$/.test(s) || Number(s) > 0xffffffff) throw new Error(`invalid number ${JSON.stringify(s)}`);
    return Number(s);
  };
  for (const raw of list.split(",")) {
    const r = raw.trim();
    if (r === "") continue;
    const dash = r.indexOf("-");
    if (dash >= 0) {
      const start = num(r.slice(0, dash));
      const end = num(r.slice(dash + 1));
      if (start > end) throw new Error(`invalid range: ${r}`);
      for (let i = start; i <= end; i++) bits.push(i);
    } else {
      bits.push(num(r));
    }
  }
  if (bits.length === 0) throw new Error("empty value");
  const out = Buffer.alloc(Math.floor(Math.max(...bits) / 8) + 1);
  for (const b of bits) out[b >> 3]! |= 1 << (b & 7);
  return out;
}

const U64 = (v: number | bigint): bigint => BigInt.asUintN(64, BigInt(v));
const INFINITY = U64(-1); // systemd's USEC_INFINITY / CGROUP_LIMIT_MAX
const DEF_CPU_QUOTA_PERIOD = 100000n;
const CPU_IDLE_VERSION = 252;
const OOM_POLICY_VERSION = 253;

const prop = (name: string, sig: string, value: unknown): Property => ({ name, sig, value });

// The properties of StartTransientUnit (runc's Apply): what the unit is, the process it starts with, the
// accounting runc always turns on, and OOMPolicy from unified "memory.oom.group" (settable only here).
export function startProperties(r: SystemdRecord, pid: number, o: { v2: boolean; version: number; resources?: LinuxResources | undefined }): Property[] {
  const props: Property[] = [prop("Description", "s", `libcontainer container ${r.name}`)];
  if (r.unit.endsWith(SLICE)) {
    props.push(prop("Wants", "as", [r.slice]));
  } else {
    props.push(prop("Slice", "s", r.slice), prop("Delegate", "b", true));
  }
  props.push(prop("PIDs", "au", [pid]));
  props.push(prop("MemoryAccounting", "b", true), prop("CPUAccounting", "b", true), prop(o.v2 ? "IOAccounting" : "BlockIOAccounting", "b", true), prop("TasksAccounting", "b", true));
  props.push(prop("DefaultDependencies", "b", false));
  const oomGroup = o.resources?.unified?.["memory.oom.group"];
  if (o.v2 && oomGroup !== undefined && o.version >= OOM_POLICY_VERSION) {
    if (!/^\d+$/.test(oomGroup.trim())) throw new Error(`unified resource "memory.oom.group" value conversion error: ${JSON.stringify(oomGroup)}`);
    const v = Number(oomGroup.trim());
    if (v === 0) props.push(prop("OOMPolicy", "s", "continue"));
    else if (v === 1) props.push(prop("OOMPolicy", "s", "kill"));
  }
  return props;
}

export interface ResourceOptions {
  v2: boolean;
  version: number; // systemd's, from its Version property (-1: unknown)
  warn: (m: string) => void;
  devices?: readonly LinuxDevice[] | undefined;
  skipDevices?: boolean | undefined;
}

// linux.resources as SetUnitProperties' properties (runc's genV1ResourcesProperties /
// genV2ResourcesProperties), and the resources to write through cgroupfs afterwards: cpu.quota rounded up
// as systemd rounds it, so both agree.
export function resourceProperties(resources: LinuxResources, o: ResourceOptions): { props: Property[]; resources: LinuxResources } {
  const r: LinuxResources = structuredClone(resources);
  const props: Property[] = [...deviceProperties(r, o)];
  const mem = r.memory ?? {};
  const cpu = r.cpu ?? {};
  if (o.v2) {
    if (mem.limit !== undefined && mem.limit !== 0) props.push(prop("MemoryMax", "t", U64(mem.limit)));
    if (mem.reservation !== undefined && mem.reservation !== 0) props.push(prop("MemoryLow", "t", U64(mem.reservation)));
    const swap = memorySwapToV2(mem.swap ?? 0, mem.limit ?? 0);
    if (swap !== 0) props.push(prop("MemorySwapMax", "t", U64(swap)));
    let idleSet = false;
    if (cpu.idle === 1 && o.version >= CPU_IDLE_VERSION) {
      props.push(prop("CPUWeight", "t", 0n));
      idleSet = true;
    }
    const weight = cpuSharesToWeight(cpu.shares ?? 0);
    if (weight !== 0) {
      if (idleSet) o.warn("unable to apply both CPUWeight and CpuIdle to systemd, ignoring CPUWeight");
      else props.push(prop("CPUWeight", "t", BigInt(weight)));
    }
  } else {
    if (mem.limit !== undefined && mem.limit !== 0) props.push(prop("MemoryLimit", "t", U64(mem.limit)));
    if (cpu.shares !== undefined && cpu.shares !== 0) props.push(prop("CPUShares", "t", BigInt(cpu.shares)));
  }
  const quota = addCpuQuota(props, cpu.quota ?? 0, cpu.period ?? 0, o.version);
  if (quota !== (cpu.quota ?? 0) && r.cpu) r.cpu.quota = quota;
  if (!o.v2 && r.blockIO?.weight !== undefined && r.blockIO.weight !== 0) props.push(prop("BlockIOWeight", "t", BigInt(r.blockIO.weight)));
  if (r.pids?.limit !== undefined) {
    const limit = r.pids.limit;
    props.push(prop("TasksMax", "t", limit < 0 ? INFINITY : limit === 0 ? 1n : BigInt(limit)));
  }
  addCpuset(props, cpu.cpus ?? "", cpu.mems ?? "", o.version);
  if (o.v2 && r.unified) props.push(...unifiedProperties(r.unified, o));
  return { props, resources: r };
}

// runc's addCPUQuota: CPUQuotaPeriodUSec (systemd 242+), and CPUQuotaPerSecUSec, which systemd keeps in
// whole percents: a quota that is not is rounded up to the next 10 ms per second. Returns the quota to write.
function addCpuQuota(props: Property[], quota: number, period: number, version: number): number {
  let p = BigInt(period);
  if (p !== 0n && version >= 242) props.push(prop("CPUQuotaPeriodUSec", "t", p));
  if (quota === 0 && p === 0n) return quota;
  let perSec = INFINITY;
  if (quota > 0) {
    if (p === 0n) p = DEF_CPU_QUOTA_PERIOD;
    perSec = (BigInt(quota) * 1000000n) / p;
    if (perSec % 10000n !== 0n) {
      perSec = (perSec / 10000n + 1n) * 10000n;
      quota = Number((perSec * p) / 1000000n);
    }
  }
  props.push(prop("CPUQuotaPerSecUSec", "t", perSec));
  return quota;
}

// runc's addCpuset: AllowedCPUs / AllowedMemoryNodes (systemd 244+).
function addCpuset(props: Property[], cpus: string, mems: string, version: number): void {
  if ((cpus === "" && mems === "") || version < 244) return;
  const bits = (what: string, v: string) => {
    try {
      return rangeToBits(v);
    } catch (e) {
      throw new Error(`resources.CPU.${what}=${JSON.stringify(v)} conversion error: ${(e as Error).message}`);
    }
  };
  if (cpus !== "") props.push(prop("AllowedCPUs", "ay", bits("Cpus", cpus)));
  if (mems !== "") props.push(prop("AllowedMemoryNodes", "ay", bits("Mems", mems)));
}

// runc's unifiedResToSystemdProps: the unified keys systemd has a property for (the rest only go to files).
function unifiedProperties(unified: Record<string, string>, o: ResourceOptions): Property[] {
  const props: Property[] = [];
  const setIdle = (v: string | undefined) => v?.trim() === "1" && o.version >= CPU_IDLE_VERSION;
  const parse = (k: string, v: string, max: boolean): bigint => {
    if (max && v === "max") return INFINITY;
    if (!/^\d+$/.test(v)) throw new Error(`unified resource "${k}" value conversion error: ${JSON.stringify(v)}`);
    return BigInt(v);
  };
  for (const [k, raw] of Object.entries(unified)) {
    if (k.includes("/")) throw new Error(`unified resource "${k}" must be a file name (no slashes)`);
    if (k.indexOf(".") <= 0) throw new Error(`unified resource "${k}" must be in the form CONTROLLER.PARAMETER`);
    const v = raw.trim();
    switch (k) {
      case "cpu.idle":
        if (setIdle(v)) props.push(prop("CPUWeight", "t", 0n));
        break;
      case "cpu.max": {
        const f = v.split(/\s+/).filter(Boolean);
        if (f.length < 1 || f.length > 2) throw new Error(`unified resource "${k}" value invalid: ${JSON.stringify(v)}`);
        const quota = f[0] === "max" ? 0 : Number(parse(k, f[0]!, false));
        const period = f.length === 2 ? Number(parse(k, f[1]!, false)) : Number(DEF_CPU_QUOTA_PERIOD);
        addCpuQuota(props, quota, period, o.version);
        break;
      }
      case "cpu.weight":
        if (setIdle(unified["cpu.idle"])) {
          o.warn("unable to apply both cpu.weight and cpu.idle to systemd, ignoring cpu.weight");
          break;
        }
        props.push(prop("CPUWeight", "t", parse(k, v, false)));
        break;
      case "cpuset.cpus":
      case "cpuset.mems": {
        let bits: Buffer;
        try {
          bits = rangeToBits(v);
        } catch (e) {
          throw new Error(`unified resource "${k}"=${JSON.stringify(v)} conversion error: ${(e as Error).message}`);
        }
        if (o.version >= 244) props.push(prop(k === "cpuset.cpus" ? "AllowedCPUs" : "AllowedMemoryNodes", "ay", bits));
        break;
      }
      case "memory.high":
      case "memory.low":
      case "memory.min":
      case "memory.max":
      case "memory.swap.max": {
        const names: Record<string, string> = { "memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin", "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax" };
        props.push(prop(names[k]!, "t", parse(k, v, true)));
        break;
      }
      case "pids.max": {
        const n = parse(k, v, true);
        props.push(prop("TasksMax", "t", n === 0n ? 1n : n));
        break;
      }
      default:
        break; // (memory.oom.group went with the unit's start; everything else is written to its file)
    }
  }
  return props;
}

// runc's devices/systemd.go systemdProperties: the rules (the config's, then runc's defaults) reduced by the
// emulator to DevicePolicy=strict plus a DeviceAllow list; allow-all is DevicePolicy=auto with an empty list.
// systemd cannot express deny rules on top of allow-all: those get a temporary deny-all, as runc (the BPF
// program or v1 files written afterwards have the real rules).
export function deviceProperties(r: LinuxResources, o: Pick<ResourceOptions, "version" | "warn" | "devices" | "skipDevices">): Property[] {
  if (o.skipDevices) return [];
  const props: Property[] = [prop("DeviceAllow", "a(ss)", []), prop("DevicePolicy", "s", "strict")];
  const emu = DeviceEmulator.fromRules(containerDeviceRules(r.devices, o.devices));
  if (emu.isBlacklist()) {
    if (emu.rules.size === 0) return [prop("DeviceAllow", "a(ss)", []), prop("DevicePolicy", "s", "auto")];
    o.warn("systemd doesn't support blacklist device rules -- applying temporary deny-all rule");
    return props;
  }
  const allow: [string, string][] = [];
  for (const rule of emu.entries()) {
    const group = rule.type === "b" ? "block-" : "char-";
    let p: string;
    if (rule.major === WILDCARD) {
      if (rule.minor !== WILDCARD) {
        o.warn(`systemd doesn't support '*:n' device rules -- temporarily ignoring rule: ${rule.type} *:${rule.minor} ${rule.access}`);
        continue;
      }
      p = `${group}*`;
    } else if (rule.minor === WILDCARD) {
      if (o.version < 240) {
        o.warn(`systemd ${o.version} is too old for ${group}${rule.major} -- temporarily ignoring rule: ${rule.type} ${rule.major}:* ${rule.access}`);
        continue;
      }
      p = `${group}${rule.major}`;
    } else {
      p = `/dev/${rule.type === "b" ? "block" : "char"}/${rule.major}:${rule.minor}`;
    }
    allow.push([p, rule.access]);
  }
  props.push(prop("DeviceAllow", "a(ss)", allow));
  return props;
}
