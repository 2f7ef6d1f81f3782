// run: create + start, then (unless detached) wait for the init, forwarding signals, and exit with its
// status (128+N when killed by signal N). With a terminal and no --console-socket, tsrun holds the pty
// itself and connects it to its own stdin/stdout, raw, as runc does.
import * as fs from "fs";
import { TsrunError, messageOf } from "../errors";
import { native } from "../native";
import type { Context } from "./context";
import { type Bundle, loadBundle } from "./bundle";
import { create, type CreateOptions } from "./create";
import { remove } from "./delete";
import { SignalForwarder, waitForeground } from "./foreground";
import type { NotifyRelay } from "./notify";
import { startProcess, type Started } from "./start";
import { validateId } from "../state/store";

export interface RunOptions extends Omit<CreateOptions, "consoleFd" | "loaded" | "shim"> {
  detach?: boolean;
  keep?: boolean;
  noShim?: boolean; // with detach: no shim, the container keeps tsrun's stdio (runc's behaviour)
}

// Returns the exit code tsrun should exit with.
export async function run(ctx: Context, o: RunOptions): Promise<number> {
  validateId(o.id);
  const n = native();
  let ptyPair: [number, number] | undefined;
  const loaded = loadBundle(o.bundle ?? ".");
  const wantsTty = loaded.spec.process?.terminal === true;
  // Detached, the container goes under a tsrun shim (which also holds its pty).
  if (wantsTty && !o.consoleSocket) {
    if (o.detach && o.noShim) throw new TsrunError("cannot allocate tty if runc will detach without setting console socket");
    if (!o.detach) ptyPair = n.socketpair();
  }
  // Signals are caught from here on (forwarded once the init runs), as runc does before it starts anything.
  const forwarder = o.detach ? undefined : new SignalForwarder();
  try {
    return await runForwarded(ctx, o, loaded, ptyPair, forwarder);
  } finally {
    forwarder?.stop();
  }
}

async function runForwarded(ctx: Context, o: RunOptions, loaded: Bundle, ptyPair: [number, number] | undefined, forwarder: SignalForwarder | undefined): Promise<number> {
  const n = native();
  let created;
  try {
    created = await create(ctx, { ...o, loaded, shim: o.detach === true && o.noShim !== true, ...(ptyPair ? { consoleFd: ptyPair[1] } : {}) });
  } finally {
    if (ptyPair) fs.closeSync(ptyPair[1]);
  }
  const master = ptyPair ? n.recvFd(ptyPair[0]) : undefined;
  if (ptyPair) fs.closeSync(ptyPair[0]);
  let started: Started;
  try {
    started = await startProcess(ctx, o.id, o.notifySocket ? { notifySocket: o.notifySocket } : {});
  } catch (e) {
    try {
      await remove(ctx, o.id, { force: true });
    } catch (e2) {
      ctx.logger.warn(messageOf(e2));
    }
    throw e;
  }
  // NOTIFY_SOCKET: detached, run returns once READY is relayed (MAINPID: the init) or the init is gone; in
  // the foreground tsrun is the main pid, and the relay runs beside the wait (runc's forward).
  const relay = started.relay;
  if (o.detach) {
    if (relay) await relayQuietly(ctx, relay, started, started.pid);
    return 0;
  }
  const relaying = relay ? relayQuietly(ctx, relay, started, process.pid) : undefined;
  let code: number;
  try {
    code = await waitForeground(created.pid, master, forwarder);
  } catch (e) {
    relay?.cancel();
    throw e;
  } finally {
    await relaying;
  }
  if (!o.keep) {
    try {
      await remove(ctx, o.id, { force: true });
    } catch (e) {
      ctx.logger.warn(messageOf(e));
    }
  }
  return code;
}

// As runc's run: a relay that fails is not run's failure (the container runs); it is reported.
async function relayQuietly(ctx: Context, relay: NotifyRelay, started: Started, mainPid: number): Promise<void> {
  try {
    await relay.forward(started.pid, started.startTime, mainPid, (m) => ctx.logger.warn(m));
  } catch (e) {
    ctx.logger.warn(messageOf(e));
  }
}
