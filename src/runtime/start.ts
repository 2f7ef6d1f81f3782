// start: connect to the waiting init's start socket and send the state for startContainer hooks. The
// init execs the user process (the connection closes with close-on-exec) or reports why it could not.
import * as fs from "fs";
import * as path from "path";
import { TsrunError, messageOf } from "../errors";
import { runHooksWarning } from "../hooks";
import { destroy, killAndWait } from "./delete";
import { native } from "../native";
import { Msg } from "../plan/opcodes";
import { handOverNotifyFd, listenerOf } from "../seccomp/listener";
import { validateId, START_SOCKET, stateOf } from "../state/store";
import { Channel } from "./channel";
import type { Context } from "./context";
import { NotifyRelay } from "./notify";

export interface StartOptions {
  // The caller's NOTIFY_SOCKET (the CLI passes its environment's): READY= from the container is relayed to
  // it with MAINPID (src/runtime/notify.ts).
  notifySocket?: string;
}

// With a notify socket, start returns once the container has said READY (and that was relayed) or its init
// has exited, as runc's start does.
export async function start(ctx: Context, id: string, o: StartOptions = {}): Promise<void> {
  const started = await startProcess(ctx, id, o);
  if (started.relay) await started.relay.forward(started.pid, started.startTime, started.pid, (m) => ctx.logger.warn(m));
}

export interface Started {
  pid: number;
  startTime: string;
  relay?: NotifyRelay; // bound before the process ran; the caller forwards (and so closes) it
}

// start without the wait for READY (run forwards it itself, with its own MAINPID in the foreground).
export async function startProcess(ctx: Context, id: string, o: StartOptions = {}): Promise<Started> {
  validateId(id);
  const { lock, record } = await ctx.store.open(id);
  let relay: NotifyRelay | undefined;
  try {
    const status = ctx.store.status(record);
    switch (status) {
      case "created":
        break;
      case "stopped":
        throw new TsrunError("cannot start a container that has stopped", "NOT_RUNNING");
      case "running":
        throw new TsrunError("cannot start an already running container", "INVALID_STATE");
      case "paused":
        throw new TsrunError("cannot start a paused container", "INVALID_STATE");
      case "creating":
        throw new TsrunError("cannot start a container that is still being created", "BUSY");
    }
    // The socket the container notifies is there before its process runs (runc binds it before Exec).
    if (o.notifySocket) relay = NotifyRelay.open(ctx.store.dir(id), o.notifySocket, (m) => ctx.logger.warn(m));
    const sockPath = path.join(ctx.store.dir(id), START_SOCKET);
    let fd: number;
    try {
      fd = native().connectUnix(sockPath);
    } catch (e) {
      throw new TsrunError(`start container ${id}: ${messageOf(e)}`);
    }
    // From here the container is no longer "created": whatever happens, start is not retried.
    try {
      fs.unlinkSync(sockPath);
    } catch (e) {
      // gone already (as fs.rmSync's force, without loading its rimraf module)
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    const chan = new Channel(fd);
    let failure: string | undefined;
    let hookFailed = false;
    try {
      const state = stateOf(record, "created");
      chan.send(Msg.START, Buffer.from(JSON.stringify(state)));
      // Until the exec closes the connection: the seccomp notify fd to hand to the listener, or a failure.
      for (let reply = await chan.recv(); reply; reply = await chan.recv()) {
        if (reply.type === Msg.SECCOMP_FD) {
          handOverNotifyFd(chan, reply, listenerOf(record.config), record.pid, state);
          continue;
        }
        if (reply.type === Msg.ERROR || reply.type === Msg.HOOK_ERROR) failure = reply.payload.toString();
        else failure = `unexpected message ${reply.type} from container init`;
        hookFailed = reply.type === Msg.HOOK_ERROR;
        break;
      }
    } finally {
      chan.close();
    }
    if (failure !== undefined) {
      // runtime-spec: when a startContainer hook fails the runtime stops the container and continues at
      // destroy (undo create, then poststop hooks). Other failures leave a stopped container for delete.
      if (hookFailed) {
        await killAndWait(ctx, record);
        await destroy(ctx, record);
      }
      throw new TsrunError(failure);
    }
    // runtime-spec: a failing poststart hook is a warning; the other hooks and the lifecycle go on.
    await runHooksWarning("poststart", record.config.hooks?.poststart, stateOf(record, "running"), (m) => ctx.logger.warn(m));
    return { pid: record.pid, startTime: record.startTime, ...(relay ? { relay } : {}) };
  } catch (e) {
    relay?.close();
    throw e;
  } finally {
    lock.release();
  }
}
