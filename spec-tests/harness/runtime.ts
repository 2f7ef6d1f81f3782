// A runtime under test: a runc-compatible binary called with its own --root. Every call is a child process
// whose stdio are files, never pipes: a container created by `create` keeps the runtime's stdio, and a pipe
// would keep the harness waiting for an end of file that only comes when the container exits.
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";

export interface CommandResult {
  args: string[];
  status: number | null; // null when killed by a signal
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface InvokeOptions {
  cwd: string;
  // Files for the call's stdout and stderr (created or truncated). A container started by create/run writes
  // to the same files.
  stdout: string;
  stderr: string;
  timeoutMs?: number | undefined;
  // Process attributes the runtime starts with, set by /bin/sh before it execs the runtime.
  umask?: number | undefined;
  oomScoreAdj?: number | undefined;
  // Extra open files passed as fds 3, 4, … (for --preserve-fds).
  extraFiles?: string[] | undefined;
}

export class Runtime {
  constructor(
    readonly name: string,
    readonly command: string,
    readonly root: string,
  ) {}

  invoke(args: string[], opts: InvokeOptions): Promise<CommandResult> {
    const full = ["--root", this.root, ...args];
    let file = this.command;
    let argv = full;
    if (opts.umask !== undefined || opts.oomScoreAdj !== undefined) {
      const pre: string[] = [];
      if (opts.umask !== undefined) pre.push(`umask ${opts.umask.toString(8).padStart(4, "0")}`);
      if (opts.oomScoreAdj !== undefined) pre.push(`echo ${opts.oomScoreAdj} > /proc/self/oom_score_adj`);
      file = "/bin/sh";
      argv = ["-c", `${pre.join(" && ")} && exec "$@"`, "sh", this.command, ...full];
    }
    const out = fs.openSync(opts.stdout, "w");
    const err = fs.openSync(opts.stderr, "w");
    const extra = (opts.extraFiles ?? []).map((f) => fs.openSync(f, "r+"));
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const child = spawn(file, argv, { cwd: opts.cwd, stdio: ["ignore", out, err, ...extra], detached: true });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child.pid);
      }, opts.timeoutMs ?? 30_000);
      const close = () => {
        clearTimeout(timer);
        for (const fd of [out, err, ...extra]) fs.closeSync(fd);
      };
      child.on("error", (e) => {
        close();
        reject(e);
      });
      child.on("exit", (status, signal) => {
        close();
        resolve({
          args: full,
          status,
          signal,
          stdout: fs.readFileSync(opts.stdout, "utf8"),
          stderr: fs.readFileSync(opts.stderr, "utf8"),
          timedOut,
          ms: Date.now() - started,
        });
      });
    });
  }
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

// "NAME=PATH" or "PATH" (the name is the file's base name; a bare name is looked up on PATH).
export function parseRuntimeArg(arg: string, cwd: string): { name: string; command: string } {
  const eq = arg.indexOf("=");
  const name = eq > 0 ? arg.slice(0, eq) : path.basename(arg);
  const given = eq > 0 ? arg.slice(eq + 1) : arg;
  const command = given.includes("/") ? path.resolve(cwd, given) : lookPath(given);
  if (!command) throw new Error(`--runtime ${arg}: ${given} is not on PATH`);
  if (!fs.existsSync(command)) throw new Error(`--runtime ${arg}: ${command} does not exist`);
  return { name, command };
}

function lookPath(file: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir) continue;
    const p = path.join(dir, file);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}
