// The shim server as its containers' child subreaper (prctl PR_SET_CHILD_SUBREAPER): orphans of a container
// (a daemon's grandchildren once the init has exited, in the host's pid namespace; what an exec'd process
// left behind) are re-parented to this process, and reaped here. Reaping is selective, never waitpid(-1):
//   - libuv reaps its own child_process children by pid (waitpid(pid) on SIGCHLD; a stolen status would
//     leave that child's exit callback pending forever): every ChildProcess spawned in this process is
//     recorded until its 'exit' event;
//   - the pids the Task service waits for (each init and exec'd process: their exit statuses are kept until
//     Delete) are tracked until their wait has read the status;
//   - while a request is in flight (hold()), the API may be waiting for processes it spawned (the set-up
//     helper, hooks): nothing is reaped until the last hold is released.
// Any other exited child is reaped. A scan runs on SIGCHLD (Node's signal watcher beside libuv's) and on a
// timer as a backstop; it first peeks (waitid WNOWAIT) so a scan without a zombie costs one syscall.
import { ChildProcess } from "child_process";
import * as fs from "fs";
import { native } from "../../native";

type SpawnFn = (this: ChildProcess, options: unknown) => unknown;

export class Reaper {
  private holds = 0;
  private pending = false;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private originalSpawn: SpawnFn | undefined;
  private readonly tracked = new Map<number, number>(); // pid → how many waits
  private readonly libuv = new Set<number>();
  reaped = 0; // how many orphans were reaped (for tests and debugging)
  private readonly onSignal = () => this.schedule();

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(intervalMs = 5000): void {
    if (this.running) return;
    native().setChildSubreaper(true);
    const proto = ChildProcess.prototype as unknown as { spawn: SpawnFn };
    const original = proto.spawn;
    this.originalSpawn = original;
    const libuv = this.libuv;
    proto.spawn = function (this: ChildProcess, options: unknown): unknown {
      const r = original.call(this, options);
      const pid = this.pid;
      if (pid !== undefined) {
        libuv.add(pid);
        this.once("exit", () => libuv.delete(pid));
      }
      return r;
    };
    process.on("SIGCHLD", this.onSignal);
    this.timer = setInterval(() => this.scan(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (!this.running) return;
    clearInterval(this.timer);
    this.timer = undefined;
    process.removeListener("SIGCHLD", this.onSignal);
    if (this.originalSpawn) (ChildProcess.prototype as unknown as { spawn: SpawnFn }).spawn = this.originalSpawn;
    this.originalSpawn = undefined;
    native().setChildSubreaper(false);
  }

  // `pid`'s exit is read by someone else (its wait); untrack() once it has been.
  track(pid: number): void {
    if (pid > 0) this.tracked.set(pid, (this.tracked.get(pid) ?? 0) + 1);
  }

  untrack(pid: number): void {
    const n = this.tracked.get(pid);
    if (n === undefined) return;
    if (n > 1) this.tracked.set(pid, n - 1);
    else this.tracked.delete(pid);
    this.schedule(); // if its wait did not reap it, this scan does
  }

  // Defers reaping until the returned release is called (a request that may spawn and wait is in flight).
  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds === 0 && this.pending) this.schedule();
    };
  }

  private schedule(): void {
    if (this.scheduled || !this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.scan();
    });
  }

  // Reaps every exited child that is neither libuv's nor tracked; deferred while a hold is taken.
  scan(): void {
    if (!this.running) return;
    if (this.holds > 0) {
      this.pending = true;
      return;
    }
    this.pending = false;
    const n = native();
    try {
      if (n.zombieChild() === 0) return;
    } catch {
      return;
    }
    for (const pid of children()) {
      if (this.tracked.has(pid) || this.libuv.has(pid)) continue;
      try {
        if (n.waitpid(pid, true).pid > 0) this.reaped++;
      } catch {
        // ECHILD: reaped meanwhile
      }
    }
  }
}

// This process's children (every thread's: a child belongs to the thread that forked it, an orphan to the
// thread it was re-parented to), from /proc/self/task/*/children; on a kernel without that file
// (CONFIG_PROC_CHILDREN), from every process's parent in /proc/*/stat.
export function children(): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync("/proc/self/task");
  } catch {
    return out;
  }
  let listed = false;
  for (const t of tasks) {
    let text = "";
    try {
      text = fs.readFileSync(`/proc/self/task/${t}/children`, "utf8");
      listed = true;
    } catch {
      continue; // the thread is gone
    }
    for (const p of text.split(" ")) if (p.trim()) out.push(Number(p));
  }
  if (listed) return out;
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

// The shim server's one reaper.
export const reaper = new Reaper();

export function startReaper(): void {
  reaper.start();
}
