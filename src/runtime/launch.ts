// The one way tsrun-init is started, for create and exec alike (runc's parentProcess/processComm, youki's
// typed channel):
//   - FdMap: the helper's fd table — 0-2, the fds passed through (LISTEN_FDS, --preserve-fds) at the same
//     numbers, then named slots whose numbers the plan refers to;
//   - one spawn path: directly (the helper is tsrun's child) or as the child of a tsrun shim;
//   - the message exchange, decoded into a typed union and dispatched to the caller's handlers.
// Waiting for the helper is a watched fd on the event loop (Channel.recv): nothing blocks.
import * as fs from "fs";
import { TsrunError } from "../errors";
import type { Logger } from "../log";
import { native, sealedHelper } from "../native";
import { Msg } from "../plan/opcodes";
import { Channel, type Frame } from "./channel";
import type { ShimClient } from "./shim";

// ---------------------------------------------------------------------------------------------------------
// The fd table

export class FdMap {
  private readonly table: (number | undefined)[] = [0, 1, 2];
  private readonly names: string[] = ["stdin", "stdout", "stderr"];

  // `passThrough` fds from 3 keep their numbers (the caller's LISTEN_FDS and --preserve-fds); `stdio`
  // replaces tsrun's own 0-2.
  constructor(
    readonly passThrough: number,
    stdio?: readonly [number, number, number],
  ) {
    if (stdio) this.table.splice(0, 3, ...stdio);
    for (let fd = 3; fd < 3 + passThrough; fd++) {
      this.table.push(fd);
      this.names.push(`passed fd ${fd}`);
    }
  }

  // A slot for an fd given later (bind): returns the number the helper will see it at.
  slot(name: string): number {
    this.table.push(undefined);
    this.names.push(name);
    return this.table.length - 1;
  }

  bind(slot: number, fd: number): void {
    if (this.table[slot] !== undefined || slot < 3 + this.passThrough) throw new Error(`fd map: slot ${slot} (${this.names[slot]}) is already bound`);
    this.table[slot] = fd;
  }

  // Child fd i = fds()[i]; every slot must be bound.
  fds(): number[] {
    return this.table.map((fd, i) => {
      if (fd === undefined) throw new Error(`fd map: slot ${i} (${this.names[i]}) was never bound`);
      return fd;
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Messages from tsrun-init

export type InitMessage =
  | { kind: "log"; text: string }
  | { kind: "error"; message: string }
  | { kind: "hookError"; message: string } // a createContainer or startContainer hook failed
  | { kind: "seccompFd"; frame: Frame } // the notify fd of a filter with a listener (frame.fds[0])
  | { kind: "usermapRequest"; pid: number }
  | { kind: "pid"; pid: number }
  | { kind: "hooksRequest" }
  | { kind: "ready" }
  | { kind: "ack" };

export function decodeMessage(f: Frame): InitMessage {
  const i32 = (what: string) => {
    if (f.payload.length < 4) throw new TsrunError(`tsrun-init sent a malformed ${what} message`);
    return f.payload.readInt32LE(0);
  };
  switch (f.type) {
    case Msg.LOG:
      return { kind: "log", text: f.payload.toString() };
    case Msg.ERROR:
      return { kind: "error", message: f.payload.toString() };
    case Msg.HOOK_ERROR:
      return { kind: "hookError", message: f.payload.toString() };
    case Msg.SECCOMP_FD:
      return { kind: "seccompFd", frame: f };
    case Msg.USERMAP_REQ:
      return { kind: "usermapRequest", pid: i32("usermap request") };
    case Msg.PID:
      return { kind: "pid", pid: i32("pid") };
    case Msg.HOOKS_REQ:
      return { kind: "hooksRequest" };
    case Msg.READY:
      return { kind: "ready" };
    case Msg.ACK:
      return { kind: "ack" };
    default:
      throw new TsrunError(`unexpected message ${f.type} from tsrun-init`);
  }
}

// What the caller does at each step. A handler that throws aborts the launch (the error is the launch's).
export interface Handshake {
  // The process the plan made (the container's init, or the exec'd process), in tsrun's pid namespace.
  onPid(pid: number): void | Promise<void>;
  // Write the uid/gid maps of `pid` (a new user namespace); the helper waits for the ack.
  onUsermapRequest?(pid: number): void | Promise<void>;
  // Run prestart/createRuntime hooks; resolves to the state JSON the helper's createContainer hooks get.
  onHooksRequest?(): Promise<Buffer>;
  // Set-up is done (create): record the container; the helper is then told and acks back.
  onReady?(): void | Promise<void>;
  // The seccomp notify fd (exec): handed to the listener; the handler acks (or aborts) on the channel.
  onSeccompFd?(chan: Channel, frame: Frame): void | Promise<void>;
}

export interface LaunchOptions {
  fds: FdMap;
  syncSlot: number; // the slot of the helper's end of the sync socket (bound by launch)
  plan: Buffer;
  logger: Logger;
  what: string; // "init" or "exec": prefix of debug lines, and the name in errors
  // tsrun's copies of fds in the map that only the helper may hold once it has them (a console or listener
  // connection: its peer may read until every copy is closed); closed right after the spawn, even when it
  // fails.
  handOver?: number[];
  // Start the helper as a child of this shim (the shim reaps it); otherwise tsrun's own child.
  shim?: { client: ShimClient; logs: boolean; consoleIndex?: number };
  // Called with the helper's pid once it runs, before it is sent its plan (the systemd cgroup driver starts
  // its unit with it: the helper's first step joins that unit's cgroups).
  onSpawn?: (pid: number) => Promise<void>;
}

// The outcome: the process's pid. `create` ends at ready (the init waits for start); `exec` at the end of
// the stream (the helper's exec closed the socket).
export class Launch {
  private helper = 0; // tsrun's own child until reaped (0: none, or the shim's)
  pid = 0;
  private chan: Channel | undefined;

  constructor(private readonly o: LaunchOptions) {}

  // Spawns the helper and runs the exchange to its end. On failure the caller calls abort().
  async run(h: Handshake): Promise<number> {
    const n = native();
    const [ours, theirs] = n.socketpair();
    this.chan = new Channel(ours);
    const argv = ["tsrun-init", String(this.o.syncSlot), ...(this.o.logger.debugEnabled ? ["debug"] : [])];
    let spawned: number;
    try {
      this.o.fds.bind(this.o.syncSlot, theirs);
      const fds = this.o.fds.fds();
      if (this.o.shim) {
        spawned = await this.o.shim.client.spawn(argv, fds, { logs: this.o.shim.logs, ...(this.o.shim.consoleIndex !== undefined ? { consoleIndex: this.o.shim.consoleIndex } : {}) });
      } else {
        this.helper = spawned = n.spawn(sealedHelper(), argv, [], fds);
      }
    } finally {
      fs.closeSync(theirs);
      for (const fd of this.o.handOver?.splice(0) ?? []) {
        try {
          fs.closeSync(fd);
        } catch {
          // already closed
        }
      }
    }
    const chan = this.chan;
    if (this.o.onSpawn) {
      try {
        await this.o.onSpawn(spawned);
      } catch (e) {
        // killed before its channel closes: it has nothing to report (abort() reaps it)
        try {
          process.kill(spawned, "SIGKILL");
        } catch {
          // gone
        }
        throw e;
      }
    }
    chan.send(Msg.PLAN, this.o.plan);
    for (;;) {
      const f = await chan.recv();
      if (!f) {
        if (this.pid > 0 && !h.onReady) return this.pid; // exec: the program is running
        const status = await this.reapHelper(); // (undefined once reaped at the pid, or under a shim)
        throw new TsrunError(`container ${this.o.what} exited during set-up without reporting an error${status !== undefined ? ` (status ${status})` : ""}`);
      }
      const m = decodeMessage(f);
      if (m.kind !== "seccompFd") for (const fd of f.fds) fs.closeSync(fd); // only that message carries one
      switch (m.kind) {
        case "log":
          this.o.logger.debug(`${this.o.what}: ${m.text}`);
          break;
        case "error":
        case "hookError":
          throw new TsrunError(m.message);
        case "seccompFd":
          if (!h.onSeccompFd) {
            for (const fd of m.frame.fds) fs.closeSync(fd);
            throw new TsrunError(`unexpected seccomp notify fd from tsrun-init (${this.o.what})`);
          }
          await h.onSeccompFd(chan, m.frame);
          break;
        case "usermapRequest":
          if (!h.onUsermapRequest) throw new TsrunError(`unexpected user namespace map request from tsrun-init (${this.o.what})`);
          await h.onUsermapRequest(m.pid);
          chan.send(Msg.ACK);
          break;
        case "pid":
          this.pid = m.pid;
          await this.reapHelper(); // the set-up helper exits once it has reported the pid
          await h.onPid(m.pid);
          break;
        case "hooksRequest": {
          if (!h.onHooksRequest) throw new TsrunError(`unexpected hooks request from tsrun-init (${this.o.what})`);
          let state: Buffer;
          try {
            state = await h.onHooksRequest();
          } catch (e) {
            chan.send(Msg.ABORT);
            throw e;
          }
          chan.send(Msg.ACK, state);
          break;
        }
        case "ready": {
          if (!h.onReady) throw new TsrunError(`unexpected ready message from tsrun-init (${this.o.what})`);
          if (!(this.pid > 0)) throw new TsrunError(`container ${this.o.what} reported ready before its pid`);
          await h.onReady();
          chan.send(Msg.ACK);
          // The init acks back once it has cleared its parent-death signal: tsrun must not exit before, or
          // the kernel would kill the init it has just recorded.
          const done = await chan.recv();
          const back = done ? decodeMessage(done) : undefined;
          if (back?.kind !== "ack") throw new TsrunError(back?.kind === "error" ? back.message : "container init exited before it was detached from tsrun");
          this.close();
          return this.pid;
        }
        case "ack":
          throw new TsrunError(`unexpected ack from tsrun-init (${this.o.what})`);
      }
    }
  }

  // The helper's exit status once it is gone (undefined: not tsrun's child).
  private async reapHelper(): Promise<number | undefined> {
    if (!(this.helper > 0)) return undefined;
    const pid = this.helper;
    this.helper = 0;
    return (await native().waitAsync(pid)).code;
  }

  close(): void {
    this.chan?.close();
    this.chan = undefined;
  }

  // After a failure: the helper and the process it made are killed, and reaped when they are tsrun's
  // children (a shim reaps its own).
  async abort(): Promise<void> {
    this.close();
    const n = native();
    if (this.helper > 0) {
      try {
        process.kill(this.helper, "SIGKILL");
      } catch {
        // gone
      }
      await this.reapHelper();
    }
    if (this.pid > 0) {
      try {
        process.kill(this.pid, "SIGKILL");
      } catch {
        // gone
      }
      if (!this.o.shim) {
        try {
          await n.waitAsync(this.pid);
        } catch {
          // not our child (any more)
        }
      }
    }
  }
}
