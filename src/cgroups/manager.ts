// Where a container's cgroups are, creating them, putting processes in them, and removing them.
// Resource limits are written by cgroups/resources.ts; this module owns placement and lifetime only.
import * as fs from "fs";
import * as path from "path";
import { CgroupLayout, detectLayout } from "./layout";

export interface CgroupPaths {
  // Absolute directories, one per v1 hierarchy (key: its controllers joined by ",") and "" for v2.
  dirs: Record<string, string>;
  // The directories this container created (removed on delete, deepest first). Never a pre-existing one.
  created: string[];
}

// runc's rules: an absolute cgroupsPath is taken from each hierarchy's root; a relative one (and the
// default, the container id) is placed under the cgroup tsrun itself runs in.
export function resolveCgroupPaths(cgroupsPath: string | undefined, id: string, layout: CgroupLayout = detectLayout()): Record<string, string> {
  const inner = cgroupsPath && cgroupsPath.length > 0 ? cgroupsPath : id;
  if (/^[^/:]*:[^:]*:[^:]*$/.test(inner) && !inner.startsWith("/")) {
    throw new Error(`cgroupsPath "${inner}" is in systemd's slice:prefix:name form; tsrun manages cgroupfs only (no systemd on this host)`);
  }
  const norm = (p: string) => path.posix.normalize(p);
  if (norm(`/${inner}`).split("/").includes("..")) throw new Error(`cgroupsPath "${inner}" escapes the cgroup hierarchy`);
  const dirs: Record<string, string> = {};
  const place = (mountPoint: string, mountRoot: string, own: string | undefined): string => {
    const rel = inner.startsWith("/") ? norm(inner) : norm(path.posix.join(own ?? "/", inner));
    // Paths in /proc/self/cgroup are relative to the hierarchy's root; the mount may show a sub-tree.
    const under = mountRoot !== "/" && rel.startsWith(mountRoot) ? rel.slice(mountRoot.length) : rel;
    return path.join(mountPoint, under);
  };
  for (const h of layout.v1) {
    const key = h.controllers.join(",");
    dirs[key] = place(h.mountPoint, h.root, layout.own.get(key));
  }
  if (layout.unified) dirs[""] = place(layout.unified.mountPoint, layout.unified.root, layout.own.get(""));
  return dirs;
}

// mkdir -p, remembering which directories are new. cpuset (v1) children start empty: inherit the parent's.
export function createCgroups(dirs: Record<string, string>): CgroupPaths {
  const created: string[] = [];
  try {
    for (const [key, dir] of Object.entries(dirs)) {
      const missing: string[] = [];
      for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
      for (const d of missing) {
        try {
          fs.mkdirSync(d);
          created.push(d);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`create cgroup ${d}: ${(e as Error).message}`);
        }
        if (key.split(",").includes("cpuset")) inheritCpuset(d);
      }
    }
  } catch (e) {
    removeCgroups(created);
    throw e;
  }
  return { dirs, created };
}

function inheritCpuset(dir: string): void {
  for (const f of ["cpuset.cpus", "cpuset.mems"]) {
    const file = path.join(dir, f);
    if (fs.readFileSync(file, "utf8").trim() !== "") continue;
    const parent = fs.readFileSync(path.join(path.dirname(dir), f), "utf8").trim();
    fs.writeFileSync(file, parent);
  }
}

// The files the init writes its pid to, in hierarchy order, v2 last.
export function procsFiles(p: CgroupPaths): string[] {
  return Object.entries(p.dirs)
    .sort(([a], [b]) => (a === "" ? 1 : b === "" ? -1 : 0))
    .map(([, d]) => path.join(d, "cgroup.procs"));
}

export function cgroupPids(p: CgroupPaths): number[] {
  const pids = new Set<number>();
  for (const d of Object.values(p.dirs)) {
    for (const file of walkProcs(d)) {
      for (const l of fs.readFileSync(file, "utf8").split("\n")) if (l) pids.add(Number(l));
    }
    if (pids.size > 0) break; // every hierarchy holds the same processes; one readable is enough
  }
  return [...pids].sort((a, b) => a - b);
}

function walkProcs(dir: string): string[] {
  const out: string[] = [];
  if (!fs.existsSync(dir)) return out;
  out.push(path.join(dir, "cgroup.procs"));
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(...walkProcs(path.join(dir, e.name)));
  return out;
}

// rmdir deepest first; a busy cgroup (processes still exiting) is retried for up to ~1 s.
export function removeCgroups(created: readonly string[]): void {
  const dirs = [...created].sort((a, b) => b.length - a.length);
  for (const d of dirs) removeTree(d);
}

function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeTree(path.join(dir, e.name));
  for (let i = 0; ; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || i >= 100) throw new Error(`remove cgroup ${dir}: ${(e as Error).message}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}
