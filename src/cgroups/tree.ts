// The directories of a container's cgroups: making them (remembering which are new), listing the
// cgroup.procs files under them, and removing what was made — never a directory that was there before.
import * as fs from "fs";
import { delay } from "../async";
import * as path from "path";

// Every directory makeDirs would create now, outermost first (recorded before they are made).
export function missingDirs(dirs: readonly string[]): string[] {
  const missing: string[] = [];
  for (const dir of dirs) {
    const own: string[] = [];
    for (let d = dir; !fs.existsSync(d) && d !== path.dirname(d); d = path.dirname(d)) own.unshift(d);
    missing.push(...own);
  }
  return missing;
}

// mkdir -p of `dir`, each new directory pushed on `created` and handed to `made` (parent before child).
export function makeDir(dir: string, created: string[], made: (d: string) => void): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      fs.mkdirSync(d);
      created.push(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`create cgroup ${d}: ${(e as Error).message}`);
    }
    made(d);
  }
}

// On v2, the controllers a new directory receives are enabled in its cgroup.subtree_control so they reach
// the container's cgroup. Best effort, one controller at a time as runc does: one that cannot be enabled (a
// threaded subtree, say) only matters if a resource needs it, and that write then fails naming the file.
export function enableControllers(dir: string): void {
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

// v1 cpuset: a cgroup whose cpuset.cpus or cpuset.mems is empty takes no task (ENOSPC). As runc's
// cpusetEnsureParent: from the top of the hierarchy down to `dir`, each empty one gets its parent's — new
// directories, and pre-existing ones that are empty (unusable as they are; never one that has a value).
export function inheritCpuset(dir: string): void {
  const parent = path.dirname(dir);
  if (parent === dir || !fs.existsSync(path.join(parent, "cpuset.cpus"))) return; // the hierarchy's root
  inheritCpuset(parent);
  for (const f of ["cpuset.cpus", "cpuset.mems"]) {
    const file = path.join(dir, f);
    if (fs.readFileSync(file, "utf8").trim() !== "") continue;
    fs.writeFileSync(file, fs.readFileSync(path.join(parent, f), "utf8").trim());
  }
}

// The cgroup.procs files of dir and every cgroup below it (none when dir is gone).
export function procsFilesUnder(dir: string): string[] {
  const out: string[] = [];
  if (!fs.existsSync(dir)) return out;
  out.push(path.join(dir, "cgroup.procs"));
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(...procsFilesUnder(path.join(dir, e.name)));
  return out;
}

// Removes what was created, deepest first, and nothing else. The container's own directories (`own`) go with
// any cgroups its processes made inside them; a created ancestor is removed only once it is empty, since
// another container may have been placed under it since (its cgroup is never touched).
// A directory still busy (processes draining after SIGKILL) is retried for up to ~5 s.
export async function removeDirs(own: ReadonlySet<string>, created: readonly string[]): Promise<void> {
  const dirs = [...created].sort((a, b) => b.length - a.length);
  for (const d of dirs) {
    if (own.has(d)) await removeTree(d);
    else if (!hasChildCgroups(d)) await rmdirRetry(d);
  }
}

function hasChildCgroups(dir: string): boolean {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory());
  } catch {
    return false;
  }
}

async function removeTree(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) await removeTree(path.join(dir, e.name));
  await rmdirRetry(dir);
}

async function rmdirRetry(dir: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (let wait = 2; ; wait = Math.min(wait * 2, 100)) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || Date.now() > deadline) throw new Error(`remove cgroup ${dir}: ${(e as Error).message}`);
      await delay(wait);
    }
  }
}
