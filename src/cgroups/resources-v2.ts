// cgroup v2 writers, as runc's fs2 package (memory.go, cpu.go, cpuset.go, io.go, fs2.go setUnified), with
// runc's conversions from the spec's v1-shaped values (convert.ts).
import type { LinuxBlockIO, LinuxCPU, LinuxMemory } from "../spec/schema";
import { blkioWeightToIoWeight, cpuSharesToWeight, memorySwapToV2, v2Limit } from "./convert";
import { num } from "./files";
import { checkMemoryUsage, type Writer } from "./resources";

const M = "linux.resources.memory";
const C = "linux.resources.cpu";
const B = "linux.resources.blockIO";

export function cpuset(w: Writer, c: LinuxCPU): void {
  if (c.cpus) w.write(`${C}.cpus`, "cpuset.cpus", c.cpus);
  if (c.mems) w.write(`${C}.mems`, "cpuset.mems", c.mems);
}

// memory.max / memory.swap.max (swap alone: the spec's memory+swap minus memory) / memory.low.
export function memory(w: Writer, m: LinuxMemory): void {
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

// cpu.weight from the shares, cpu.max "QUOTA|max PERIOD" (period defaults to 100000), cpu.max.burst, cpu.idle.
export function cpu(w: Writer, c: LinuxCPU): void {
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

// io.bfq.weight takes the blkio weight as it is; without BFQ, io.weight takes it converted. Per-device
// weights need a BFQ that lists them ("default N" then "MAJ:MIN N" lines, kernel 5.4+): runc skips them
// otherwise, tsrun says so.
export function io(w: Writer, b: LinuxBlockIO): void {
  const bfq = w.exists("io.bfq.weight");
  const devices = (b.weightDevice ?? []).filter((d) => d.weight);
  // read before the weight is written; a kernel with per-device weights reads "default N\n[MAJ:MIN N]..."
  const perDevice = devices.length > 0 && bfq && !/^\s*\d+\s*$/.test(w.read(`${B}.weightDevice`, "io.bfq.weight"));
  if (b.weight) {
    if (bfq) w.write(`${B}.weight`, "io.bfq.weight", String(b.weight));
    else w.write(`${B}.weight`, "io.weight", String(blkioWeightToIoWeight(b.weight)));
  }
  if (devices.length > 0) {
    if (!perDevice) w.warn(`${B}.weightDevice: ${w.dir} has no per-device BFQ weights (io.bfq.weight); ignored as runc does`);
    else devices.forEach((d) => w.write(`${B}.weightDevice`, "io.bfq.weight", `${d.major}:${d.minor} ${d.weight}`));
  }
  const throttles: [keyof LinuxBlockIO, string][] = [
    ["throttleReadBpsDevice", "rbps"],
    ["throttleWriteBpsDevice", "wbps"],
    ["throttleReadIOPSDevice", "riops"],
    ["throttleWriteIOPSDevice", "wiops"],
  ];
  for (const [key, name] of throttles) {
    const list = (b[key] ?? []) as { major: number; minor: number; rate: number }[];
    list.forEach((t, i) => w.write(`${B}.${key}[${i}]`, "io.max", `${t.major}:${t.minor} ${name}=${num(t.rate)}`));
  }
}

// linux.resources.unified: "controller.knob" -> value, written last so it overrides the above. A value of
// several lines is written line by line (runc's WriteFileByLine).
export function unified(w: Writer, values: Record<string, string>): void {
  const controllers = () => {
    try {
      return w.read("linux.resources.unified", "cgroup.controllers").split(/\s+/);
    } catch {
      return [];
    }
  };
  for (const [key, value] of Object.entries(values)) {
    const setting = `linux.resources.unified[${JSON.stringify(key)}]`;
    if (key.includes("/") || key === "." || key === "..") throw new Error(`${setting}: unified resource must be a file name (no slashes)`);
    for (const line of value.split("\n")) {
      if (line === "" && value !== "") continue;
      const e = w.attempt(key, line);
      if (!e) continue;
      if (e.code === "EPERM" || e.code === "ENOENT" || e.code === "EACCES") {
        const dot = key.indexOf(".");
        if (dot <= 0) throw new Error(`${setting}: unified resource must be in the form CONTROLLER.PARAMETER (${e.file})`);
        const c = key.slice(0, dot);
        if (c !== "cgroup" && !controllers().includes(c)) throw new Error(`${setting}: unified resource can't be set: controller ${JSON.stringify(c)} not available in ${w.dir}/cgroup.controllers`);
      }
      throw w.fail(setting, e);
    }
  }
}
