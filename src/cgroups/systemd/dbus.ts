// systemd's D-Bus API (org.freedesktop.systemd1.Manager), as far as the cgroup driver needs it, through
// @particle/dbus-next (a maintained fork of dbus-next: pure JavaScript, typed). It is loaded here only, on
// first use: commands on cgroupfs-managed containers never pay for it, and the startup snapshot does not
// carry it (createRequire is invisible to the bundler).
//   system instance  DBUS_SYSTEM_BUS_ADDRESS, else /run/dbus/system_bus_socket (the library's default);
//   user instance    DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus (rootless), authenticated as the
//                    uid the bus sees (busUid: from inside a user namespace too).
// Jobs are waited for as runc (go-systemd) does: the JobRemoved signal for the job the call returned, at
// most 30 s.
import * as fs from "fs";
import { createRequire } from "module";
import * as path from "path";
import type * as DBus from "@particle/dbus-next";
import { delay } from "../../async";
import { outsideUid } from "../../userns";
import type { Property } from "./units";
import { systemdVersionAtoi } from "./units";

const DEST = "org.freedesktop.systemd1";
const OBJ = "/org/freedesktop/systemd1";
const MANAGER = "org.freedesktop.systemd1.Manager";
const JOB_TIMEOUT_MS = 30000;

let lib: typeof DBus | undefined;
function dbus(): typeof DBus {
  lib ??= createRequire(path.join(__dirname, "dbus.js"))("@particle/dbus-next") as typeof DBus;
  return lib;
}

// sd_booted(3), as runc's IsRunningSystemd: /run/systemd/system is a directory. (TSRUN_SYSTEMD_RUN_DIR
// replaces the path: the tests' fake systemd.)
export function isRunningSystemd(): boolean {
  try {
    return fs.lstatSync(process.env.TSRUN_SYSTEMD_RUN_DIR ?? "/run/systemd/system").isDirectory();
  } catch {
    return false;
  }
}

// The bus address of the user's own systemd (runc's newUserSystemdDbus looks for the same socket).
function userBusAddress(): string {
  const env = process.env.DBUS_SESSION_BUS_ADDRESS;
  if (env) return env;
  const dir = process.env.XDG_RUNTIME_DIR;
  if (!dir) throw new Error("rootless systemd cgroups: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set");
  return `unix:path=${path.join(dir, "bus")}`;
}

// The uid the bus sees for this process (SO_PEERCRED, in the bus's namespace): inside a user namespace (tsrun
// under rootless podman runs as root there), the euid mapped out of it; runc's DetectUID asks the user bus for
// its owner instead, which is the same uid for a bus of the user's own.
export function busUid(): number {
  const uid = process.geteuid?.() ?? 0;
  try {
    return outsideUid(uid, fs.readFileSync("/proc/self/uid_map", "utf8")) ?? uid;
  } catch {
    return uid;
  }
}

// dbus-next answers the EXTERNAL mechanism with process.getuid(), which inside a user namespace is not the uid
// the bus checks it against. For the handshake alone (it reads the uid synchronously when the socket connects)
// getuid answers `uid`: one listener before the library's, one after.
function authenticateAs(bus: DBus.MessageBus, uid: number): void {
  const real = process.getuid;
  if (!real || uid === real()) return;
  const stream = (bus as unknown as { _connection?: { stream?: NodeJS.EventEmitter } })._connection?.stream;
  if (!stream || typeof stream.prependOnceListener !== "function") throw new Error("cannot authenticate to the user's bus from a user namespace (dbus-next changed)");
  stream.prependOnceListener("connect", () => {
    process.getuid = () => uid;
  });
  stream.once("connect", () => {
    process.getuid = real;
  });
}

// The D-Bus error name of a failed call ("" for anything else).
export function dbusErrorName(e: unknown): string {
  return e instanceof Error && "type" in e && typeof (e as { type: unknown }).type === "string" ? (e as { type: string }).type : "";
}

export class SystemdBus {
  private readonly jobs = new Map<string, string>(); // job object path -> result, from JobRemoved
  private readonly waiters = new Map<string, (result: string) => void>();
  private version: number | undefined;

  private constructor(private readonly bus: DBus.MessageBus) {
    bus.on("message", (m: DBus.Message) => {
      if (m.type !== dbus().MessageType.SIGNAL || m.interface !== MANAGER || m.member !== "JobRemoved") return;
      const [, job, , result] = m.body as [number, string, string, string];
      const w = this.waiters.get(job);
      if (w) w(result);
      else this.jobs.set(job, result);
    });
  }

  // A connection to the system's systemd (or the user's), subscribed to job completions.
  static async connect(rootless: boolean): Promise<SystemdBus> {
    const d = dbus();
    let bus: DBus.MessageBus;
    try {
      bus = rootless ? d.sessionBus({ busAddress: userBusAddress() }) : d.systemBus();
      if (rootless) authenticateAs(bus, busUid());
    } catch (e) {
      throw new Error(`connect to ${rootless ? "the user's" : "the system"} D-Bus: ${(e as Error).message}`);
    }
    const conn = new SystemdBus(bus);
    try {
      await conn.callBus("AddMatch", "s", [`type='signal',sender='${DEST}',interface='${MANAGER}',member='JobRemoved'`]);
    } catch (e) {
      conn.close();
      throw new Error(`connect to ${rootless ? "the user's" : "the system"} D-Bus: ${(e as Error).message}`);
    }
    return conn;
  }

  close(): void {
    this.bus.disconnect();
  }

  private async callBus(member: string, signature: string, body: unknown[]): Promise<void> {
    const d = dbus();
    await this.withError(this.bus.call(new d.Message({ destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member, signature, body })));
  }

  private async call(member: string, signature: string, body: unknown[], iface = MANAGER): Promise<unknown[]> {
    const d = dbus();
    const reply = await this.withError(this.bus.call(new d.Message({ destination: DEST, path: OBJ, interface: iface, member, signature, body })));
    return reply?.body ?? [];
  }

  // A connection that breaks (the socket refused or closed) rejects the pending call with an error event.
  private withError<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onError = (e: unknown) => reject(e instanceof Error ? e : new Error(String(e)));
      this.bus.once("error", onError);
      p.then(resolve, reject).finally(() => this.bus.off("error", onError));
    });
  }

  private variants(props: readonly Property[]): [string, DBus.Variant][] {
    const d = dbus();
    return props.map((p) => [p.name, new d.Variant(p.sig, p.value)]);
  }

  // systemd's version (runc's systemdVersion; -1 when it cannot be read).
  async systemdVersion(): Promise<number> {
    if (this.version !== undefined) return this.version;
    try {
      const [v] = (await this.call("Get", "ss", [MANAGER, "Version"], "org.freedesktop.DBus.Properties")) as [DBus.Variant<string>];
      this.version = systemdVersionAtoi(String(v.value));
    } catch {
      this.version = -1;
    }
    return this.version;
  }

  // The manager's own cgroup (ControlGroup; the user instance's is where its units go).
  async controlGroup(): Promise<string> {
    const [v] = (await this.call("Get", "ss", [MANAGER, "ControlGroup"], "org.freedesktop.DBus.Properties")) as [DBus.Variant<string>];
    return String(v.value);
  }

  private async waitJob(job: string, what: string): Promise<string> {
    const done = this.jobs.get(job);
    if (done !== undefined) return done;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(job);
        reject(new Error(`Timeout waiting for systemd to ${what}`));
      }, JOB_TIMEOUT_MS);
      this.waiters.set(job, (result) => {
        clearTimeout(timer);
        this.waiters.delete(job);
        resolve(result);
      });
    });
  }

  // runc's startUnit: StartTransientUnit(mode "replace") and its job's result. A unit of that name that
  // exists already is reset (a failed leftover) and the start tried once more — or, with ignoreExists (a
  // slice asked for as such), taken as it is.
  async startUnit(unit: string, props: readonly Property[], ignoreExists = false): Promise<void> {
    for (let retry = true; ; retry = false) {
      let job: string;
      try {
        [job] = (await this.call("StartTransientUnit", "ssa(sv)a(sa(sv))", [unit, "replace", this.variants(props), []])) as [string];
      } catch (e) {
        if (dbusErrorName(e) !== "org.freedesktop.systemd1.UnitExists") throw e;
        if (ignoreExists) return;
        if (!retry) throw e;
        await this.resetFailedUnit(unit).catch(() => undefined);
        continue;
      }
      let result: string;
      try {
        result = await this.waitJob(job, `create ${unit}`);
      } catch (e) {
        await this.resetFailedUnit(unit).catch(() => undefined);
        throw e;
      }
      if (result !== "done") {
        await this.resetFailedUnit(unit).catch(() => undefined);
        throw new Error(`error creating systemd unit \`${unit}\`: got \`${result}\``);
      }
      return;
    }
  }

  // runc's stopUnit: StopUnit and its job's result (a unit that is not there is no error), then
  // ResetFailedUnit so systemd forgets a failed one. Returns a warning when the job did not end "done".
  async stopUnit(unit: string): Promise<string | undefined> {
    let warning: string | undefined;
    let job: string | undefined;
    try {
      [job] = (await this.call("StopUnit", "ss", [unit, "replace"])) as [string];
    } catch {
      job = undefined; // (runc: no such unit, or any failure to stop it, is not an error)
    }
    if (job !== undefined) {
      const result = await this.waitJob(job, `remove ${unit}`);
      if (result !== "done") warning = `error removing unit \`${unit}\`: got \`${result}\`. Continuing...`;
    }
    await this.resetFailedUnit(unit).catch(() => undefined);
    return warning;
  }

  async resetFailedUnit(unit: string): Promise<void> {
    await this.call("ResetFailedUnit", "s", [unit]);
  }

  // SetUnitProperties(runtime=true), as runc's setUnitProperties.
  async setUnitProperties(unit: string, props: readonly Property[]): Promise<void> {
    if (props.length === 0) return;
    await this.call("SetUnitProperties", "sba(sv)", [unit, true, this.variants(props)]);
  }
}

// One connection for the length of `f` (a CLI verb needs a handful of calls; the socket must not keep the
// process alive after). A connection refused right after start is retried briefly, as runc's dbus manager
// retries a broken connection.
export async function withSystemd<T>(rootless: boolean, f: (bus: SystemdBus) => Promise<T>): Promise<T> {
  let bus: SystemdBus | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      bus = await SystemdBus.connect(rootless);
      break;
    } catch (e) {
      if (attempt >= 2) throw e;
      await delay(50);
    }
  }
  try {
    return await f(bus);
  } finally {
    bus.close();
  }
}
