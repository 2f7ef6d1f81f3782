// freezer: freezing a container's processes through the v1 freezer hierarchy (as runc on v1 and hybrid
// hosts) or the v2 cgroup's cgroup.freeze; both wait until the kernel reports the state settled. Which of the
// two a container has is the manager's choice (CgroupManager.freezer).
import { delay } from "../../async";
import { readCgroupFile, writeCgroupFile } from "../files";
import type { Location } from "../controller";

export async function freeze(f: Location): Promise<void> {
  if (f.version === 1) await freezeV1(f.dir);
  else await setV2(f.dir, true);
}

export async function thaw(f: Location): Promise<void> {
  if (f.version === 1) {
    writeCgroupFile(f.dir, "freezer.state", "THAWED");
    for (let i = 0; readCgroupFile(f.dir, "freezer.state").trim() !== "THAWED"; i++) {
      if (i >= 1000) throw new Error(`${f.dir}/freezer.state did not become THAWED`);
      await delay(1);
    }
  } else {
    await setV2(f.dir, false);
  }
}

// runc's v1 loop: FREEZING can stall while a task is in an uninterruptible sleep or forking; thawing now
// and then lets such a task move on. Left thawed if it never settles.
async function freezeV1(dir: string): Promise<void> {
  try {
    for (let i = 0; i < 1000; i++) {
      if (i % 50 === 49) {
        writeCgroupFile(dir, "freezer.state", "THAWED");
        await delay(10);
      }
      writeCgroupFile(dir, "freezer.state", "FROZEN");
      if (i % 25 === 24) await delay(1);
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
async function setV2(dir: string, frozen: boolean): Promise<void> {
  writeCgroupFile(dir, "cgroup.freeze", frozen ? "1" : "0");
  const want = frozen ? "frozen 1" : "frozen 0";
  for (let i = 0; ; i++) {
    if (new RegExp(`^${want}$`, "m").test(readCgroupFile(dir, "cgroup.events"))) return;
    if (i >= 1000) {
      if (frozen) writeCgroupFile(dir, "cgroup.freeze", "0");
      throw new Error(`timeout waiting for ${dir}/cgroup.events to show "${want}"`);
    }
    await delay(10);
  }
}

// Whether the container's freezer says frozen. v1: FROZEN by itself (freezer.self_freezing 1), not merely
// because a parent is; v2: cgroup.events "frozen 1". A missing cgroup reads as not frozen.
export function isFrozen(f: Location): boolean {
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
