// The state store: one directory per container under --root, holding state.json (written atomically:
// tmp + rename) and, while the init waits for `start`, the start socket. The directory itself is the lock:
// create and every mutating command hold flock(LOCK_EX) on it, so two tsrun processes never race.
import * as fs from "fs";
import * as path from "path";
import { delay } from "../async";
import { TsrunError, errnoCode, messageOf } from "../errors";
import { native } from "../native";
import type { CgroupRecord } from "../cgroups/manager";
import type { Spec } from "../spec/schema";

export const OCI_VERSION = "1.3.0";
export const START_SOCKET = "start.sock";
// NOTIFY_SOCKET (src/runtime/notify.ts): a directory bound into the container, holding tsrun's socket.
export const NOTIFY_DIR = "notify";
export const NOTIFY_SOCKET_NAME = "notify.sock";

export type Status = "creating" | "created" | "running" | "paused" | "stopped";

// What tsrun records about a container (state.json).
export interface ContainerRecord {
  id: string;
  pid: number; // init pid in tsrun's pid namespace (0 while creating)
  startTime: string; // field 22 of /proc/PID/stat, to detect pid reuse
  bundle: string;
  rootfs: string;
  created: string; // RFC 3339
  owner: string;
  annotations: Record<string, string>;
  creating: boolean; // true until create has finished
  cgroup: CgroupRecord;
  config: Spec;
  rootlessCgroups?: boolean; // created with runc's rootless cgroup manager (src/cgroups/rootless.ts)
  shimPid?: number; // the supervising shim, when there is one
  shimStartTime?: string;
  exit?: ExitRecord; // recorded by the shim (exit.json) when the init exits
}

export interface ExitRecord {
  code: number; // exit status, or 128+signal
  signal: number; // 0 unless killed by a signal
  time: string; // RFC 3339
}

// The runtime-spec state, with runc's extra fields.
export interface ContainerState {
  ociVersion: string;
  id: string;
  pid: number;
  status: Status;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
  exit?: ExitRecord; // only for containers supervised by a tsrun shim, once stopped
}

// runc's rule: [\w+-.]+, neither "." nor "..", and (as a directory name must be) at most 255 bytes. Checked
// first on every verb: an id is never joined into a path before it has passed.
export const MAX_ID_LENGTH = 255;
export function validateId(id: string): void {
  if (typeof id !== "string" || id.length === 0) throw new TsrunError("container id cannot be empty", "INVALID_ARGUMENT");
  if (id.length > MAX_ID_LENGTH || !/^[\w+\-.]+$/.test(id) || id === "." || id === "..") throw new TsrunError("invalid container ID format", "INVALID_ARGUMENT");
}

// The files tsrun and its shim make in a container's directory: delete removes these and nothing else.
const STATE_FILES = new Set(["state.json", START_SOCKET, "exit.json", "exit.json.tmp", "shim.sock", "attach.sock", "container.log"]);
const STATE_TMP = /^state\.json\.\d+\.tmp$/;

const O = fs.constants;

// The state store under --root. The root is opened once (the caller's path, trusted as given); a container's
// directory is reached from that fd as one validated name, O_DIRECTORY|O_NOFOLLOW (a symlink planted in the
// root is refused), and every file in it through the directory's own fd (/proc/self/fd/N/NAME): nothing is
// ever reached by joining an id into a path string, and nothing is removed recursively.
export class Store {
  private rootFd: number | undefined;
  private dirs = new Map<string, number>();

  constructor(readonly root: string) {}

  private fail(what: string, e: unknown): TsrunError {
    return new TsrunError(`--root ${this.root}: ${what}: ${errnoText(e)}`);
  }

  // The root's fd; undefined when it does not exist and `create` is false.
  private openRoot(create: boolean): number | undefined {
    if (this.rootFd !== undefined) return this.rootFd;
    if (create) {
      // mkdir -p by hand: Node's recursive mkdir reports ENOENT where the kernel said EROFS or EACCES
      const missing: string[] = [];
      for (let d = path.resolve(this.root); !fs.existsSync(d) && d !== path.dirname(d); d = path.dirname(d)) missing.unshift(d);
      for (const d of missing) {
        try {
          fs.mkdirSync(d, { mode: 0o711 });
        } catch (e) {
          if (errnoCode(e) !== "EEXIST") throw this.fail("create", e);
        }
      }
    }
    try {
      this.rootFd = fs.openSync(this.root, O.O_RDONLY | O.O_DIRECTORY);
    } catch (e) {
      if (!create && errnoCode(e) === "ENOENT") return undefined;
      throw this.fail("open", e);
    }
    return this.rootFd;
  }

  // A path for `name` directly under the root, through the root's fd.
  private inRoot(rootFd: number, name: string): string {
    return `/proc/self/fd/${rootFd}/${name}`;
  }

  ensureRoot(): void {
    this.openRoot(true);
  }

  // The container's directory, as a path through an fd this process holds (valid until remove or close).
  // Throws "does not exist" when there is no such directory.
  dir(id: string): string {
    validateId(id);
    let fd = this.dirs.get(id);
    if (fd !== undefined && !this.stillLinked(fd, id)) {
      // deleted (and maybe made again) by another tsrun since this process opened it
      this.forget(id);
      fd = undefined;
    }
    if (fd === undefined) {
      const root = this.openRoot(false);
      if (root === undefined) throw notExist(id);
      try {
        fd = fs.openSync(this.inRoot(root, id), O.O_RDONLY | O.O_DIRECTORY | O.O_NOFOLLOW);
      } catch (e) {
        const code = errnoCode(e);
        if (code === "ENOENT") throw notExist(id);
        if (code === "ELOOP" || code === "ENOTDIR") throw new TsrunError(`state of ${id} is not a directory tsrun made (${path.join(this.root, id)}): refusing to use it`);
        throw this.fail(`open the state of ${id}`, e);
      }
      this.dirs.set(id, fd);
    }
    return `/proc/self/fd/${fd}`;
  }

  private stillLinked(fd: number, id: string): boolean {
    try {
      const held = fs.fstatSync(fd);
      const named = fs.lstatSync(this.inRoot(this.rootFd!, id));
      return held.ino === named.ino && held.dev === named.dev;
    } catch {
      return false;
    }
  }

  // Claims the id: mkdir is atomic, so of two concurrent creates exactly one wins. Returns the held lock.
  async claim(id: string): Promise<Lock> {
    validateId(id);
    const root = this.openRoot(true)!;
    try {
      fs.mkdirSync(this.inRoot(root, id), { mode: 0o711 });
    } catch (e) {
      if (errnoCode(e) === "EEXIST") throw new TsrunError(`container with given ID already exists: ${id}`, "EXISTS");
      throw this.fail(`create the state directory of ${id}`, e);
    }
    return Lock.take(this.dir(id), true);
  }

  exists(id: string): boolean {
    try {
      return fs.existsSync(path.join(this.dir(id), "state.json"));
    } catch (e) {
      if (e instanceof TsrunError && e.code === "NOT_FOUND") return false;
      throw e;
    }
  }

  // True when a directory for the id exists (with or without state: a create killed early leaves it bare).
  hasDir(id: string): boolean {
    try {
      this.dir(id);
      return true;
    } catch (e) {
      if (e instanceof TsrunError && e.code === "NOT_FOUND") return false;
      throw e;
    }
  }

  // Opens an existing container with its lock held (exclusive for commands that change it).
  async open(id: string, exclusive = true): Promise<{ lock: Lock; record: ContainerRecord }> {
    const lock = await Lock.take(this.dir(id), exclusive);
    try {
      return { lock, record: this.read(id) };
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  read(id: string): ContainerRecord {
    const dir = this.dir(id);
    let text: string;
    try {
      text = readNoFollow(path.join(dir, "state.json"));
    } catch (e) {
      if (errnoCode(e) === "ENOENT") throw notExist(id);
      throw new TsrunError(`read state of ${id}: ${messageOf(e)}`);
    }
    try {
      const record = JSON.parse(text) as ContainerRecord;
      if (record.id !== id) throw new Error(`it names container "${record.id}"`);
      if (record.shimPid) {
        try {
          record.exit = JSON.parse(readNoFollow(path.join(dir, "exit.json"))) as ExitRecord;
        } catch {
          // still running (or the shim could not record it)
        }
      }
      return record;
    } catch (e) {
      throw new TsrunError(`state of ${id} is corrupt (${path.join(this.root, id, "state.json")}): ${messageOf(e)}`);
    }
  }

  write(record: ContainerRecord): void {
    const dir = this.dir(record.id);
    const tmp = path.join(dir, `state.json.${process.pid}.tmp`);
    try {
      const fd = fs.openSync(tmp, O.O_WRONLY | O.O_CREAT | O.O_TRUNC | O.O_NOFOLLOW, 0o600);
      try {
        fs.writeSync(fd, JSON.stringify(record));
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, path.join(dir, "state.json"));
    } catch (e) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // never made
      }
      throw this.fail(`write the state of ${record.id}`, e);
    }
  }

  // Removes the container's directory: the files tsrun made in it, by name through its fd, then the
  // directory itself (rmdir through the root's fd: a symlink swapped in is never followed). A directory
  // that still holds anything else is left, and that is an error naming what is there.
  remove(id: string): void {
    if (!this.hasDir(id)) return;
    const dir = this.dir(id);
    const strange: string[] = [];
    for (const name of fs.readdirSync(dir)) {
      if (name === NOTIFY_DIR) {
        strange.push(...this.removeNotifyDir(id, dir));
      } else if (STATE_FILES.has(name) || STATE_TMP.test(name)) {
        try {
          fs.unlinkSync(path.join(dir, name));
        } catch (e) {
          if (errnoCode(e) !== "ENOENT") throw new TsrunError(`remove ${path.join(this.root, id, name)}: ${messageOf(e)}`);
        }
      } else strange.push(name);
    }
    this.forget(id);
    if (strange.length) throw new TsrunError(`remove the state of ${id}: ${path.join(this.root, id)} holds files tsrun did not make (${strange.slice(0, 5).join(", ")}): left in place`);
    try {
      fs.rmdirSync(this.inRoot(this.openRoot(false)!, id));
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw this.fail(`remove the state directory of ${id}`, e);
    }
  }

  // The notify directory: its socket, then the directory (a directory that holds anything else is left).
  private removeNotifyDir(id: string, dir: string): string[] {
    const sub = path.join(dir, NOTIFY_DIR);
    const where = path.join(this.root, id, NOTIFY_DIR);
    try {
      if (!fs.lstatSync(sub).isDirectory()) return [NOTIFY_DIR];
      const others = fs.readdirSync(sub).filter((n) => n !== NOTIFY_SOCKET_NAME);
      if (others.length) return others.map((n) => `${NOTIFY_DIR}/${n}`);
      fs.rmSync(path.join(sub, NOTIFY_SOCKET_NAME), { force: true });
      fs.rmdirSync(sub);
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw new TsrunError(`remove ${where}: ${messageOf(e)}`);
    }
    return [];
  }

  // Closes the fd held for a container's directory.
  forget(id: string): void {
    const fd = this.dirs.get(id);
    if (fd !== undefined) fs.closeSync(fd);
    this.dirs.delete(id);
  }

  ids(): string[] {
    const root = this.openRoot(false);
    if (root === undefined) return [];
    const out: string[] = [];
    for (const e of fs.readdirSync(this.inRoot(root, ""), { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      try {
        validateId(e.name);
      } catch {
        continue;
      }
      // (a symlink is not a directory entry of type directory: it is never listed)
      if (fs.existsSync(path.join(this.inRoot(root, e.name), "state.json"))) out.push(e.name);
    }
    return out.sort();
  }

  // Live status: from the recorded pid, guarded against reuse by the process start time.
  status(record: ContainerRecord): Status {
    if (record.creating) {
      // A create that died leaves its directory unlocked: that container is as good as stopped.
      return Lock.isHeld(this.dir(record.id)) ? "creating" : "stopped";
    }
    if (record.exit || !processAlive(record.pid, record.startTime)) return "stopped";
    // a created container can be paused too (runc): the freezer is asked first
    // (the cgroup manager and its controllers load only here: `state` of a stopped container, `list` and
    // `delete` of one never pay for them)
    const { CgroupManager } = require("../cgroups/manager") as typeof import("../cgroups/manager");
    if (CgroupManager.fromRecord(record.cgroup).isFrozen()) return "paused";
    if (fs.existsSync(path.join(this.dir(record.id), START_SOCKET))) return "created";
    return "running";
  }

  state(record: ContainerRecord): ContainerState {
    const status = this.status(record);
    const s: ContainerState = { ...stateOf(record, status), pid: status === "stopped" ? 0 : record.pid };
    if (status === "stopped" && record.exit) s.exit = record.exit;
    return s;
  }
}

// The state as hooks and `start` see it at a given step (status given, not read from the process).
export function stateOf(record: ContainerRecord, status: Status): ContainerState {
  return {
    ociVersion: OCI_VERSION,
    id: record.id,
    pid: record.pid,
    status,
    bundle: record.bundle,
    rootfs: record.rootfs,
    created: record.created,
    owner: record.owner,
    ...(Object.keys(record.annotations).length ? { annotations: record.annotations } : {}),
  };
}

export function notExist(id: string): TsrunError {
  return new TsrunError(`container "${id}" does not exist`, "NOT_FOUND");
}

// Field 22 (starttime) and field 3 (state) of /proc/PID/stat; undefined if the process is gone.
export function procStat(pid: number): { state: string; startTime: string } | undefined {
  if (!(pid > 0)) return undefined;
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", startTime: fields[19] ?? "" };
}

export function processAlive(pid: number, startTime: string): boolean {
  const st = procStat(pid);
  return st !== undefined && st.startTime === startTime && st.state !== "Z" && st.state !== "X";
}

// "read-only file system" from Node's "EROFS: read-only file system, mkdir '/x'".
export function errnoText(e: unknown): string {
  const m = messageOf(e);
  return errnoCode(e) ? m.replace(/^[A-Z0-9]+: /, "").replace(/, [a-z0-9_]+( '.*')?$/, "") : m;
}

// A file's text, never through a symlink at its name.
function readNoFollow(file: string): string {
  const fd = fs.openSync(file, O.O_RDONLY | O.O_NOFOLLOW);
  try {
    return fs.readFileSync(fd, "utf8");
  } finally {
    fs.closeSync(fd);
  }
}

// flock on the container's directory (a path through the store's fd for it: reopened, so the lock has
// its own open file description).
export class Lock {
  private constructor(private fd: number | undefined) {}

  // Waits for the lock without blocking the event loop: flock is tried without waiting, then again after a
  // growing pause (1 ms up to 50 ms) for as long as another tsrun holds it.
  static async take(dir: string, exclusive: boolean): Promise<Lock> {
    const fd = fs.openSync(dir, O.O_RDONLY | O.O_DIRECTORY);
    try {
      for (let wait = 1; !native().flock(fd, exclusive, false); wait = Math.min(wait * 2, 50)) await delay(wait);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    return new Lock(fd);
  }

  // The lock if nobody holds it, else undefined.
  static tryTake(dir: string): Lock | undefined {
    const fd = fs.openSync(dir, O.O_RDONLY | O.O_DIRECTORY);
    try {
      if (native().flock(fd, true, false)) return new Lock(fd);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    fs.closeSync(fd);
    return undefined;
  }

  static isHeld(dir: string): boolean {
    let fd: number;
    try {
      fd = fs.openSync(dir, O.O_RDONLY | O.O_DIRECTORY);
    } catch {
      return false;
    }
    try {
      return !native().flock(fd, false, false);
    } finally {
      fs.closeSync(fd);
    }
  }

  release(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
