// The shape of a container's cgroup statistics as `runc events` prints them (runc's types.Stats: cpu, cpuset,
// memory, pids, blkio, hugetlb, intel_rdt, network_interfaces), and the reading helpers the controllers
// share. Each controller fills its own part (controllers/*.ts); the manager decides where each reads from.
// Fields Go would omit (omitempty/omitzero) are left undefined.
import * as path from "path";
import { errnoCode } from "../errors";
import type { GoJson } from "../gojson";
import { parseUint, readCgroupFile } from "./files";

export type Obj = { [key: string]: GoJson };

export type Stats = {
  cpu: Obj;
  cpuset: Obj;
  memory: Obj;
  pids: Obj;
  blkio: Obj;
  hugetlb: Obj;
  intel_rdt: Obj;
  network_interfaces: null;
};

export function emptyStats(): Stats {
  return { cpu: {}, cpuset: {}, memory: {}, pids: {}, blkio: {}, hugetlb: {}, intel_rdt: {}, network_interfaces: null };
}

export const nzBig = (v: bigint): bigint | undefined => (v === 0n ? undefined : v);
export const nonEmpty = <T>(l: T[]): T[] | undefined => (l.length === 0 ? undefined : l);
export const isMissing = (e: unknown): boolean => errnoCode(e) === "ENOENT" || errnoCode(e) === "ENODEV";

// undefined when the file does not exist (an optional knob), errors otherwise.
export function optional<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}

// "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" / "full ..." (v2 only).
export function psi(dir: string, file: string): Obj | undefined {
  const text = optional(() => readCgroupFile(dir, file));
  if (text === undefined) return undefined;
  const out: Obj = {};
  for (const line of text.split("\n")) {
    const [kind, ...fields] = line.trim().split(/\s+/);
    if (kind !== "some" && kind !== "full") continue;
    const d: Record<string, number | bigint> = { avg10: 0, avg60: 0, avg300: 0, total: 0n };
    for (const f of fields) {
      const [k, v] = f.split("=");
      if (k === "total") d.total = parseUint(v ?? "", path.join(dir, file));
      else if (k === "avg10" || k === "avg60" || k === "avg300") d[k] = Number(v);
    }
    if (d.avg10 !== 0 || d.avg60 !== 0 || d.avg300 !== 0 || d.total !== 0n) out[kind] = { avg10: d.avg10!, avg60: d.avg60!, avg300: d.avg300!, total: d.total! };
  }
  return out;
}
