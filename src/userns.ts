// User namespaces as this process sees them (no imports beyond fs: every verb may load this).
import * as fs from "fs";

// Whether this process is in a user namespace other than the initial one (its uid map is not the identity
// over every uid), as runc's userns.RunningInUserNS.
export function runningInUserNamespace(): boolean {
  try {
    return !/^\s*0\s+0\s+4294967295\s*$/.test(fs.readFileSync("/proc/self/uid_map", "utf8"));
  } catch {
    return false;
  }
}

// The uid `uid` is in the parent user namespace, by a uid_map's text ("inside outside count" lines);
// undefined when the map does not cover it.
export function outsideUid(uid: number, map: string): number | undefined {
  for (const line of map.split("\n")) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length !== 3 || f.some((n) => !Number.isSafeInteger(n))) continue;
    const [inside, outside, count] = f as [number, number, number];
    if (uid >= inside && uid < inside + count) return outside + (uid - inside);
  }
  return undefined;
}
