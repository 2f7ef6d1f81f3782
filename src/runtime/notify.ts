// NOTIFY_SOCKET: systemd's sd_notify protocol through a container, as runc does it (notify_socket.go).
// When the caller's NOTIFY_SOCKET is set at create (or run), the container's state directory gets a
// directory `notify/`, bound read-only (nosuid, nodev, noexec) at /run/notify in the container, and the
// process gets NOTIFY_SOCKET=/run/notify/notify.sock. At start (or run), tsrun binds its own datagram
// socket `notify/notify.sock` before the process is executed and waits for a message with READY=; it then
// sends the caller's socket that line, MAINPID=<the container's init> (tsrun's own pid in the foreground of
// `run`, where tsrun is what a service manager watches) and BARRIER=1 with an fd whose closing acknowledges
// them all (sd_notify_barrier, at most 30 s). The wait ends when the init exits: a container that never
// says READY never holds tsrun.
import * as fs from "fs";
import * as path from "path";
import { TsrunError, errnoCode, messageOf } from "../errors";
import { delay } from "../async";
import { native } from "../native";
import type { HostFacts } from "../plan/host";
import type { Spec } from "../spec/schema";
import { NOTIFY_DIR, NOTIFY_SOCKET_NAME } from "../state/store";
import { waitPidGone } from "./signal";

export const CONTAINER_NOTIFY_DIR = "/run/notify";
export const CONTAINER_NOTIFY_SOCKET = `${CONTAINER_NOTIFY_DIR}/${NOTIFY_SOCKET_NAME}`;
const POLL_MS = 100; // how often the init is checked while no message comes (runc: 100 ms)
const MESSAGE_MAX = 4096; // sd_notify's datagrams (runc reads 4096 bytes)
const SEND_RETRY_MS = 5_000; // a full queue at the caller's socket: retried for this long
const BARRIER_TIMEOUT_MS = 30_000; // runc: "Timeout after waiting 30s for barrier. Ignored."

// The caller's NOTIFY_SOCKET, checked: an absolute path, or "@name" for an abstract socket (which runc
// reaches through Go's net package, and systemd also hands out). Anything else is refused in one line.
export function checkNotifySocket(value: string): string {
  if (value.startsWith("/") || (value.startsWith("@") && value.length > 1)) {
    if (value.includes("\0")) throw new TsrunError("NOTIFY_SOCKET contains a NUL byte", "INVALID_ARGUMENT");
    if (value.startsWith("@") && Buffer.byteLength(value) > 108) throw new TsrunError(`NOTIFY_SOCKET ${value}: abstract socket name too long`, "INVALID_ARGUMENT");
    return value;
  }
  throw new TsrunError(`NOTIFY_SOCKET must be an absolute path or an abstract socket (@name): ${JSON.stringify(value)}`, "INVALID_ARGUMENT");
}

// The host directory bound into the container: the state directory's notify/, by its real path (the plan is
// executed by tsrun-init, which holds none of tsrun's fds). The state root is trusted as given (--root).
export function notifySource(stateRoot: string, id: string): string {
  return path.resolve(stateRoot, id, NOTIFY_DIR);
}

// The spec the plan is built from: runc's mount appended after config.json's own (so it is on top of
// anything they put at /run/notify), and NOTIFY_SOCKET in the process's environment, replacing one it may
// have (in runc the last entry wins). The config recorded in the state stays the bundle's own, so `exec`
// processes do not get NOTIFY_SOCKET (runc's exec reads config.json).
export function notifySpec(spec: Spec, source: string): Spec {
  const mount = { destination: CONTAINER_NOTIFY_DIR, type: "bind", source, options: ["bind", "nosuid", "noexec", "nodev", "ro"] };
  const out: Spec = { ...spec, mounts: [...(spec.mounts ?? []), mount] };
  if (spec.process) {
    const env = (spec.process.env ?? []).filter((e) => !e.startsWith("NOTIFY_SOCKET="));
    out.process = { ...spec.process, env: [...env, `NOTIFY_SOCKET=${CONTAINER_NOTIFY_SOCKET}`] };
  }
  return out;
}

// The mount's source does not exist yet when the config is validated (create makes it once the state
// directory is claimed): it is recorded as the directory tsrun will make.
export function notifyFacts(host: HostFacts, source: string): HostFacts {
  return { ...host, bindSources: { ...host.bindSources, [source]: { path: source, exists: true, procfs: false } } };
}

// notify/ in the container's state directory (`dir`: a path through the store's fd), 0755 as runc's.
export function makeNotifyDir(dir: string): void {
  try {
    fs.mkdirSync(path.join(dir, NOTIFY_DIR), { mode: 0o755 });
    fs.chmodSync(path.join(dir, NOTIFY_DIR), 0o755); // (whatever the umask)
  } catch (e) {
    throw new TsrunError(`NOTIFY_SOCKET: create ${NOTIFY_DIR}/ in the state directory: ${messageOf(e)}`);
  }
}

// tsrun's socket in notify/ and a connection to the caller's, made before the container's process runs
// (a READY sent at once is queued, and a caller's socket that is not there fails start before anything
// happens).
export class NotifyRelay {
  private constructor(
    private sock: number,
    private host: number,
    private readonly target: string,
  ) {}

  private cancelled = false;

  // Undefined when the container was created without NOTIFY_SOCKET: its process has no socket to reach
  // (runc fails start there; tsrun starts it and says why nothing is relayed).
  static open(dir: string, target: string, warn: (m: string) => void): NotifyRelay | undefined {
    checkNotifySocket(target);
    const sub = path.join(dir, NOTIFY_DIR);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(sub);
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw new TsrunError(`NOTIFY_SOCKET: ${NOTIFY_DIR}/ in the state directory: ${messageOf(e)}`);
      warn("NOTIFY_SOCKET is set but the container was created without it: nothing is relayed");
      return undefined;
    }
    if (!st.isDirectory()) throw new TsrunError(`NOTIFY_SOCKET: ${NOTIFY_DIR} in the state directory is not a directory`);
    const file = path.join(sub, NOTIFY_SOCKET_NAME);
    const n = native();
    let host: number;
    try {
      host = n.connectUnixgram(target);
    } catch (e) {
      throw new TsrunError(`NOTIFY_SOCKET: ${messageOf(e)}`);
    }
    let sock: number;
    try {
      fs.rmSync(file, { force: true }); // left by a start that failed (the directory is tsrun's own)
      sock = n.bindUnixgram(file);
    } catch (e) {
      fs.closeSync(host);
      throw new TsrunError(`NOTIFY_SOCKET: ${messageOf(e)}`);
    }
    try {
      fs.chmodSync(file, 0o777); // any user of the container may notify (runc)
    } catch (e) {
      fs.closeSync(sock);
      fs.closeSync(host);
      throw new TsrunError(`NOTIFY_SOCKET: chmod ${NOTIFY_SOCKET_NAME}: ${messageOf(e)}`);
    }
    return new NotifyRelay(sock, host, target);
  }

  // Waits for READY= from the container, then tells the caller's socket. Returns once that is done or the
  // init (`pid`, with its start time) is gone. `mainPid` is the MAINPID sent.
  async forward(pid: number, startTime: string | undefined, mainPid: number, warn: (m: string) => void): Promise<void> {
    try {
      while (!this.cancelled) {
        if (await native().readable(this.sock, POLL_MS)) {
          const ready = this.receive();
          if (ready !== undefined) return await this.notifyHost(ready, mainPid, warn);
        } else if (await waitPidGone(pid, startTime, 0)) {
          return;
        }
      }
    } finally {
      this.close();
    }
  }

  // Ends a forward() that waits for READY (within POLL_MS), without relaying anything.
  cancel(): void {
    this.cancelled = true;
  }

  close(): void {
    for (const fd of [this.sock, this.host]) {
      if (fd < 0) continue;
      try {
        fs.closeSync(fd);
      } catch {
        // closed already
      }
    }
    this.sock = -1;
    this.host = -1;
  }

  // The queued datagrams; the first line starting with READY= (runc forwards that line and drops the rest:
  // STATUS=, RELOADING=... are not relayed). fds a message carried are closed.
  private receive(): string | undefined {
    for (;;) {
      let msg: { data: Buffer; fds: number[] };
      try {
        msg = native().recvMsg(this.sock, MESSAGE_MAX);
      } catch (e) {
        if (errnoCode(e) === "EAGAIN") return undefined;
        throw new TsrunError(`NOTIFY_SOCKET: receive from the container: ${messageOf(e)}`);
      }
      for (const fd of msg.fds) fs.closeSync(fd);
      const line = msg.data
        .toString()
        .split("\n")
        .find((l) => l.startsWith("READY="));
      if (line !== undefined) return line;
    }
  }

  private async notifyHost(ready: string, mainPid: number, warn: (m: string) => void): Promise<void> {
    await this.send(Buffer.from(`${ready}\n`), []);
    await this.send(Buffer.from(`MAINPID=${mainPid}\n`), []);
    await this.barrier(warn);
  }

  // sd_notify_barrier: BARRIER=1 with one fd the manager closes once it has handled what came before.
  // (A socket pair rather than a pipe: Node makes no pipe, and the end of stream is the same signal.)
  private async barrier(warn: (m: string) => void): Promise<void> {
    const n = native();
    const [mine, theirs] = n.socketpair();
    try {
      try {
        await this.send(Buffer.from("BARRIER=1"), [theirs]);
      } finally {
        fs.closeSync(theirs);
      }
      if (!(await n.readable(mine, BARRIER_TIMEOUT_MS))) {
        warn("Timeout after waiting 30s for barrier. Ignored.");
        return;
      }
      const got = n.recvMsg(mine, 1);
      for (const fd of got.fds) fs.closeSync(fd);
      if (got.data.length !== 0) throw new TsrunError("NOTIFY_SOCKET: unexpected read from synchronization pipe");
    } finally {
      fs.closeSync(mine);
    }
  }

  // One datagram; a full queue at the caller's socket is waited out for a while, never for ever.
  private async send(data: Buffer, fds: number[]): Promise<void> {
    const deadline = Date.now() + SEND_RETRY_MS;
    for (;;) {
      try {
        native().sendFds(this.host, data, fds);
        return;
      } catch (e) {
        if (errnoCode(e) !== "EAGAIN" || Date.now() >= deadline) throw new TsrunError(`NOTIFY_SOCKET: send to ${this.target}: ${messageOf(e)}`);
      }
      await delay(10);
    }
  }
}
