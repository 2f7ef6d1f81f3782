// Building blocks for cases: the usual step sequences, config patches, hooks that record themselves, and the
// host-side helpers a case may need (namespace holders, a console socket, a seccomp listener).
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { CaseContext, Env, Requirement, Step } from "./case";
import { fail } from "./check";
import type { Config, Hook, HookName, Hooks, Linux, Mount, Process } from "./config";
import { cgroupHierarchies, killQuietly } from "./host";

// --- step sequences ---------------------------------------------------------------------------------------

// The usual life of a container whose process reports and exits: create, start, wait for it to exit, check
// what it printed, delete, and check that nothing is left.
export function lifecycle(what: string, check: (ctx: CaseContext) => void | Promise<void>, opts: { create?: Partial<Extract<Step, { op: "create" }>> } = {}): Step[] {
  return [{ op: "create", ...opts.create }, { op: "start" }, { op: "waitExit" }, { op: "check", what, check }, { op: "delete" }, { op: "nothingLeft" }];
}

// A config the runtime must refuse: create fails and leaves nothing behind (checked by the executor).
export function refusedAtCreate(): Step[] {
  return [{ op: "create", expect: "error" }];
}

// A config the runtime may refuse at create or at start (a property only start needs): either way the user
// program never runs and, after a forced delete, nothing is left.
export function refusedAtCreateOrStart(what: string): Step[] {
  return [
    { op: "create", expect: "any" },
    {
      op: "check",
      what,
      check: async (ctx) => {
        if (!ctx.results.some((r) => r.args.includes("create") && r.status === 0)) return;
        const r = await ctx.invoke(["start", ctx.id]);
        if (r.status === 0) fail("start succeeded");
      },
    },
    { op: "delete", force: true, expect: "any" },
    { op: "nothingLeft" },
  ];
}

// A container that stays up (the probe sleeps) until the case kills it.
export const LONG_RUNNING = ["sleep", "600"];

// --- config patches -----------------------------------------------------------------------------------------

export function proc(c: Config): Process {
  if (!c.process) fail("the config has no process");
  return c.process;
}

export function linux(c: Config): Linux {
  return (c.linux ??= {});
}

export function hooks(c: Config): Hooks {
  return (c.hooks ??= {});
}

export function addHook(c: Config, kind: HookName, h: Hook): void {
  (hooks(c)[kind] ??= []).push(h);
}

export function addMount(c: Config, m: Mount): void {
  (c.mounts ??= []).push(m);
}

export function setNamespace(c: Config, type: string, nsPath?: string): void {
  const l = linux(c);
  l.namespaces = (l.namespaces ?? []).filter((n) => n.type !== type);
  l.namespaces.push(nsPath ? { type, path: nsPath } : { type });
}

export function removeNamespace(c: Config, type: string): void {
  const l = linux(c);
  l.namespaces = (l.namespaces ?? []).filter((n) => n.type !== type);
}

// A user namespace mapping container ids 0..65535 to host ids 100000.., as rootless set-ups do.
export const USERNS_MAP = { containerID: 0, hostID: 100000, size: 65536 };

export function withUserNamespace(c: Config): void {
  setNamespace(c, "user");
  const l = linux(c);
  l.uidMappings = [{ ...USERNS_MAP }];
  l.gidMappings = [{ ...USERNS_MAP }];
  // sysfs cannot be mounted in a user namespace without a network namespace of its own: keep the latter.
}

// --- hooks that record themselves ---------------------------------------------------------------------------

// A hook run in the runtime namespace: the host probe appends a record to the hook log. argv[0] is the tag.
export function recordHook(ctx: CaseContext, tag: string, existsPaths: string[] = []): Hook {
  return { path: ctx.hostProbe, args: [tag, "record", ctx.hookLog, ...existsPaths] };
}

// A hook whose path resolves in the container: the rootfs probe appends to /hooks.log (the same file).
export function containerRecordHook(tag: string): Hook {
  return { path: "/probe", args: [tag, "record", "/hooks.log"] };
}

export function failingHook(ctx: CaseContext, tag: string): Hook {
  return { path: ctx.hostProbe, args: [tag, "exit", "3"] };
}

export function hookTags(ctx: CaseContext): string[] {
  return ctx.hookRecords().map((r) => r.argv[0] ?? "");
}

// --- host-side helpers ---------------------------------------------------------------------------------------

// A process holding fresh namespaces of the given types (unshare(1) around the host probe); its
// /proc/PID/ns/TYPE paths can be joined. Killed at cleanup.
export async function holdNamespaces(ctx: CaseContext, types: string[]): Promise<number> {
  const flags: Record<string, string> = { network: "--net", ipc: "--ipc", uts: "--uts", mount: "--mount", pid: "--pid", cgroup: "--cgroup", user: "--user", time: "--time" };
  const args = types.map((t) => flags[t] ?? fail(`cannot hold a ${t} namespace`));
  if (types.includes("pid") || types.includes("time")) args.push("--fork");
  const child = spawn("unshare", [...args, ctx.hostProbe, "sleep", "600"], { stdio: "ignore", detached: true });
  const pid = child.pid;
  if (pid === undefined) fail("could not start unshare");
  ctx.addCleanup(() => killQuietly(-pid));
  child.unref();
  // With --fork the holder is unshare's child; find the process that is in the new namespaces.
  const deadline = Date.now() + 5000;
  const probeName = path.basename(ctx.hostProbe);
  for (;;) {
    const holder = [pid, ...childrenOf(pid)].find((p) => readComm(p) === probeName.slice(0, 15));
    if (holder !== undefined) {
      // A user namespace gets USERNS_MAP, written from here (unshare's --map-users goes through newuidmap).
      if (types.includes("user")) {
        const map = `${USERNS_MAP.containerID} ${USERNS_MAP.hostID} ${USERNS_MAP.size}\n`;
        fs.writeFileSync(`/proc/${holder}/uid_map`, map);
        fs.writeFileSync(`/proc/${holder}/gid_map`, map);
      }
      return holder;
    }
    if (Date.now() > deadline) fail(`unshare ${args.join(" ")} did not start the namespace holder`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function childrenOf(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .split(" ")
      .filter((s) => s.trim() !== "")
      .map(Number);
  } catch {
    return [];
  }
}

function readComm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

// Starts a host probe that listens on a unix socket and prints "ready" (its stderr goes to a file of the
// case); killed at cleanup. Resolves once it is ready, with a promise of its exit.
async function listener(ctx: CaseContext, args: string[]): Promise<{ exited: Promise<void> }> {
  const err = fs.openSync(path.join(ctx.dir, `${args[0]}.err`), "w");
  const child = spawn(ctx.hostProbe, args, { stdio: ["ignore", "pipe", err], detached: true });
  fs.closeSync(err);
  const stdout = child.stdout;
  const pid = child.pid;
  if (pid === undefined || !stdout) fail(`could not start probe ${args[0]}`);
  ctx.addCleanup(() => killQuietly(pid));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`probe ${args[0]} did not get ready`)), 5000);
    stdout.on("data", (d: Buffer) => {
      if (d.toString().includes("ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  stdout.destroy();
  child.unref();
  return { exited };
}

// A --console-socket: the pty master the runtime sends is read into ctx.consoleOutput.
export async function withConsole(ctx: CaseContext): Promise<void> {
  ctx.consoleSocket = path.join(ctx.dir, "console.sock");
  ctx.consoleOutput = path.join(ctx.dir, "console.out");
  ctx.values.set("consoleClosed", (await listener(ctx, ["console-recv", ctx.consoleSocket, ctx.consoleOutput])).exited);
}

// Waits (up to 5 s) until the console receiver has read the terminal to its end.
export const consoleDrained: Step = {
  op: "check",
  what: "the terminal's output",
  check: async (ctx) => {
    const closed = ctx.values.get("consoleClosed");
    if (!(closed instanceof Promise)) fail("the case set up no console");
    const timedOut = await Promise.race([closed.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 5000))]);
    if (timedOut) fail("the terminal was not closed within 5 s of the process's exit");
  },
};

export function consoleText(ctx: CaseContext): string {
  try {
    return fs.readFileSync(ctx.consoleOutput ?? "", "utf8");
  } catch {
    return "";
  }
}

// A seccomp listener (linux.seccomp.listenerPath) that records what it receives and answers every
// notification with -errno.
export async function withSeccompAgent(ctx: CaseContext, errno: number): Promise<{ socket: string; log: string }> {
  const socket = path.join(ctx.dir, "seccomp.sock");
  const log = path.join(ctx.dir, "seccomp-agent.log");
  await listener(ctx, ["seccomp-agent", socket, log, String(errno)]);
  return { socket, log };
}

// --- requirements -------------------------------------------------------------------------------------------

const req = (why: string, met: (e: Env) => boolean): Requirement => ({ why, met });

export const needs = {
  timeNamespaces: req("the kernel has no time namespaces", (e) => e.host.timeNamespaces),
  userNamespaces: req("user namespaces are not available", (e) => e.host.userNamespaces),
  blockDevice: req("no block device found in /sys/block", (e) => e.host.blockDevice !== undefined),
  features: req("the runtime has no `features` command (features.md: a runtime MAY provide one)", (e) => e.runtime.features !== undefined),
  noResctrl: req("a resctrl file system is mounted here (the case needs a host without one)", (e) => !e.host.resctrl),
  resctrl: req("no resctrl file system is mounted on this host (Intel RDT)", (e) => e.host.resctrl),
  noApparmor: req("AppArmor is enabled on this host (the case needs a host without it)", (e) => !e.host.apparmor),
  noSelinux: req("SELinux is enabled on this host (the case needs a host without it)", (e) => !e.host.selinux),
  selinux: req("SELinux is not enabled on this host", (e) => e.host.selinux),
  knownArch: req("the case knows x64 and arm64 only", (e) => e.host.arch === "x64" || e.host.arch === "arm64"),
  cgroupV2: req("no cgroup v2 hierarchy on this host", () => cgroupHierarchies().some((h) => h.version === 2)),
  cpus: req("one CPU only: an affinity cannot be told apart", () => os.cpus().length > 1),
};
