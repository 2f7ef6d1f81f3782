// pause / resume: freeze and thaw every process of a container through its freezer cgroup, with runc's
// errors ("container not running", "container not paused"). Status "paused" is read from the freezer.
import { CgroupManager } from "../cgroups/manager";
import { TsrunError, messageOf } from "../errors";
import type { Context } from "./context";
import { validateId } from "../state/store";

export async function pause(ctx: Context, id: string): Promise<void> {
  validateId(id);
  const { lock, record } = await ctx.store.open(id);
  try {
    const status = ctx.store.status(record);
    if (status !== "running" && status !== "created") throw new TsrunError("container not running", "NOT_RUNNING");
    try {
      await CgroupManager.fromRecord(record.cgroup).freeze();
    } catch (e) {
      throw new TsrunError(`pause container ${id}: ${messageOf(e)}`);
    }
  } finally {
    lock.release();
  }
}

export async function resume(ctx: Context, id: string): Promise<void> {
  validateId(id);
  const { lock, record } = await ctx.store.open(id);
  try {
    if (ctx.store.status(record) !== "paused") throw new TsrunError("container not paused", "INVALID_STATE");
    try {
      await CgroupManager.fromRecord(record.cgroup).thaw();
    } catch (e) {
      throw new TsrunError(`resume container ${id}: ${messageOf(e)}`);
    }
  } finally {
    lock.release();
  }
}
