// What a container leaves on the host, for the fault tests: its state directory, its cgroups, the processes
// in them, and mounts naming its bundle. Empty means nothing is left.
import * as fs from "node:fs";
import * as path from "node:path";
import { CGROUP_PARENT, cgroupDirsOf, stateRoot, waitFor } from "./helpers";

// Processes whose cgroup (any hierarchy) is the container's or below it.
export function processesOf(id: string): number[] {
  const needle = `/${CGROUP_PARENT}/${id}`;
  const out: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${name}/cgroup`, "utf8");
    } catch {
      continue;
    }
    if (text.split("\n").some((l) => l.endsWith(needle) || l.includes(`${needle}/`))) {
      // a zombie waiting for its (dead) parent's reaper is already gone as far as the container goes
      try {
        if (/^State:\s+Z/m.test(fs.readFileSync(`/proc/${name}/status`, "utf8"))) continue;
      } catch {
        continue;
      }
      out.push(Number(name));
    }
  }
  return out;
}

export function leftovers(id: string, bundleDir: string, root = stateRoot()): string[] {
  const left: string[] = [];
  if (fs.existsSync(path.join(root, id))) left.push(`state directory ${path.join(root, id)}`);
  for (const d of cgroupDirsOf(id)) left.push(`cgroup ${d}`);
  for (const p of processesOf(id)) left.push(`process ${p} (${safeRead(`/proc/${p}/comm`).trim()})`);
  for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const mp = line.split(" ")[4];
    if (mp && mp.startsWith(bundleDir)) left.push(`mount ${mp}`);
  }
  return left;
}

function safeRead(f: string): string {
  try {
    return fs.readFileSync(f, "utf8");
  } catch {
    return "";
  }
}

// Waits (polling) until `check` returns an empty list, at most `ms`; returns the last list.
export function settle(check: () => string[], ms: number): string[] {
  let left: string[] = [];
  waitFor(() => (left = check()).length === 0, ms);
  return left;
}

// A small seeded PRNG (mulberry32): the same seed gives the same trials.
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Every file, directory and symlink below `dir` with its type, mode and content (or target): what "unchanged"
// means for a canary tree.
export function treeSnapshot(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      const rel = path.relative(dir, p);
      if (st.isDirectory()) {
        out.push(`d ${rel} ${st.mode.toString(8)}`);
        walk(p);
      } else if (st.isSymbolicLink()) out.push(`l ${rel} -> ${fs.readlinkSync(p)}`);
      else out.push(`f ${rel} ${st.mode.toString(8)} ${fs.readFileSync(p, "utf8")}`);
    }
  };
  walk(dir);
  return out.join("\n");
}
