// Freezing a container's processes: the v1 freezer hierarchy when the host has one (as runc on v1 and
// hybrid hosts), else the v2 cgroup's cgroup.freeze. Both wait until the kernel reports the state settled.
import * as fs from "fs";
import * as path from "path";
import { readCgroupFile, writeCgroupFile } from "./files";

interface Freezer {
  version: 1 | 2;
  dir: string;
}

export function freezerOf(dirs: Record<string, string>): Freezer | undefined {
  for (const [key, dir] of Object.entries(dirs)) if (key !== "" && key.split(",").includes("freezer")) return { version: 1, dir };
  const v2 = dirs[""];
  if (v2 !== undefined && fs.existsSync(path.join(v2, "cgroup.freeze"))) return { version: 2, dir: v2 };
  return undefined;
}

function need(dirs: Record<string, string>): Freezer {
  const f = freezerOf(dirs);
  if (!f) throw new Error("cannot toggle freezer: cgroups not configured for container (no v1 freezer hierarchy and no cgroup.freeze)");
  return f;
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

export function freeze(dirs: Record<string, string>): void {
  const f = need(dirs);
  if (f.version === 1) freezeV1(f.dir);
  else setV2(f.dir, true);
}

export function thaw(dirs: Record<string, string>): void {
  const f = need(dirs);
  if (f.version === 1) {
    writeCgroupFile(f.dir, "freezer.state", "THAWED");
    for (let i = 0; readCgroupFile(f.dir, "freezer.state").trim() !== "THAWED"; i++) {
      if (i >= 1000) throw new Error(`${f.dir}/freezer.state did not become THAWED`);
      sleep(1);
    }
  } else {
    setV2(f.dir, false);
  }
}

// runc's v1 loop: FREEZING can stall while a task is in an uninterruptible sleep or forking; thawing now
// and then lets such a task move on. Left thawed if it never settles.
function freezeV1(dir: string): void {
  try {
    for (let i = 0; i < 1000; i++) {
      if (i % 50 === 49) {
        writeCgroupFile(dir, "freezer.state", "THAWED");
        sleep(10);
      }
      writeCgroupFile(dir, "freezer.state", "FROZEN");
      if (i % 25 === 24) sleep(1);
      const state = readCgroupFile(dir, "freezer.state").trim();
      if (state === "FROZEN") return;
      if (state !== "FREEZING") throw new Error(`unexpected state ${state} in ${dir}/freezer.state while freezing`);
    }
    throw new Error(`unable to freeze: ${dir}/freezer.state stayed FREEZING`);
  } catch (e) {
    try {
      writeCgroupFile(dir, "freezer.state", "THAWED");
    } catch {
      // the error above is the one to report
    }
    throw e;
  }
}

// v2: write cgroup.freeze, then wait for cgroup.events to say "frozen 1" (or 0), up to 10 s as runc.
function setV2(dir: string, frozen: boolean): void {
  writeCgroupFile(dir, "cgroup.freeze", frozen ? "1" : "0");
  const want = frozen ? "frozen 1" : "frozen 0";
  for (let i = 0; ; i++) {
    if (new RegExp(`^${want}$`, "m").test(readCgroupFile(dir, "cgroup.events"))) return;
    if (i >= 1000) {
      if (frozen) writeCgroupFile(dir, "cgroup.freeze", "0");
      throw new Error(`timeout waiting for ${dir}/cgroup.events to show "${want}"`);
    }
    sleep(10);
  }
}

// Whether the container's freezer says frozen. v1: FROZEN by itself (freezer.self_freezing 1), not merely
// because a parent is; v2: cgroup.events "frozen 1". A missing freezer or cgroup reads as not frozen.
export function isFrozen(dirs: Record<string, string>): boolean {
  const f = freezerOf(dirs);
  if (!f) return false;
  try {
    if (f.version === 2) return /^frozen 1$/m.test(readCgroupFile(f.dir, "cgroup.events"));
    const state = readCgroupFile(f.dir, "freezer.state").trim();
    if (state !== "FROZEN") return false;
    try {
      return readCgroupFile(f.dir, "freezer.self_freezing").trim() === "1";
    } catch {
      return true;
    }
  } catch {
    return false;
  }
}
