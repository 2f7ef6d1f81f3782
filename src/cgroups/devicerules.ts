// Device cgroup rules: the config's linux.resources.devices converted as runc's specconv does, followed by
// runc's default allow list (specconv.AllowedDevices), and runc's rule emulator (cgroups/devices/
// devices_emulator.go), which reduces any rule list to the state the v1 devices controller would end in:
// a default (allow or deny) plus per-device exceptions. v1 is driven by the transition from the cgroup's
// devices.list to that state; the v2 BPF program is generated from the same state, so both behave alike.
import type { LinuxDevice, LinuxDeviceCgroup } from "../spec/schema";

export type DeviceType = "a" | "b" | "c";

export interface DeviceRule {
  type: DeviceType; // "a": every device (major/minor ignored)
  major: number; // -1: any
  minor: number; // -1: any
  access: string; // a subset of "rwm", normalised to that order
  allow: boolean;
}

export const WILDCARD = -1;

// runc's AllowedDevices: mknod of any device, the default nodes, ptys, /dev/ptmx, and /dev/net/tun.
// Entries with a path are dropped when the config lists a device at the same path (its own entry wins).
const ALLOWED: (DeviceRule & { path?: string })[] = [
  { type: "c", major: WILDCARD, minor: WILDCARD, access: "m", allow: true },
  { type: "b", major: WILDCARD, minor: WILDCARD, access: "m", allow: true },
  { path: "/dev/null", type: "c", major: 1, minor: 3, access: "rwm", allow: true },
  { path: "/dev/random", type: "c", major: 1, minor: 8, access: "rwm", allow: true },
  { path: "/dev/full", type: "c", major: 1, minor: 7, access: "rwm", allow: true },
  { path: "/dev/tty", type: "c", major: 5, minor: 0, access: "rwm", allow: true },
  { path: "/dev/zero", type: "c", major: 1, minor: 5, access: "rwm", allow: true },
  { path: "/dev/urandom", type: "c", major: 1, minor: 9, access: "rwm", allow: true },
  { type: "c", major: 136, minor: WILDCARD, access: "rwm", allow: true }, // /dev/pts/*
  { type: "c", major: 5, minor: 2, access: "rwm", allow: true }, // /dev/ptmx
  { type: "c", major: 10, minor: 200, access: "rwm", allow: true }, // /dev/net/tun (kept by runc for compatibility)
];

const PERM_BITS: Record<string, number> = { r: 1, w: 2, m: 4 };

function toBits(access: string): number {
  let b = 0;
  for (const c of access) b |= PERM_BITS[c] ?? 0;
  return b;
}

function fromBits(b: number): string {
  return (b & 1 ? "r" : "") + (b & 2 ? "w" : "") + (b & 4 ? "m" : "");
}

// The cgroup rules for a container: its configured rules in order, then the defaults (as runc's
// CreateCgroupConfig). Rules are validated as runc does.
export function containerDeviceRules(rules: readonly LinuxDeviceCgroup[] | undefined, devices: readonly LinuxDevice[] | undefined): DeviceRule[] {
  const out: DeviceRule[] = [];
  (rules ?? []).forEach((d, i) => {
    if (!d.access) throw new Error(`linux.resources.devices[${i}]: device access at ${i} field cannot be empty`);
    out.push({ type: d.type ?? "a", major: d.major ?? WILDCARD, minor: d.minor ?? WILDCARD, access: fromBits(toBits(d.access)), allow: d.allow });
  });
  const paths = new Set((devices ?? []).map((d) => d.path));
  for (const a of ALLOWED) {
    if (a.path && paths.has(a.path)) continue;
    out.push({ type: a.type, major: a.major, minor: a.minor, access: a.access, allow: a.allow });
  }
  return out;
}

export function ruleString(r: Pick<DeviceRule, "type" | "major" | "minor" | "access">): string {
  const n = (v: number) => (v === WILDCARD ? "*" : String(v));
  return `${r.type} ${n(r.major)}:${n(r.minor)} ${r.access}`;
}

type Key = string; // "c:1:3"

function keyOf(type: DeviceType, major: number, minor: number): Key {
  return `${type}:${major}:${minor}`;
}

function parseKey(k: Key): { type: DeviceType; major: number; minor: number } {
  const [t, ma, mi] = k.split(":");
  return { type: t as DeviceType, major: Number(ma), minor: Number(mi) };
}

// The state of a devices cgroup: a default and the exceptions to it (permission bits per device).
export class DeviceEmulator {
  defaultAllow = false;
  rules = new Map<Key, number>();

  static fromRules(rules: readonly DeviceRule[]): DeviceEmulator {
    const e = new DeviceEmulator();
    for (const r of rules) e.apply(r);
    return e;
  }

  // devices.list lists what is allowed: "a *:* rwm" for allow-all, else one line per allowed device.
  static fromList(list: string): DeviceEmulator {
    const e = new DeviceEmulator();
    for (const line of list.split("\n")) {
      if (!line.trim()) continue;
      const f = line.trim().split(/[ :]/);
      if (f.length !== 4) throw new Error(`malformed devices.list rule ${JSON.stringify(line)}`);
      const [type, major, minor, perms] = f as [string, string, string, string];
      if (type === "a") {
        e.reset(true);
        continue;
      }
      if (type !== "b" && type !== "c") throw new Error(`devices.list: unknown device type ${JSON.stringify(type)}`);
      if (!/^[rwm]+$/.test(perms) || fromBits(toBits(perms)) !== perms) throw new Error(`devices.list: bad access ${JSON.stringify(perms)}`);
      const num = (s: string) => (s === "*" ? WILDCARD : Number(s));
      e.allowException({ type, major: num(major), minor: num(minor), access: perms, allow: true });
    }
    return e;
  }

  isBlacklist(): boolean {
    return this.defaultAllow;
  }

  private reset(defaultAllow: boolean): void {
    this.defaultAllow = defaultAllow;
    this.rules = new Map();
  }

  private addRule(r: DeviceRule): void {
    const k = keyOf(r.type, r.major, r.minor);
    this.rules.set(k, (this.rules.get(k) ?? 0) | toBits(r.access));
  }

  // Removing an exception may not punch a hole in a wildcard exception (v1 cannot express that).
  private rmRule(r: DeviceRule): void {
    const bits = toBits(r.access);
    for (const [ma, mi] of [
      [WILDCARD, r.minor],
      [r.major, WILDCARD],
      [WILDCARD, WILDCARD],
    ] as const) {
      if (ma === r.major && mi === r.minor) continue;
      const partial = this.rules.get(keyOf(r.type, ma, mi)) ?? 0;
      if (partial & bits)
        throw new Error(`device rule ${ruleString(r)} is not supported by the devices cgroup (cannot punch a hole in the wildcard rule ${ruleString({ type: r.type, major: ma, minor: mi, access: fromBits(partial) })})`);
    }
    const k = keyOf(r.type, r.major, r.minor);
    const left = (this.rules.get(k) ?? 0) & ~bits;
    if (left) this.rules.set(k, left);
    else this.rules.delete(k);
  }

  private allowException(r: DeviceRule): void {
    if (this.defaultAllow) this.rmRule(r);
    else this.addRule(r);
  }

  private denyException(r: DeviceRule): void {
    if (this.defaultAllow) this.addRule(r);
    else this.rmRule(r);
  }

  apply(r: DeviceRule): void {
    if (r.type === "a") this.reset(r.allow);
    else if (r.allow) this.allowException(r);
    else this.denyException(r);
  }

  // Exceptions in runc's order (major, minor, type), each with its permission string.
  entries(): { type: DeviceType; major: number; minor: number; access: string }[] {
    return [...this.rules.entries()]
      .map(([k, bits]) => ({ ...parseKey(k), access: fromBits(bits) }))
      .sort((a, b) => a.major - b.major || a.minor - b.minor || a.type.localeCompare(b.type));
  }

  // The fewest rules that take a cgroup in this state to `target`: a reset first when the default changes
  // (or this is a blacklist, whose exceptions cannot be listed), then dropped and gained permissions.
  transition(target: DeviceEmulator): DeviceRule[] {
    const out: DeviceRule[] = [];
    let old = this.rules;
    if (this.isBlacklist() || this.defaultAllow !== target.defaultAllow) {
      out.push({ type: "a", major: WILDCARD, minor: WILDCARD, access: "rwm", allow: target.defaultAllow });
      old = new Map();
    }
    const sorted = (m: Map<Key, number>) => {
      const e = new DeviceEmulator();
      e.rules = m;
      return e.entries();
    };
    for (const r of sorted(old)) {
      const dropped = toBits(r.access) & ~(target.rules.get(keyOf(r.type, r.major, r.minor)) ?? 0);
      if (dropped) out.push({ ...r, access: fromBits(dropped), allow: target.defaultAllow });
    }
    for (const r of target.entries()) {
      const gained = toBits(r.access) & ~(old.get(keyOf(r.type, r.major, r.minor)) ?? 0);
      if (gained) out.push({ ...r, access: fromBits(gained), allow: !target.defaultAllow });
    }
    return out;
  }

  // The state as rules from a default-deny cgroup (what the BPF program encodes).
  cleanRules(): DeviceRule[] {
    return new DeviceEmulator().transition(this);
  }

  equals(o: DeviceEmulator): boolean {
    if (this.defaultAllow !== o.defaultAllow || this.rules.size !== o.rules.size) return false;
    for (const [k, v] of this.rules) if (o.rules.get(k) !== v) return false;
    return true;
  }
}
