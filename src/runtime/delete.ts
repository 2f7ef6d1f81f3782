// delete: undo everything create made (processes, cgroups, state) and run poststop hooks.
import * as fs from "fs";
import * as path from "path";
import { CgroupManager } from "../cgroups/manager";
import { TsrunError, messageOf } from "../errors";
import { runHooksWarning } from "../hooks";
import type { Context } from "./context";
import { signalAll, signalInit, waitGone } from "./signal";
import { retry } from "../async";
import { native } from "../native";
import { ContainerRecord, Lock, notExist, processAlive, procStat, stateOf, validateId } from "../state/store";

export interface DeleteOptions {
  force?: boolean;
}

export async function remove(ctx: Context, id: string, o: DeleteOptions = {}): Promise<void> {
  validateId(id);
  if (!ctx.store.exists(id)) {
    // A create that died before writing its state leaves a bare directory (nothing else was made by then):
    // clear it either way (as runc), unless a create still holds it.
    if (ctx.store.hasDir(id)) {
      const lock = Lock.tryTake(ctx.store.dir(id));
      if (lock) {
        try {
          if (!ctx.store.exists(id)) ctx.store.remove(id);
        } finally {
          lock.release();
        }
      }
    }
    if (o.force) return;
    throw notExist(id);
  }
  const { lock, record } = await ctx.store.open(id);
  try {
    const status = ctx.store.status(record);
    if ((status === "running" || status === "paused") && !o.force)
      throw new TsrunError(`cannot delete container ${id} that is not stopped: ${status}`, "INVALID_STATE");
    if (status !== "stopped") await killAndWait(ctx, record);
    else if (record.creating) await killHalfCreated(ctx, record);
    else if (!ownPidNamespace(record)) await signalAll(record, 9, (m) => ctx.logger.warn(m)); // leftovers sharing our pid namespace
    await destroy(ctx, record);
  } finally {
    lock.release();
  }
}

// A new pid namespace of its own (not joined by path): killing its init kills everything in it.
function ownPidNamespace(record: ContainerRecord): boolean {
  return (record.config.linux?.namespaces ?? []).some((n) => n.type === "pid" && !n.path);
}

// SIGKILL to the cgroup (which thaws a paused container so its processes can die) and to the init.
export async function killAndWait(ctx: Context, record: ContainerRecord): Promise<void> {
  await signalAll(record, 9, (m) => ctx.logger.warn(m));
  try {
    signalInit(record, 9);
  } catch {
    // already gone
  }
  if (!(await waitGone(record, 10_000))) throw new TsrunError(`container ${record.id}: init ${record.pid} did not exit after SIGKILL`);
}

// A shim writes exit.json once it has reaped the init: the state is removed after that (or once the shim
// is gone), so the shim never writes into a directory being removed.
async function shimRecorded(ctx: Context, record: ContainerRecord): Promise<void> {
  if (!record.shimPid || !record.shimStartTime || !processAlive(record.shimPid, record.shimStartTime)) return;
  const exitFile = path.join(ctx.store.dir(record.id), "exit.json");
  await retry(() => fs.existsSync(exitFile) || !processAlive(record.shimPid!, record.shimStartTime!), { timeoutMs: 2000, max: 20 });
}

// A library caller that created the container without a shim is the init's parent: its zombie is reaped
// here (waitpid without waiting; ECHILD when it is not ours).
function reapIfOurs(record: ContainerRecord): void {
  const st = procStat(record.pid);
  if (!st || st.startTime !== record.startTime || st.state !== "Z") return;
  try {
    native().waitpid(record.pid, true);
  } catch {
    // not our child
  }
}

// A create that was killed: whatever it started (an init that had not yet been told it was recorded dies
// with its parent, but may not be gone yet) is killed through the cgroup and the recorded pid.
async function killHalfCreated(ctx: Context, record: ContainerRecord): Promise<void> {
  try {
    await signalAll(record, 9, (m) => ctx.logger.warn(m));
  } catch (e) {
    ctx.logger.warn(messageOf(e));
  }
  if (record.pid > 0 && record.startTime) {
    try {
      signalInit(record, 9);
    } catch {
      // already gone
    }
    await waitGone(record, 10_000);
  }
}

export async function destroy(ctx: Context, record: ContainerRecord): Promise<void> {
  reapIfOurs(record);
  await shimRecorded(ctx, record);
  const errors: string[] = [];
  try {
    await CgroupManager.fromRecord(record.cgroup).remove((m) => ctx.logger.warn(m));
  } catch (e) {
    errors.push(messageOf(e));
  }
  await runHooksWarning("poststop", record.config.hooks?.poststop, { ...stateOf(record, "stopped"), pid: 0 }, (m) => ctx.logger.warn(m));
  ctx.store.remove(record.id);
  if (errors.length) throw new TsrunError(errors.join("; "));
}
