// delete: undo everything create made (processes, cgroups, state) and run poststop hooks.
import { CgroupManager } from "../cgroups/manager";
import { TsrunError, messageOf } from "../errors";
import { runHooksWarning } from "../hooks";
import type { Context } from "./context";
import { signalAll, signalInit, waitGone } from "./signal";
import { hasNewNamespace } from "../plan/build";
import { ContainerRecord, Lock, notExist, stateOf, validateId } from "../state/store";

export interface DeleteOptions {
  force?: boolean;
}

export function remove(ctx: Context, id: string, o: DeleteOptions = {}): void {
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
  const { lock, record } = ctx.store.open(id);
  try {
    const status = ctx.store.status(record);
    if ((status === "running" || status === "paused") && !o.force)
      throw new TsrunError(`cannot delete container ${id} that is not stopped: ${status}`);
    if (status !== "stopped") killAndWait(ctx, record);
    else if (record.creating) killHalfCreated(ctx, record);
    else if (!hasNewNamespace(record.config, "pid")) signalAll(record, 9, (m) => ctx.logger.warn(m)); // leftovers sharing our pid namespace
    destroy(ctx, record);
  } finally {
    lock.release();
  }
}

// SIGKILL to the cgroup (which thaws a paused container so its processes can die) and to the init.
export function killAndWait(ctx: Context, record: ContainerRecord): void {
  signalAll(record, 9, (m) => ctx.logger.warn(m));
  try {
    signalInit(record, 9);
  } catch {
    // already gone
  }
  if (!waitGone(record, 10_000)) throw new TsrunError(`container ${record.id}: init ${record.pid} did not exit after SIGKILL`);
}

// A create that was killed: whatever it started (an init that had not yet been told it was recorded dies
// with its parent, but may not be gone yet) is killed through the cgroup and the recorded pid.
function killHalfCreated(ctx: Context, record: ContainerRecord): void {
  try {
    signalAll(record, 9, (m) => ctx.logger.warn(m));
  } catch (e) {
    ctx.logger.warn(messageOf(e));
  }
  if (record.pid > 0 && record.startTime) {
    try {
      signalInit(record, 9);
    } catch {
      // already gone
    }
    waitGone(record, 10_000);
  }
}

export function destroy(ctx: Context, record: ContainerRecord): void {
  const errors: string[] = [];
  try {
    CgroupManager.fromRecord(record.cgroup).remove();
  } catch (e) {
    errors.push(messageOf(e));
  }
  runHooksWarning("poststop", record.config.hooks?.poststop, { ...stateOf(record, "stopped"), pid: 0 }, (m) => ctx.logger.warn(m));
  ctx.store.remove(record.id);
  if (errors.length) throw new TsrunError(errors.join("; "));
}
