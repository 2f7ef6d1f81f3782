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

// "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" / "full ..." (v2 only), as runc's fs2 statPSI: no file
// (a kernel without PSI, or "0" in cgroup.pressure) and a kernel that refuses the read (ENOTSUP without
// psi=1) read as none; a malformed field is an error naming the file. A line whose values are all zero is
// left out (omitzero), so a file of zeros reads as {}.
export function psi(dir: string, file: string): Obj | undefined {
  let text: string | undefined;
  try {
    text = optional(() => readCgroupFile(dir, file));
  } catch (e) {
    if (errnoCode(e) === "EOPNOTSUPP" || errnoCode(e) === "ENOTSUP") return undefined;
    throw e;
  }
  if (text === undefined) return undefined;
  const where = path.join(dir, file);
  const out: Obj = {};
  for (const line of text.split("\n")) {
    const [kind, ...fields] = line.trim().split(/\s+/);
    if (kind !== "some" && kind !== "full") continue;
    const d: Record<string, number | bigint> = { avg10: 0, avg60: 0, avg300: 0, total: 0n };
    for (const f of fields) {
      const eq = f.indexOf("=");
      if (eq < 0) throw new Error(`unable to parse ${where}: invalid psi data: ${JSON.stringify(f)}`);
      const [k, v] = [f.slice(0, eq), f.slice(eq + 1)];
      if (k === "total") d.total = parseUint(v, where);
      else if (k === "avg10" || k === "avg60" || k === "avg300") {
        if (!/^[0-9]+(\.[0-9]*)?$/.test(v)) throw new Error(`unable to parse ${where}: invalid ${k} PSI value: ${JSON.stringify(v)}`);
        d[k] = Number(v);
      }
    }
    if (d.avg10 !== 0 || d.avg60 !== 0 || d.avg300 !== 0 || d.total !== 0n) out[kind] = { avg10: d.avg10!, avg60: d.avg60!, avg300: d.avg300!, total: d.total! };
  }
  return out;
}
