// Host-side helpers a case may set up: processes holding namespaces to join, a console socket, a seccomp
// listener. Each is killed at the case's cleanup.
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import type { CaseContext, Step } from "./case";
import { fail } from "./check";
import { killQuietly } from "./host";
import { USERNS_MAP } from "./patches";

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
