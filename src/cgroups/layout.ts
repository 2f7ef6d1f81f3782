// The host's cgroup layout, read from /proc/self/mountinfo and /proc/self/cgroup:
// v1 (controller hierarchies), v2 (one unified tree) or hybrid (v1 controllers plus a v2 tree).
import * as fs from "fs";

export interface V1Hierarchy {
  mountPoint: string; // e.g. /sys/fs/cgroup/memory
  root: string; // the mount's root inside the hierarchy (not "/" when we run in a container)
  controllers: string[]; // e.g. ["cpu", "cpuacct"], or ["name=systemd"]
}

export interface CgroupLayout {
  mode: "v1" | "v2" | "hybrid";
  v1: V1Hierarchy[];
  unified?: { mountPoint: string; root: string };
  // Our own cgroup per hierarchy: key is the controller list joined by "," ("" for v2).
  own: Map<string, string>;
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export interface MountEntry {
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
  dev: [number, number]; // the superblock's device (major, minor)
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const f = left.split(" ");
    const r = right.split(" ");
    const [major = 0, minor = 0] = (f[2] ?? "0:0").split(":").map(Number);
    out.push({ root: unescape(f[3] ?? ""), mountPoint: unescape(f[4] ?? ""), fsType: r[0] ?? "", superOptions: (r[2] ?? "").split(","), dev: [major, minor] });
  }
  return out;
}

const KNOWN_V1 = new Set(["cpuset", "cpu", "cpuacct", "io", "blkio", "memory", "devices", "freezer", "net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"]);

// A mount can be listed yet hidden under a later one (a cgroup2 mounted over /sys/fs/cgroup in a private
// mount namespace leaves the v1 mounts below it listed): it counts only if its mount point shows its own
// superblock.
export function isVisible(m: MountEntry): boolean {
  try {
    const dev = fs.statSync(m.mountPoint).dev;
    const [major, minor] = m.dev;
    // glibc's makedev
    return dev === (minor & 0xff) + (major & 0xfff) * 0x100 + (minor & ~0xff) * 0x1000 + Math.floor(major / 0x1000) * 0x100000000000;
  } catch {
    return false;
  }
}

export function detectLayout(
  mountinfo = fs.readFileSync("/proc/self/mountinfo", "utf8"),
  cgroupFile = fs.readFileSync("/proc/self/cgroup", "utf8"),
  visible: (m: MountEntry) => boolean = isVisible,
): CgroupLayout {
  const v1: V1Hierarchy[] = [];
  let unified: CgroupLayout["unified"];
  const seen = new Set<string>();
  for (const m of parseMountinfo(mountinfo)) {
    if ((m.fsType === "cgroup2" || m.fsType === "cgroup") && !visible(m)) continue;
    if (m.fsType === "cgroup2") {
      if (!unified) unified = { mountPoint: m.mountPoint, root: m.root };
    } else if (m.fsType === "cgroup") {
      const controllers = m.superOptions.filter((o) => KNOWN_V1.has(o) || o.startsWith("name="));
      const key = controllers.join(",");
      if (controllers.length === 0 || seen.has(key)) continue;
      seen.add(key);
      v1.push({ mountPoint: m.mountPoint, root: m.root, controllers });
    }
  }
  const own = new Map<string, string>();
  for (const line of cgroupFile.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    own.set(m[2]!, m[3]!);
  }
  const mode = v1.length === 0 ? "v2" : unified ? "hybrid" : "v1";
  if (mode === "v2" && !unified) throw new Error("no cgroup filesystem is mounted on this host");
  return { mode, v1, ...(unified ? { unified } : {}), own };
}
