// The state store: one directory per container under --root, holding state.json (written atomically:
// tmp + rename) and, while the init waits for `start`, the start socket. The directory itself is the lock:
// create and every mutating command hold flock(LOCK_EX) on it, so two tsrun processes never race.
import * as fs from "fs";
import * as path from "path";
import { isFrozen } from "../cgroups/freezer";
import { TsrunError } from "../errors";
import { native } from "../native";
import type { Spec } from "../spec/schema";

export const OCI_VERSION = "1.2.0";
export const START_SOCKET = "start.sock";

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
  cgroup: { dirs: Record<string, string>; created: string[] };
  config: Spec;
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

// runc accepts [\w+-.]+ and not "." or "..".
export function validateId(id: string): void {
  if (!id) throw new TsrunError("container id cannot be empty");
  if (id.length > 1024 || !/^[\w+\-.]+$/.test(id) || id === "." || id === "..") throw new TsrunError(`invalid container id format: ${id}`);
}

export class Store {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return path.join(this.root, id);
  }

  ensureRoot(): void {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o711 });
  }

  // Claims the id: mkdir is atomic, so of two concurrent creates exactly one wins. Returns the held lock.
  claim(id: string): Lock {
    validateId(id);
    this.ensureRoot();
    try {
      fs.mkdirSync(this.dir(id), { mode: 0o711 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new TsrunError(`container with given ID already exists: ${id}`);
      throw new TsrunError(`create state directory ${this.dir(id)}: ${(e as Error).message}`);
    }
    const lock = Lock.take(this.dir(id), true);
    return lock;
  }

  exists(id: string): boolean {
    return fs.existsSync(path.join(this.dir(id), "state.json"));
  }

  // Opens an existing container with its lock held (exclusive for commands that change it).
  open(id: string, exclusive = true): { lock: Lock; record: ContainerRecord } {
    validateId(id);
    let lock: Lock;
    try {
      lock = Lock.take(this.dir(id), exclusive);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw notExist(id);
      throw e;
    }
    try {
      return { lock, record: this.read(id) };
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  read(id: string): ContainerRecord {
    let text: string;
    try {
      text = fs.readFileSync(path.join(this.dir(id), "state.json"), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw notExist(id);
      throw new TsrunError(`read state of ${id}: ${(e as Error).message}`);
    }
    try {
      const record = JSON.parse(text) as ContainerRecord;
      if (record.shimPid) {
        try {
          record.exit = JSON.parse(fs.readFileSync(path.join(this.dir(id), "exit.json"), "utf8")) as ExitRecord;
        } catch {
          // still running (or the shim could not record it)
        }
      }
      return record;
    } catch (e) {
      throw new TsrunError(`state of ${id} is corrupt (${path.join(this.dir(id), "state.json")}): ${(e as Error).message}`);
    }
  }

  write(record: ContainerRecord): void {
    const file = path.join(this.dir(record.id), "state.json");
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(record));
    fs.renameSync(tmp, file);
  }

  remove(id: string): void {
    fs.rmSync(this.dir(id), { recursive: true, force: true });
  }

  ids(): string[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.root);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    return names.filter((n) => fs.existsSync(path.join(this.root, n, "state.json"))).sort();
  }

  // Live status: from the recorded pid, guarded against reuse by the process start time.
  status(record: ContainerRecord): Status {
    if (record.creating) {
      // A create that died leaves its directory unlocked: that container is as good as stopped.
      return Lock.isHeld(this.dir(record.id)) ? "creating" : "stopped";
    }
    if (record.exit || !processAlive(record.pid, record.startTime)) return "stopped";
    // a created container can be paused too (runc): the freezer is asked first
    if (isFrozen(record.cgroup.dirs)) return "paused";
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
  return new TsrunError(`container "${id}" does not exist`);
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

// flock on the container's directory.
export class Lock {
  private constructor(private fd: number | undefined) {}

  static take(dir: string, exclusive: boolean): Lock {
    const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      native().flock(fd, exclusive, true);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    return new Lock(fd);
  }

  static isHeld(dir: string): boolean {
    let fd: number;
    try {
      fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
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
