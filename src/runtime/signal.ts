// Signals to a container: to its init through a pidfd (which cannot hit a recycled pid: the start time
// is checked after the pidfd pins the process), or to every process in its cgroup.
import * as fs from "fs";
import { CgroupKillError, CgroupManager } from "../cgroups/manager";
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

// Every process in the container's cgroup (CgroupManager.kill: cgroup.kill, or the pids signalled while the
// cgroup is frozen).
export function signalAll(record: ContainerRecord, sig: number, warn: (msg: string) => void = () => {}): void {
  try {
    CgroupManager.fromRecord(record.cgroup).kill(sig, warn);
  } catch (e) {
    if (e instanceof CgroupKillError) throw new TsrunError(`kill container ${record.id}: ${e.message}`);
    throw e;
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
