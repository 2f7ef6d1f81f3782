import { TsrunError } from "../errors";
import { parseSignal } from "../plan/linux";
import type { Context } from "./context";
import { signalAll, signalInit } from "./signal";

export interface KillOptions {
  all?: boolean;
}

// kill ID [SIGNAL]: default SIGTERM; a stopped container gives runc's "container not running".
export function kill(ctx: Context, id: string, signal: string | number = "SIGTERM", o: KillOptions = {}): void {
  let sig: number;
  try {
    sig = typeof signal === "number" ? signal : parseSignal(signal);
  } catch (e) {
    throw new TsrunError((e as Error).message);
  }
  const record = ctx.store.read(id);
  const status = ctx.store.status(record);
  if (status === "stopped" || status === "creating") throw new TsrunError("container not running");
  if (o.all) {
    signalAll(record, sig);
    return;
  }
  signalInit(record, sig);
}
