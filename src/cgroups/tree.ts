// The directories of a container's cgroups: making them (remembering which are new), listing the
// cgroup.procs files under them, and removing what was made — never a directory that was there before.
import * as fs from "fs";
import * as path from "path";
import { delay } from "../async";
import type { LinuxResources } from "../spec/schema";
import { readCgroupFile, writeCgroupFile } from "./files";

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

// The top of the v2 tree `dir` is in (or would be in): the highest directory whose parent is not a cgroup
// (has no cgroup.controllers) — the cgroup2 mount point (/sys/fs/cgroup on a v2-only host).
export function v2Top(dir: string): string {
  let d = dir;
  while (!fs.existsSync(d) && path.dirname(d) !== d) d = path.dirname(d);
  while (path.dirname(d) !== d && fs.existsSync(path.join(path.dirname(d), "cgroup.controllers"))) d = path.dirname(d);
  return d;
}

// runc's fs2 containsDomainController: resources for a controller that cannot live in a threaded subtree
// (memory, io, cpu, hugetlb; pids and cpuset are thread-aware).
export function needsDomainController(r: LinuxResources | undefined): boolean {
  if (!r) return false;
  const m = r.memory;
  const b = r.blockIO;
  const c = r.cpu;
  const some = (l: readonly unknown[] | undefined) => (l?.length ?? 0) > 0;
  return (
    (!!m && (!!m.limit || !!m.swap || !!m.reservation)) ||
    (!!b && (!!b.weight || some(b.weightDevice) || some(b.throttleReadBpsDevice) || some(b.throttleWriteBpsDevice) || some(b.throttleReadIOPSDevice) || some(b.throttleWriteIOPSDevice))) ||
    (!!c && (!!c.shares || !!c.quota || !!c.period || c.idle !== undefined || c.burst !== undefined)) ||
    some(r.hugepageLimits)
  );
}

// runc's fs2 CreateCgroupPath, for a v2-only host: from the top of the tree down to `dir`, each missing
// directory is made (pushed on `created`), and every directory above `dir` — the root and each
// pre-existing ancestor included — gets every controller the root offers enabled in its
// cgroup.subtree_control: all of them in one write, and if the kernel refuses that, one by one, each
// refusal ignored (a controller a parent does not pass down, or a cgroup holding processes, then fails
// in the write that needs it, naming the file). An ancestor (or `dir`) in "domain invalid" mode is made
// threaded, or refused when the resources need a domain controller; so is one already (domain) threaded.
export function makeV2Path(dir: string, r: LinuxResources | undefined, created: string[]): void {
  const top = v2Top(dir);
  const controllers = readCgroupFile(top, "cgroup.controllers").split(/\s+/).filter(Boolean);
  const enable = controllers.map((c) => `+${c}`);
  const chain = [top];
  for (const part of path.relative(top, dir).split("/").filter(Boolean)) chain.push(path.join(chain[chain.length - 1]!, part));
  const domain = needsDomainController(r);
  chain.forEach((current, i) => {
    if (i > 0) {
      try {
        fs.mkdirSync(current, 0o755);
        created.push(current);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`create cgroup ${current}: ${(e as Error).message}`);
      }
      let type = "";
      try {
        type = readCgroupFile(current, "cgroup.type").trim();
      } catch {
        // not there (an old kernel): nothing to check
      }
      if (type === "domain invalid") {
        if (domain) throw new Error(`cannot enter cgroupv2 "${current}" with domain controllers -- it is in an invalid state`);
        try {
          writeCgroupFile(current, "cgroup.type", "threaded");
        } catch {
          // runc ignores it too: the writes that need it fail later, naming their file
        }
      } else if ((type === "domain threaded" || type === "threaded") && domain) {
        throw new Error(`cannot enter cgroupv2 "${current}" with domain controllers -- it is in ${type} mode`);
      }
    }
    if (i < chain.length - 1 && enable.length > 0) {
      try {
        writeCgroupFile(current, "cgroup.subtree_control", enable.join(" "));
      } catch {
        for (const c of enable) {
          try {
            writeCgroupFile(current, "cgroup.subtree_control", c);
          } catch {
            // see above
          }
        }
      }
    }
  });
}

// Hybrid hosts (runc's fs enables nothing in the v2 tree there): the controllers a new directory receives are
// enabled in its cgroup.subtree_control so they reach the container's cgroup (hugetlb, where only the v2 tree
// has it). Best effort, one controller at a time: one that cannot be enabled only matters if a resource
// needs it, and that write then fails naming the file.
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
