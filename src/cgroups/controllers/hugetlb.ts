// hugetlb: linux.resources.hugepageLimits (hugetlb.<size>.limit_in_bytes on v1, hugetlb.<size>.max on v2) and
// its statistics. A hybrid host may have hugetlb on v2 only (this one does): limits and statistics then both
// go to the container's v2 directory.
import * as fs from "fs";
import type { LinuxResources } from "../../spec/schema";
import { sortedMap } from "../../gojson";
import type { Controller, Writer } from "../controller";
import { any } from "../controller";
import { readKeyValues, readUint } from "../files";
import { nzBig, type Obj, optional } from "../stats";

// The host's huge page sizes as the hugetlb files name them ("2MB", "1GB").
export function hugePageSizes(): string[] {
  let names: string[];
  try {
    names = fs.readdirSync("/sys/kernel/mm/hugepages");
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names.sort()) {
    const m = /^hugepages-(\d+)kB$/.exec(n);
    if (!m) continue;
    const kb = Number(m[1]);
    out.push(kb >= 1 << 20 ? `${kb >> 20}GB` : kb >= 1 << 10 ? `${kb >> 10}MB` : `${kb}KB`);
  }
  return out;
}

// The reservation limit next to each limit when the kernel has one (runc skips .rsvd on kernels without it,
// as here).
function apply(w: Writer, r: LinuxResources): void {
  const suffix = w.version === 1 ? ".limit_in_bytes" : ".max";
  let rsvd = true;
  r.hugepageLimits!.forEach((l, i) => {
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

function statsV1(dir: string): Obj {
  const out: Record<string, Obj> = {};
  for (const size of hugePageSizes()) {
    const prefix = optional(() => readUint(dir, `hugetlb.${size}.rsvd.usage_in_bytes`)) !== undefined ? `hugetlb.${size}.rsvd` : `hugetlb.${size}`;
    const usage = optional(() => readUint(dir, `${prefix}.usage_in_bytes`));
    if (usage === undefined) continue;
    out[size] = { usage: nzBig(usage), max: nzBig(readUint(dir, `${prefix}.max_usage_in_bytes`)), failcnt: readUint(dir, `${prefix}.failcnt`) };
  }
  return sortedMap(out);
}

function statsV2(dir: string): Obj {
  const out: Record<string, Obj> = {};
  for (const size of hugePageSizes()) {
    const prefix = `hugetlb.${size}`;
    const usage = optional(() => readUint(dir, `${prefix}.rsvd.current`)) ?? optional(() => readUint(dir, `${prefix}.current`));
    if (usage === undefined) continue;
    const events = optional(() => readKeyValues(dir, `${prefix}.events`));
    out[size] = { usage: nzBig(usage), failcnt: events?.get("max") ?? 0n };
  }
  return sortedMap(out);
}

export const hugetlb: Controller = {
  name: "hugetlb",
  setting: "linux.resources.hugepageLimits",
  statsWhereApplied: true,
  needed: (r) => any(r.hugepageLimits),
  apply,
  stats: (loc, s) => {
    if (loc) s.hugetlb = loc.version === 1 ? statsV1(loc.dir) : statsV2(loc.dir);
  },
};
