// blkio (v1) / io (v2): linux.resources.blockIO (runc's fs/blkio.go, fs2/io.go with runc's weight
// conversion) and the I/O statistics in v1's shape.
import * as path from "path";
import type { LinuxBlockIO, LinuxResources } from "../../spec/schema";
import type { GoJson } from "../../gojson";
import type { Controller, Location, Writer } from "../controller";
import { any, nz } from "../controller";
import { blkioWeightToIoWeight } from "../convert";
import { num, parseUint, readCgroupFile } from "../files";
import { nonEmpty, nzBig, type Obj, optional, psi } from "../stats";

const B = "linux.resources.blockIO";

// v1: blkio.weight where the kernel has CFQ's files, else BFQ's blkio.bfq.weight (runc's detectWeightFilenames).
function applyV1(w: Writer, b: LinuxBlockIO): void {
  const cfq = w.exists("blkio.weight");
  const weightFile = cfq ? "blkio.weight" : "blkio.bfq.weight";
  const weightDeviceFile = cfq ? "blkio.weight_device" : "blkio.bfq.weight_device";
  if (b.weight) w.write(`${B}.weight`, weightFile, String(b.weight));
  if (b.leafWeight) w.write(`${B}.leafWeight`, "blkio.leaf_weight", String(b.leafWeight));
  (b.weightDevice ?? []).forEach((d, i) => {
    if (d.weight) w.write(`${B}.weightDevice[${i}].weight`, weightDeviceFile, `${d.major}:${d.minor} ${d.weight}`);
    if (d.leafWeight) w.write(`${B}.weightDevice[${i}].leafWeight`, "blkio.leaf_weight_device", `${d.major}:${d.minor} ${d.leafWeight}`);
  });
  const throttles: [keyof LinuxBlockIO, string][] = [
    ["throttleReadBpsDevice", "blkio.throttle.read_bps_device"],
    ["throttleWriteBpsDevice", "blkio.throttle.write_bps_device"],
    ["throttleReadIOPSDevice", "blkio.throttle.read_iops_device"],
    ["throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"],
  ];
  for (const [key, file] of throttles) {
    const list = (b[key] ?? []) as { major: number; minor: number; rate: number }[];
    list.forEach((t, i) => w.write(`${B}.${key}[${i}]`, file, `${t.major}:${t.minor} ${num(t.rate)}`));
  }
}

// v2: io.bfq.weight takes the blkio weight as it is; without BFQ, io.weight takes it converted. Per-device
// weights need a BFQ that lists them ("default N" then "MAJ:MIN N" lines, kernel 5.4+): runc skips them
// otherwise, tsrun says so.
function applyV2(w: Writer, b: LinuxBlockIO): void {
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

// ---------------------------------------------------------------------------------------------------------
// statistics

interface BlkioEntry {
  major: bigint;
  minor: bigint;
  op: string;
  value: bigint;
}
function blkioEntries(l: BlkioEntry[]): GoJson {
  return nonEmpty(l.map((e) => ({ major: nzBig(e.major), minor: nzBig(e.minor), op: e.op || undefined, value: nzBig(e.value) })));
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

function statsV1(dir: string | undefined): Obj {
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

// io.stat "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ..." in v1's terms (Read/Write per device).
function statsV2(dir: string): Obj {
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

export const blkio: Controller = {
  name: "blkio",
  v2Name: "io",
  setting: B,
  needed: (r: LinuxResources) => {
    const b = r.blockIO;
    return (
      !!b && (nz(b.weight) || nz(b.leafWeight) || any(b.weightDevice) || any(b.throttleReadBpsDevice) || any(b.throttleWriteBpsDevice) || any(b.throttleReadIOPSDevice) || any(b.throttleWriteIOPSDevice))
    );
  },
  apply: (w, r) => (w.version === 1 ? applyV1(w, r.blockIO!) : applyV2(w, r.blockIO!)),
  stats: (loc: Location | undefined, s) => {
    s.blkio = loc?.version === 2 ? statsV2(loc.dir) : statsV1(loc?.dir);
  },
};
