// cpuset: linux.resources.cpu.cpus / .mems (runc's fs/cpuset.go, fs2/cpuset.go). Statistics on v1 only (runc's
// fs2 reports none: the fields read as zero).
import type { LinuxResources } from "../../spec/schema";
import type { Controller, Location, Writer } from "../controller";
import { readCgroupFile, readUint } from "../files";
import { nonEmpty, optional, type Stats } from "../stats";

const C = "linux.resources.cpu";

function apply(w: Writer, r: LinuxResources): void {
  const c = r.cpu!;
  // Old kernels mounted v1 cpuset with "noprefix": cpus/mems without the "cpuset." prefix (runc's cpusetFile).
  const file = (name: string) => (w.version === 2 || w.exists(`cpuset.${name}`) || !w.exists(name) ? `cpuset.${name}` : name);
  if (c.cpus) w.write(`${C}.cpus`, file("cpus"), c.cpus);
  if (c.mems) w.write(`${C}.mems`, file("mems"), c.mems);
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

function stats(loc: Location | undefined, s: Stats): void {
  const dir = loc?.version === 1 ? loc.dir : undefined;
  const num = (f: string): bigint => (dir ? (optional(() => readUint(dir, `cpuset.${f}`)) ?? 0n) : 0n);
  const list = (f: string) => (dir ? optional(() => readCgroupFile(dir, `cpuset.${f}`)) : undefined);
  const cpus = list("cpus");
  const mems = list("mems");
  const relax = dir ? optional(() => readCgroupFile(dir, "cpuset.sched_relax_domain_level").trim()) : undefined;
  s.cpuset = {
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

export const cpuset: Controller = {
  name: "cpuset",
  setting: C,
  needed: (r) => !!(r.cpu?.cpus || r.cpu?.mems),
  apply,
  stats,
};
