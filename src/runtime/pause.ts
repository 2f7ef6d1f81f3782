// pause / resume: freeze and thaw every process of a container through its freezer cgroup, with runc's
// errors ("container not running", "container not paused"). Status "paused" is read from the freezer.
import { CgroupManager } from "../cgroups/manager";
import { TsrunError, messageOf } from "../errors";
import type { Context } from "./context";
import { validateId } from "../state/store";

export function pause(ctx: Context, id: string): void {
  validateId(id);
  const { lock, record } = ctx.store.open(id);
  try {
    const status = ctx.store.status(record);
    if (status !== "running" && status !== "created") throw new TsrunError("container not running");
    try {
      CgroupManager.fromRecord(record.cgroup).freeze();
    } catch (e) {
      throw new TsrunError(`pause container ${id}: ${messageOf(e)}`);
    }
  } finally {
    lock.release();
  }
}

export function resume(ctx: Context, id: string): void {
  validateId(id);
  const { lock, record } = ctx.store.open(id);
  try {
    if (ctx.store.status(record) !== "paused") throw new TsrunError("container not paused");
    try {
      CgroupManager.fromRecord(record.cgroup).thaw();
    } catch (e) {
      throw new TsrunError(`resume container ${id}: ${messageOf(e)}`);
    }
  } finally {
    lock.release();
  }
}
