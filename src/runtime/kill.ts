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
    // a number is taken as it is, 0 included (runc's parseSignal: `kill ID 0` checks the container is alive)
    sig = typeof signal === "number" ? signal : /^\s*0+\s*$/.test(signal) ? 0 : parseSignal(signal);
    if (!Number.isInteger(sig) || sig < 0 || sig > 64) throw new Error(`invalid signal number: ${signal}`);
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
  // runc >= 1.2: SIGKILL to a container that shares the pid namespace goes to every process of its cgroup
  // (killing the init kills the others only when it is PID 1 of its own namespace).
  if (sig === 9 && !(record.config.linux?.namespaces ?? []).some((n) => n.type === "pid")) {
    await signalAll(record, sig, (m) => ctx.logger.warn(m));
    return;
  }
  signalInit(record, sig);
}
