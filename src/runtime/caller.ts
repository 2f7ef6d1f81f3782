// What a caller hands tsrun: fds to pass on to a container and paths of sockets to connect to. A careless or
// hostile caller must not make tsrun pass its own fds, or follow a planted symlink.
import * as fs from "fs";
import * as path from "path";
import { TsrunError, messageOf } from "../errors";
import { native } from "../native";

// The fds >= 3 the CLI's caller passed, as bin/tsrun found them (open, not close-on-exec) before node started.
let recorded: number[] | undefined;

// Called first thing by the CLI entries (src/main.ts, src/snapshot.ts). The variable is removed, so nothing
// tsrun starts inherits it.
export function recordCallerFds(): void {
  const v = process.env.TSRUN_CALLER_FDS;
  delete process.env.TSRUN_CALLER_FDS;
  if (v === undefined) return;
  recorded = v
    .split(/\s+/)
    .filter((x) => /^\d+$/.test(x))
    .map(Number)
    .filter((fd) => fd >= 3);
}

// The fds a caller passes: as a library caller lists them (CreateOptions/ExecOptions.passedFds), or as the
// CLI recorded them; none when neither says.
export function passedFds(listed: readonly number[] | undefined): ReadonlySet<number> {
  return new Set(listed ?? recorded ?? []);
}

// fds 3 .. 3+listen-1 (systemd's LISTEN_FDS), then the --preserve-fds ones: each must be one the caller
// passed, and still open. Otherwise tsrun would hand its own fds (Node's eventpoll, pipes) to the container.
export function checkPassedFds(listen: number, preserve: number, listed: readonly number[] | undefined): void {
  const passed = passedFds(listed);
  for (let fd = 3; fd < 3 + listen + preserve; fd++) {
    const what = fd < 3 + listen ? "LISTEN_FDS" : "--preserve-fds";
    if (!passed.has(fd)) throw new TsrunError(`${what}: fd ${fd} was not passed by the caller`);
    try {
      fs.fstatSync(fd);
    } catch {
      throw new TsrunError(`${what}: fd ${fd} is not open`);
    }
  }
}

// A caller-named AF_UNIX socket (--console-socket, linux.seccomp.listenerPath), connected without following
// a final symlink: opened O_PATH|O_NOFOLLOW, checked with fstat to be a socket, connected through
// /proc/self/fd/N of that fd. Returns the connected socket (close-on-exec).
export function connectSocketPath(what: string, file: string): number {
  const n = native();
  const abs = path.resolve(file);
  const fd = openSocketPath(what, abs);
  try {
    try {
      return n.connectUnixAt(fd);
    } catch (e) {
      // "connect to /proc/self/fd/N: <reason>": the reason, with the caller's path
      throw new TsrunError(`${what}: connect to ${abs}: ${messageOf(e).replace(/^.*: /, "")}`);
    }
  } finally {
    fs.closeSync(fd);
  }
}

// The same checks without connecting: the path names a socket itself (not a symlink to one).
export function checkSocketPath(what: string, file: string): void {
  fs.closeSync(openSocketPath(what, path.resolve(file)));
}

function openSocketPath(what: string, abs: string): number {
  let fd: number;
  try {
    fd = native().openPath(abs);
  } catch (e) {
    throw new TsrunError(`${what}: ${messageOf(e)}`);
  }
  try {
    let st: fs.Stats;
    try {
      st = fs.fstatSync(fd);
    } catch (e) {
      throw new TsrunError(`${what}: stat ${abs}: ${messageOf(e)}`);
    }
    if (st.isSymbolicLink()) throw new TsrunError(`${what}: ${abs} is a symbolic link (refused: name the socket itself)`);
    if (!st.isSocket()) throw new TsrunError(`${what}: ${abs} is not a socket`);
    return fd;
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

// --pidfd-socket (runc 1.2+): a pidfd of the process, sent over the socket (SCM_RIGHTS) with the name runc
// uses ("standard" for a container's init, "setns" for an exec'd process). The socket is connected before
// anything is started, so a bad path fails first.
export class PidfdSocket {
  private constructor(private sock: number | undefined) {}

  static connect(path: string | undefined): PidfdSocket {
    return new PidfdSocket(path === undefined ? undefined : connectSocketPath("--pidfd-socket", path));
  }

  send(pid: number, kind: "standard" | "setns"): void {
    if (this.sock === undefined) return;
    const n = native();
    let pidfd: number;
    try {
      pidfd = n.pidfdOpen(pid);
    } catch (e) {
      throw new TsrunError(`--pidfd-socket: pidfd_open ${pid}: ${messageOf(e)}`);
    }
    try {
      n.sendFd(this.sock, pidfd, kind);
    } catch (e) {
      throw new TsrunError(`--pidfd-socket: send the pidfd: ${messageOf(e)}`);
    } finally {
      fs.closeSync(pidfd);
      this.close();
    }
  }

  close(): void {
    if (this.sock !== undefined) fs.closeSync(this.sock);
    this.sock = undefined;
  }
}
