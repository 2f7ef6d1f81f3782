// Signals to a container: to its init through a pidfd (which cannot hit a recycled pid: the start time
// is checked after the pidfd pins the process), or to every process in its cgroup.
import * as fs from "fs";
import * as path from "path";
import { freeze, freezerOf, isFrozen, thaw } from "../cgroups/freezer";
import { cgroupPids } from "../cgroups/manager";
import { TsrunError, errnoCode, messageOf } from "../errors";
import { native } from "../native";
import { ContainerRecord, procStat } from "../state/store";

export function signalInit(record: ContainerRecord, sig: number): void {
  const n = native();
  let pidfd: number;
  try {
    pidfd = n.pidfdOpen(record.pid);
  } catch (e) {
    if (errnoCode(e) === "ESRCH") throw new TsrunError("container not running: no such process");
    throw new TsrunError(messageOf(e));
  }
  try {
    if (procStat(record.pid)?.startTime !== record.startTime) throw new TsrunError("container not running: no such process");
    n.pidfdSendSignal(pidfd, sig);
  } catch (e) {
    if (e instanceof TsrunError) throw e;
    if (errnoCode(e) === "ESRCH") throw new TsrunError("container not running: no such process");
    throw new TsrunError(`kill container ${record.id}: ${messageOf(e)}`);
  } finally {
    fs.closeSync(pidfd);
  }
}

// Every process in the container's cgroup. SIGKILL goes through cgroup.kill where the kernel has it (v2,
// and the v2 tree of a hybrid host: kernel 5.14+), which reaches every process at once. Otherwise the
// cgroup is frozen while the pids are read and signalled, so nothing forks in between (runc). Afterwards
// the freezer is left as it was, except that a SIGKILL thaws: a frozen v1 task cannot die until thawed.
export function signalAll(record: ContainerRecord, sig: number, warn: (msg: string) => void = () => {}): void {
  const dirs = record.cgroup.dirs;
  const v2 = dirs[""];
  if (sig === 9 && v2 !== undefined && fs.existsSync(path.join(v2, "cgroup.kill"))) {
    try {
      fs.writeFileSync(path.join(v2, "cgroup.kill"), "1");
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return; // the cgroup is gone: nothing left to kill
      throw new TsrunError(`kill container ${record.id}: write ${v2}/cgroup.kill: ${messageOf(e)}`);
    }
    if (isFrozen(dirs)) {
      try {
        thaw(dirs);
      } catch (e) {
        warn(`kill --all: ${messageOf(e)}`);
      }
    }
    return;
  }
  const wasFrozen = isFrozen(dirs);
  let frozen = wasFrozen;
  if (!wasFrozen && freezerOf(dirs)) {
    try {
      freeze(dirs);
      frozen = true;
    } catch (e) {
      warn(`kill --all: signalling without freezing: ${messageOf(e)}`);
    }
  }
  try {
    for (const pid of cgroupPids({ dirs, created: [] })) {
      try {
        process.kill(pid, sig);
      } catch (e) {
        if (errnoCode(e) !== "ESRCH") warn(`kill ${pid}: ${messageOf(e)}`);
      }
    }
  } finally {
    if (frozen && (!wasFrozen || sig === 9)) {
      try {
        thaw(dirs);
      } catch (e) {
        warn(`kill --all: ${messageOf(e)}`);
      }
    }
  }
}

// Polls until the init is gone (or a zombie its parent has yet to reap); false on timeout.
export function waitGone(record: ContainerRecord, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const st = procStat(record.pid);
    if (!st || st.startTime !== record.startTime || st.state === "Z" || st.state === "X") return true;
    if (Date.now() > deadline) return false;
    Atomics.wait(sleeper, 0, 0, 5);
  }
}
