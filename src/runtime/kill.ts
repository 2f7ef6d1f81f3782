import { TsrunError } from "../errors";
import { parseSignal } from "../plan/linux";
import type { Context } from "./context";
import { signalAll, signalInit } from "./signal";
import { validateId } from "../state/store";

export interface KillOptions {
  all?: boolean;
}

// kill ID [SIGNAL]: default SIGTERM; a stopped container gives runc's "container not running".
export async function kill(ctx: Context, id: string, signal: string | number = "SIGTERM", o: KillOptions = {}): Promise<void> {
  validateId(id);
  let sig: number;
  try {
    sig = typeof signal === "number" ? signal : parseSignal(signal);
  } catch (e) {
    throw new TsrunError((e as Error).message, "INVALID_ARGUMENT");
  }
  const record = ctx.store.read(id);
  const status = ctx.store.status(record);
  // --all also reaches what outlives the init (a shared pid namespace); with nothing left it is not an
  // error (runc 1.2+)
  if (o.all && status !== "creating") {
    await signalAll(record, sig, (m) => ctx.logger.warn(m));
    return;
  }
  if (status === "stopped" || status === "creating") throw new TsrunError("container not running", "NOT_RUNNING");
  signalInit(record, sig);
}
