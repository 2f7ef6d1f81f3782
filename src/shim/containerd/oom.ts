// OOM notifications for TaskOOM, event-driven as containerd's runc shim has them (pkg/oom v1 and v2), so an
// idle container costs the shim nothing (a 100 ms poll of the counters, as `tsrun events` does, costs
// about 4 ms of CPU per second per container):
//   - cgroup v1: an eventfd registered on the memory cgroup's memory.oom_control (cgroup.event_control); one
//     TaskOOM each time it fires while the cgroup exists (it also fires when the cgroup is removed);
//   - cgroup v2: memory.events watched (inotify, fs.watch); one TaskOOM each time its oom_kill count grows.
// The counter is read with the cgroup code's own reader (oomKills).
import * as fs from "fs";
import * as path from "path";
import { oomKills } from "../../cgroups/controllers/memory";
import { type CgroupLayout, detectLayout } from "../../cgroups/layout";
import { native } from "../../native";

export type Stop = () => void;

// The host's cgroup layout, read once per shim (it does not change under a running shim).
let layoutMemo: CgroupLayout | undefined;
export function hostLayout(): CgroupLayout {
  return (layoutMemo ??= detectLayout());
}

// The memory cgroup of process `pid`: a v1 memory hierarchy's directory, else its v2 directory when memory
// is enabled there (memory.events exists).
export function memoryCgroupOf(pid: number, layout: CgroupLayout = hostLayout()): { version: 1 | 2; dir: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8");
  } catch {
    return undefined;
  }
  const rel = (p: string, root: string) => (root !== "/" && (p === root || p.startsWith(`${root}/`)) ? p.slice(root.length) : p);
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[2] === "" && layout.unified) {
      const dir = path.join(layout.unified.mountPoint, rel(m[3]!, layout.unified.root));
      if (!layout.v1.some((h) => h.controllers.includes("memory")) && fs.existsSync(path.join(dir, "memory.events"))) return { version: 2, dir };
      continue;
    }
    if (!m[2]!.split(",").includes("memory")) continue;
    const h = layout.v1.find((x) => x.controllers.includes("memory"));
    if (h) return { version: 1, dir: path.join(h.mountPoint, rel(m[3]!, h.root)) };
  }
  return undefined;
}

// Calls onOom for each OOM in the memory cgroup of `pid` until stop() or the cgroup's removal.
export function watchOom(pid: number, onOom: () => void): Stop {
  let cg;
  try {
    cg = memoryCgroupOf(pid);
  } catch {
    return () => {}; // no cgroup filesystem
  }
  if (!cg) return () => {};
  try {
    return cg.version === 1 ? watchV1(cg.dir, onOom) : watchV2(cg.dir, onOom);
  } catch {
    return () => {}; // (no notifications: the container still runs, as with runc's shim when registering fails)
  }
}

export function watchV1(dir: string, onOom: () => void): Stop {
  const n = native();
  const efd = n.eventfd();
  let control: number;
  try {
    control = fs.openSync(path.join(dir, "memory.oom_control"), "r");
  } catch (e) {
    fs.closeSync(efd);
    throw e;
  }
  try {
    fs.writeFileSync(path.join(dir, "cgroup.event_control"), `${efd} ${control}`);
  } catch (e) {
    fs.closeSync(efd);
    fs.closeSync(control);
    throw e;
  }
  let stopped = false;
  let closed = false;
  const counter = Buffer.alloc(8);
  void (async () => {
    try {
      for (;;) {
        await n.readable(efd, -1);
        if (stopped) return;
        try {
          fs.readSync(efd, counter, 0, 8, null);
        } catch {
          // EAGAIN: read already
        }
        if (!fs.existsSync(path.join(dir, "cgroup.event_control"))) return; // the cgroup was removed
        onOom();
      }
    } finally {
      closed = true;
      fs.closeSync(efd);
      fs.closeSync(control);
    }
  })();
  return () => {
    if (stopped || closed) return;
    stopped = true;
    // wakes the wait above, which closes the fds (never closed under a pending watch)
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    fs.writeSync(efd, one);
  };
}

export function watchV2(dir: string, onOom: () => void): Stop {
  const loc = { version: 2 as const, dir };
  let last = oomKills(loc) ?? 0n;
  const watcher = fs.watch(path.join(dir, "memory.events"), { persistent: false });
  const check = () => {
    let now: bigint | undefined;
    try {
      now = oomKills(loc);
    } catch {
      now = undefined;
    }
    if (now === undefined) {
      watcher.close(); // the cgroup was removed
      return;
    }
    if (now > last) onOom();
    if (now > 0n) last = now;
  };
  watcher.on("change", check);
  watcher.on("error", () => watcher.close());
  return () => watcher.close();
}
