// What the harness looks at on the host: cgroup hierarchies, the mount table, namespaces and processes, and
// the facts that decide whether a case can run here at all.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
  options: string[];
  optional: string[];
  superOptions: string[];
}

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-3][0-7]{2})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const f = line.split(" ");
    const dash = f.indexOf("-", 6);
    if (dash < 0) continue;
    out.push({
      mountPoint: unescapeOctal(f[4] ?? ""),
      options: (f[5] ?? "").split(","),
      optional: f.slice(6, dash),
      fsType: f[dash + 1] ?? "",
      source: unescapeOctal(f[dash + 2] ?? ""),
      superOptions: (f[dash + 3] ?? "").split(","),
    });
  }
  return out;
}

export function hostMounts(pid: number | "self" = "self"): MountEntry[] {
  return parseMountinfo(fs.readFileSync(`/proc/${pid}/mountinfo`, "utf8"));
}

export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  return hostMounts()
    .map((m) => m.mountPoint)
    .filter((p) => p === dir || p.startsWith(prefix));
}

// Every cgroup hierarchy mounted on the host: v1 ones (cgroup) and the v2 one (cgroup2), with their controllers.
export interface Hierarchy {
  mountPoint: string;
  version: 1 | 2;
  controllers: string[];
}

let hierarchiesCache: Hierarchy[] | undefined;
export function cgroupHierarchies(): Hierarchy[] {
  if (hierarchiesCache) return hierarchiesCache;
  const seen = new Set<string>();
  const out: Hierarchy[] = [];
  for (const m of hostMounts()) {
    if (m.fsType !== "cgroup" && m.fsType !== "cgroup2") continue;
    if (seen.has(m.mountPoint)) continue;
    seen.add(m.mountPoint);
    if (m.fsType === "cgroup2") {
      const ctl = readOr(path.join(m.mountPoint, "cgroup.controllers"), "").trim();
      out.push({ mountPoint: m.mountPoint, version: 2, controllers: ctl ? ctl.split(" ") : [] });
    } else {
      const ctl = m.superOptions.filter((o) => !["rw", "ro", "relatime", "noexec", "nosuid", "nodev", "clone_children", "xattr"].includes(o));
      out.push({ mountPoint: m.mountPoint, version: 1, controllers: ctl });
    }
  }
  return (hierarchiesCache = out);
}

// The directories a cgroupsPath names, one per hierarchy, whether they exist or not.
export function cgroupDirs(cgroupsPath: string): string[] {
  return cgroupHierarchies().map((h) => path.join(h.mountPoint, cgroupsPath));
}

export function existingCgroupDirs(cgroupsPath: string): string[] {
  return cgroupDirs(cgroupsPath).filter((d) => fs.existsSync(d));
}

// The first existing file among the given names in any hierarchy's directory for cgroupsPath.
export function findCgroupFile(cgroupsPath: string, names: string[]): { file: string; value: string } | undefined {
  for (const dir of existingCgroupDirs(cgroupsPath)) {
    for (const n of names) {
      const f = path.join(dir, n);
      if (fs.existsSync(f)) return { file: f, value: readOr(f, "").trim() };
    }
  }
  return undefined;
}

// Removes a cgroup tree the harness owns: processes still in it are killed, then directories go deepest first.
export function removeCgroupTree(dir: string): string | undefined {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? undefined : `${dir}: ${(e as Error).message}`;
  }
  const problems: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const p = removeCgroupTree(path.join(dir, e.name));
    if (p) problems.push(p);
  }
  for (let i = 0; i < 100; i++) {
    for (const pid of readOr(path.join(dir, "cgroup.procs"), "").split("\n")) {
      if (pid) killQuietly(Number(pid));
    }
    try {
      fs.rmdirSync(dir);
      return problems.length > 0 ? problems.join("; ") : undefined;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return undefined;
      if (i === 99) return [...problems, `${dir}: ${(e as Error).message}`].join("; ");
      sleepSync(20);
    }
  }
  return undefined;
}

export function killQuietly(pid: number, signal: NodeJS.Signals = "SIGKILL"): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone
  }
}

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return fallback;
  }
}

export function nsInode(pid: number | "self", type: string): number | undefined {
  try {
    const m = /\[(\d+)\]/.exec(fs.readlinkSync(`/proc/${pid}/ns/${type}`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

// A process identity that survives pid reuse: the pid and its start time (field 22 of /proc/PID/stat).
export interface ProcessId {
  pid: number;
  start: string;
}

function statFields(pid: number): string[] | undefined {
  const stat = readOr(`/proc/${pid}/stat`, "");
  if (!stat) return undefined;
  return stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from 3 (state) on
}

export function processId(pid: number): ProcessId | undefined {
  const start = statFields(pid)?.[19];
  return start === undefined ? undefined : { pid, start };
}

// Alive: the same process (same start time), not a zombie.
export function isAlive(p: ProcessId): boolean {
  const f = statFields(p.pid);
  if (!f || f[19] !== p.start) return false;
  return f[0] !== "Z" && f[0] !== "X";
}

// Facts about this host that decide whether a case can run here.
export interface HostFacts {
  arch: string;
  timeNamespaces: boolean;
  userNamespaces: boolean;
  cgroupV2Only: boolean;
  selinux: boolean;
  apparmor: boolean;
  resctrl: boolean;
  blockDevice?: { major: number; minor: number; name: string };
  hugepageSizes: string[]; // "2MB", "1GB"
  hugetlbV2: boolean; // hugetlb is a cgroup v2 controller here
  capSysResource: boolean; // the harness (and so the runtime) may raise hard rlimits and lower oom_score_adj
}

let hostFactsCache: HostFacts | undefined;
export function hostFacts(): HostFacts {
  if (hostFactsCache) return hostFactsCache;
  const hs = cgroupHierarchies();
  const blk = firstBlockDevice();
  hostFactsCache = {
    arch: process.arch,
    timeNamespaces: fs.existsSync("/proc/self/ns/time"),
    userNamespaces: fs.existsSync("/proc/self/ns/user") && readOr("/proc/sys/user/max_user_namespaces", "0").trim() !== "0",
    cgroupV2Only: hs.length === 1 && hs[0]!.version === 2,
    selinux: fs.existsSync("/sys/fs/selinux/enforce"),
    apparmor: readOr("/sys/module/apparmor/parameters/enabled", "N").trim() === "Y",
    resctrl: hostMounts().some((m) => m.fsType === "resctrl"),
    hugepageSizes: hugepageSizes(),
    hugetlbV2: hs.some((h) => h.version === 2 && h.controllers.includes("hugetlb")),
    capSysResource: hasEffectiveCap(24),
  };
  if (blk) hostFactsCache.blockDevice = blk;
  return hostFactsCache;
}

function hasEffectiveCap(bit: number): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readOr("/proc/self/status", ""));
  return m !== null && ((BigInt(`0x${m[1]}`) >> BigInt(bit)) & 1n) === 1n;
}

function firstBlockDevice(): { major: number; minor: number; name: string } | undefined {
  let names: string[];
  try {
    names = fs.readdirSync("/sys/block").sort();
  } catch {
    return undefined;
  }
  for (const name of names) {
    if (/^(loop|ram|zram|dm-|sr|nbd)/.test(name)) continue;
    const dev = readOr(`/sys/block/${name}/dev`, "").trim();
    const m = /^(\d+):(\d+)$/.exec(dev);
    if (m) return { name, major: Number(m[1]), minor: Number(m[2]) };
  }
  return undefined;
}

function hugepageSizes(): string[] {
  let dirs: string[];
  try {
    dirs = fs.readdirSync("/sys/kernel/mm/hugepages");
  } catch {
    return [];
  }
  return dirs
    .map((d) => /^hugepages-(\d+)kB$/.exec(d))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b)
    .map((kb) => (kb >= 1048576 ? `${kb / 1048576}GB` : kb >= 1024 ? `${kb / 1024}MB` : `${kb}KB`));
}

// Runs a host command synchronously and returns its stdout (throws on failure).
export function hostRun(file: string, args: string[]): string {
  return execFileSync(file, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}
