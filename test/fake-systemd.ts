// A fake systemd for the driver's tests (cgroups-systemd.test.ts): on a private bus (a `dbus-daemon
// --session` the test starts) it owns org.freedesktop.systemd1 and answers the Manager calls tsrun makes,
// each logged as one JSON line (64-bit values as strings, byte arrays as number lists) to the log file:
//   StartTransientUnit  makes the unit's cgroup under the given hierarchy mount point (Slice expanded as
//                       systemd does), moves PIDs into it, returns a job and sends JobRemoved "done";
//   StopUnit            kills what is in the cgroup, removes it, JobRemoved "done" (NoSuchUnit if unknown);
//   SetUnitProperties, ResetFailedUnit, GetUnit; Properties.Get of Version ("252") and ControlGroup.
// Usage: node fake-systemd.js BUS_ADDRESS CGROUP_MOUNT LOG [MANAGER_CGROUP]. MANAGER_CGROUP (default "/") is
// the manager's own ControlGroup, below which its units go, as a user instance's (user@UID.service) do.
// Prints "ready" once it owns the name. Without
// arguments it exits at once (node --test runs every file under a test directory).
import * as fs from "node:fs";
import * as path from "node:path";
import type * as DBus from "@particle/dbus-next";
import { expandSlice } from "../src/cgroups/systemd/units";

const [address, mount, log, managerCgroup = "/"] = process.argv.slice(2);

function jsonable(v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (Buffer.isBuffer(v)) return [...v];
  if (Array.isArray(v)) return v.map(jsonable);
  if (v && typeof v === "object" && "signature" in v && "value" in v) return jsonable((v as { value: unknown }).value);
  return v;
}

async function main(addr: string, root: string, logFile: string): Promise<void> {
  const dbus = require("@particle/dbus-next") as typeof DBus;
  const bus = dbus.sessionBus({ busAddress: addr });
  const units = new Map<string, string>(); // unit -> its cgroup directory
  let jobs = 0;
  const record = (member: string, args: unknown) => fs.appendFileSync(logFile, JSON.stringify({ member, args: jsonable(args) }) + "\n");
  const props = (list: [string, DBus.Variant][]) => Object.fromEntries(list.map(([k, v]) => [k, jsonable(v)]));
  const jobDone = (unit: string) => {
    const id = ++jobs;
    const job = `/org/freedesktop/systemd1/job/${id}`;
    setTimeout(() => bus.send(dbus.Message.newSignal("/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "JobRemoved", "uoss", [id, job, unit, "done"])), 5);
    return job;
  };
  // (the library's types say newError takes a string; it takes the call it answers)
  const error = (m: DBus.Message, name: string, text: string) => bus.send((dbus.Message.newError as unknown as (m: DBus.Message, n: string, t: string) => DBus.Message)(m, name, text));
  const noSuchUnit = (m: DBus.Message, unit: string) => error(m, "org.freedesktop.systemd1.NoSuchUnit", `Unit ${unit} not loaded.`);

  bus.addMethodHandler((m: DBus.Message) => {
    if (m.path !== "/org/freedesktop/systemd1") return false;
    const body = m.body as unknown[];
    if (m.interface === "org.freedesktop.DBus.Properties" && m.member === "Get") {
      const name = body[1] as string;
      bus.send(dbus.Message.newMethodReturn(m, "v", [new dbus.Variant("s", name === "Version" ? "252" : managerCgroup)]));
      return true;
    }
    if (m.interface !== "org.freedesktop.systemd1.Manager") return false;
    switch (m.member) {
      case "StartTransientUnit": {
        const [unit, mode, list] = body as [string, string, [string, DBus.Variant][]];
        const p = props(list);
        record(m.member, { unit, mode, props: p });
        if (units.has(unit)) {
          error(m, "org.freedesktop.systemd1.UnitExists", `Unit ${unit} was already loaded or has a fragment file.`);
          return true;
        }
        const dir = path.join(root, managerCgroup, expandSlice(String(p.Slice ?? "system.slice")), unit);
        fs.mkdirSync(dir, { recursive: true });
        for (const pid of (p.PIDs as number[] | undefined) ?? []) fs.writeFileSync(path.join(dir, "cgroup.procs"), String(pid));
        units.set(unit, dir);
        bus.send(dbus.Message.newMethodReturn(m, "o", [jobDone(unit)]));
        return true;
      }
      case "StopUnit": {
        const [unit, mode] = body as [string, string];
        record(m.member, { unit, mode });
        const dir = units.get(unit);
        if (dir === undefined) return (noSuchUnit(m, unit), true);
        units.delete(unit);
        void stop(dir).then(() => bus.send(dbus.Message.newMethodReturn(m, "o", [jobDone(unit)])));
        return true;
      }
      case "SetUnitProperties": {
        const [unit, runtime, list] = body as [string, boolean, [string, DBus.Variant][]];
        record(m.member, { unit, runtime, props: props(list) });
        if (!units.has(unit)) return (noSuchUnit(m, unit), true);
        bus.send(dbus.Message.newMethodReturn(m, "", []));
        return true;
      }
      case "ResetFailedUnit":
      case "GetUnit": {
        const [unit] = body as [string];
        record(m.member, { unit });
        if (!units.has(unit)) return (noSuchUnit(m, unit), true);
        bus.send(m.member === "GetUnit" ? dbus.Message.newMethodReturn(m, "o", [`/org/freedesktop/systemd1/unit/${unit.replace(/[^A-Za-z0-9]/g, "_")}`]) : dbus.Message.newMethodReturn(m, "", []));
        return true;
      }
      default:
        return false;
    }
  });
  await bus.requestName("org.freedesktop.systemd1", 0);
  process.stdout.write("ready\n");
}

// What systemd does to a scope it stops: every process killed, the cgroup removed once empty.
async function stop(dir: string): Promise<void> {
  const procs = () => {
    try {
      return fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  for (let i = 0; i < 200 && procs().length > 0; i++) {
    for (const pid of procs()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  for (let i = 0; i < 100; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

if (address && mount && log) {
  main(address, mount, log).catch((e: unknown) => {
    process.stderr.write(`fake systemd: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
