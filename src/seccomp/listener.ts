// The seccomp notify listener (linux.seccomp.listenerPath, SCMP_ACT_NOTIFY): as runc's parent does for its
// init, tsrun gets the notify fd from tsrun-init (MSG_SECCOMP_FD, once the filter is loaded: at `start` for
// the container's init, during `exec` for an exec), connects to the listener, sends it the container
// process state (runtime-spec config-linux.md "The Container Process State") with the fd in one message,
// closes the connection, and acks so tsrun-init goes on to exec.
import * as fs from "fs";
import { TsrunError, messageOf } from "../errors";
import { native } from "../native";
import { Msg } from "../plan/protocol";
import { checkSocketPath, connectSocketPath } from "../runtime/caller";
import type { Channel, Frame } from "../runtime/channel";
import type { Spec } from "../spec/schema";
import { type ContainerState, OCI_VERSION } from "../state/store";

const WHAT = "config.json: linux.seccomp.listenerPath";

export interface Listener {
  path: string;
  metadata?: string;
}

// The listener of a config's profile (metadata only when set and not empty, as runc's omitempty).
export function listenerOf(spec: Spec): Listener | undefined {
  const s = spec.linux?.seccomp;
  if (!s?.listenerPath) return undefined;
  return { path: s.listenerPath, ...(s.listenerMetadata ? { metadata: s.listenerMetadata } : {}) };
}

// At create: the listener must be there (a socket, named without a final symlink), so a missing one fails
// create. It is not connected now: a listener takes one connection per process, the one with the fd.
export function checkListener(l: Listener): void {
  checkSocketPath(WHAT, l.path);
}

// runc's ContainerProcessState, in its field order.
export function containerProcessState(pid: number, state: ContainerState, metadata: string | undefined): string {
  return JSON.stringify({ ociVersion: OCI_VERSION, fds: ["seccompFd"], pid, ...(metadata !== undefined ? { metadata } : {}), state });
}

// Handles MSG_SECCOMP_FD: the fd and the state to the listener, then MSG_ACK to tsrun-init (MSG_ABORT and
// an error when the listener cannot be reached; tsrun-init then exits).
export function handOverNotifyFd(chan: Channel, frame: Frame, l: Listener | undefined, pid: number, state: ContainerState): void {
  const [fd, ...extra] = frame.fds;
  for (const x of extra) fs.closeSync(x);
  try {
    if (fd === undefined) throw new TsrunError("seccomp: tsrun-init sent no notify fd");
    if (!l) throw new TsrunError("seccomp: the filter has a notify fd but the config names no listenerPath");
    const sock = connectSocketPath(WHAT, l.path);
    try {
      native().sendFds(sock, Buffer.from(containerProcessState(pid, state, l.metadata)), [fd]);
    } catch (e) {
      throw new TsrunError(`seccomp: send the notify fd and container process state to the listener ${l.path}: ${messageOf(e)}`);
    } finally {
      fs.closeSync(sock);
    }
  } catch (e) {
    try {
      chan.send(Msg.ABORT);
    } catch {
      // tsrun-init is gone already
    }
    throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  chan.send(Msg.ACK);
}
