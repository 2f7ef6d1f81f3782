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
  // Cleaned lexically as if rooted (runc's LexicallyCleanPath): ".." never climbs above the hierarchy's root
  // for an absolute path, nor above our own cgroup for a relative one.
  const cleaned = path.posix.normalize(`/${inner}`);
  const dirs: Record<string, string> = {};
  const place = (mountPoint: string, mountRoot: string, own: string | undefined): string => {
    const rel = inner.startsWith("/") ? cleaned : path.posix.join(own ?? "/", cleaned);
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

// The directories createCgroups would make now (every missing one, outermost first), for the record.
export function missingCgroupDirs(dirs: Record<string, string>): string[] {
  const missing: string[] = [];
  for (const dir of Object.values(dirs)) {
    const own: string[] = [];
    for (let d = dir; !fs.existsSync(d) && d !== path.dirname(d); d = path.dirname(d)) own.unshift(d);
    missing.push(...own);
  }
  return missing;
}

// mkdir -p, remembering which directories are new. cpuset (v1) children start empty: inherit the parent's.
// On v2, the controllers a new directory receives are enabled in its cgroup.subtree_control so they reach
// the container's cgroup — only in directories created here: a pre-existing cgroup is never written to
// (runc also enables them in every pre-existing ancestor, the root included; tsrun leaves those alone, and a
// resource whose controller the host does not delegate then fails naming the file).
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
        if (key === "" && d !== dir && created.includes(d)) enableControllers(d);
      }
    }
  } catch (e) {
    removeCgroups({ dirs, created });
    throw e;
  }
  return { dirs, created };
}

// Best effort, one controller at a time as runc does: one that cannot be enabled (a threaded subtree, say)
// only matters if a resource needs it, and that write then fails naming the file.
function enableControllers(dir: string): void {
  let available: string[];
  try {
    available = fs.readFileSync(path.join(dir, "cgroup.controllers"), "utf8").split(/\s+/).filter(Boolean);
  } catch {
    return;
  }
  for (const c of available) {
    try {
      fs.writeFileSync(path.join(dir, "cgroup.subtree_control"), `+${c}`);
    } catch {
      // see above
    }
  }
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

// Where a controller lives for a container: the v1 hierarchy that has it, else its v2 directory when the
// controller is enabled there (listed in its cgroup.controllers). undefined when the container has neither.
export interface ControllerDir {
  version: 1 | 2;
  dir: string;
}

export function controllerDir(dirs: Record<string, string>, controller: string): ControllerDir | undefined {
  for (const [key, dir] of Object.entries(dirs)) if (key !== "" && key.split(",").includes(controller)) return { version: 1, dir };
  const v2 = dirs[""];
  if (v2 === undefined) return undefined;
  try {
    if (fs.readFileSync(path.join(v2, "cgroup.controllers"), "utf8").split(/\s+/).includes(controller)) return { version: 2, dir: v2 };
  } catch {
    // the directory is gone or is not a cgroup
  }
  return undefined;
}

// True when the container's cgroups are on a v2-only host (no v1 hierarchy at all).
export function isUnifiedOnly(dirs: Record<string, string>): boolean {
  const keys = Object.keys(dirs);
  return keys.length === 1 && keys[0] === "";
}

// Removes what create made, deepest first, and nothing else. The container's own directories go with any
// cgroups its processes made inside them; a created ancestor is removed only once it is empty, since
// another container may have been placed under it since (its cgroup is never touched).
// A directory still busy (processes draining after SIGKILL) is retried for up to ~5 s.
export function removeCgroups(p: CgroupPaths): void {
  const own = new Set(Object.values(p.dirs));
  const dirs = [...p.created].sort((a, b) => b.length - a.length);
  for (const d of dirs) {
    if (own.has(d)) removeTree(d);
    else if (!hasChildCgroups(d)) rmdirRetry(d);
  }
}

function hasChildCgroups(dir: string): boolean {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory());
  } catch {
    return false;
  }
}

function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeTree(path.join(dir, e.name));
  rmdirRetry(dir);
}

function rmdirRetry(dir: string): void {
  const deadline = Date.now() + 5000;
  for (let wait = 2; ; wait = Math.min(wait * 2, 100)) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || Date.now() > deadline) throw new Error(`remove cgroup ${dir}: ${(e as Error).message}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
    }
  }
}
