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
    if (errnoCode(e) === "ESRCH") throw new TsrunError("container not running: no such process", "NOT_RUNNING");
    throw new TsrunError(messageOf(e));
  }
  try {
    if (procStat(record.pid)?.startTime !== record.startTime) throw new TsrunError("container not running: no such process", "NOT_RUNNING");
    n.pidfdSendSignal(pidfd, sig);
  } catch (e) {
    if (e instanceof TsrunError) throw e;
    if (errnoCode(e) === "ESRCH") throw new TsrunError("container not running: no such process", "NOT_RUNNING");
    throw new TsrunError(`kill container ${record.id}: ${messageOf(e)}`);
  } finally {
    fs.closeSync(pidfd);
  }
}

// Every process in the container's cgroup (CgroupManager.kill: cgroup.kill, or the pids signalled while the
// cgroup is frozen).
export async function signalAll(record: ContainerRecord, sig: number, warn: (msg: string) => void = () => {}): Promise<void> {
  try {
    await CgroupManager.fromRecord(record.cgroup).kill(sig, warn);
  } catch (e) {
    if (e instanceof CgroupKillError) throw new TsrunError(`kill container ${record.id}: ${e.message}`);
    throw e;
  }
}

// Resolves when the init is gone (or a zombie its parent has yet to reap): its pidfd turns readable when it
// exits, so nothing polls. False on timeout.
export function waitGone(record: ContainerRecord, timeoutMs: number): Promise<boolean> {
  return waitPidGone(record.pid, record.startTime, timeoutMs);
}

// The same for any pid (`startTime` undefined: not checked); timeoutMs < 0 waits for as long as it takes.
export async function waitPidGone(pid: number, startTime: string | undefined, timeoutMs: number): Promise<boolean> {
  const gone = () => {
    const st = procStat(pid);
    return !st || (startTime !== undefined && st.startTime !== startTime) || st.state === "Z" || st.state === "X";
  };
  let pidfd: number;
  try {
    pidfd = native().pidfdOpen(pid);
  } catch {
    return true; // no such process
  }
  try {
    if (gone()) return true; // (the pid was recycled before the pidfd pinned it)
    return await native().readable(pidfd, timeoutMs);
  } finally {
    fs.closeSync(pidfd);
  }
}
