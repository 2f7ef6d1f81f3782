// tsrun's library API for Node programs: a Runtime (one --root) and the Containers in it. Everything is
// async and nothing blocks the event loop for longer than a syscall: the helper handshake, hooks, locks and
// waits are watched fds, child processes and timers. Errors are TsrunError: a stable `code` and the
// one-line message the CLI prints. The CLI (src/cli.ts) is a thin shell over this.
//
//   const rt = new Runtime({ root: "/run/tsrun" });
//   const c = await rt.create("c1", { bundle: "/path/to/bundle" });
//   await c.start();
//   const { code } = await c.wait();
//   await c.delete();
//
// Each method loads the modules it needs when first called, so a CLI verb pays only for its own.
import { TsrunError, errnoCode } from "./errors";
import { Logger, type LogOptions } from "./log";
import type { GoJson } from "./gojson";
import type { Context } from "./runtime/context";
import type { CreateOptions as CreateInternal } from "./runtime/create";
import type { ExecOptions as ExecInternal } from "./runtime/exec";
import type { Process, UpdateResources } from "./spec/schema";
import type { ContainerRecord, ContainerState } from "./state/store";

export interface RuntimeOptions {
  root?: string; // default /run/tsrun, or $XDG_RUNTIME_DIR/tsrun for a non-root user (as runc)
  log?: LogOptions; // where warnings and debug lines go (default: stderr, no debug)
  systemdCgroup?: boolean;
  rootless?: boolean; // runc's --rootless (cgroup permission errors tolerated); unset: auto
}

export interface CreateOptions {
  bundle?: string; // default: the current directory
  pidFile?: string;
  consoleSocket?: string; // a unix socket that receives the pty master (process.terminal)
  consoleFd?: number; // or a connected unix socket of the caller's that receives it (a socketpair end)
  pidfdSocket?: string; // a unix socket that receives a pidfd of the init
  stdio?: readonly [number, number, number]; // the init's stdin, stdout, stderr (default: this process's)
  shim?: boolean; // supervise with a tsrun shim: it reaps the init and records its exit (wait() reads it)
  preserveFds?: number; // fds 3..3+N-1 passed to the container as they are
  passedFds?: number[]; // which fds >= 3 the caller really passes (required with preserveFds)
  noPivot?: boolean;
  noNewKeyring?: boolean;
  init?: boolean; // a reaping PID 1 in front of the process
}

export interface ExecOptions {
  tty?: boolean; // a pty: its master is ExecProcess.terminal (unless consoleSocket is given)
  consoleSocket?: string;
  pidfdSocket?: string; // a unix socket that receives a pidfd of the process
  detach?: boolean; // under a shim-supervised container: the shim starts and reaps the process
  pidFile?: string;
  stdio?: readonly [number, number, number];
  preserveFds?: number;
  passedFds?: number[];
  ignorePaused?: boolean; // exec into a paused container (the process stays frozen until resume)
  cgroups?: string[]; // sub-cgroups of the container's, as exec --cgroup: "PATH" or "CTRL[,CTRL]:PATH"
}

export interface ExitStatus {
  // The exit status (128+N when killed by signal N); null when it cannot be known (a container whose init
  // is neither this process's child nor supervised by a tsrun shim).
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type Stats = { [controller: string]: JsonValue };
export type JsonValue = number | string | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type ContainerEvent = { type: "stats"; id: string; data: Stats } | { type: "oom"; id: string };

export class Runtime {
  readonly #ctx: Context;

  constructor(o: RuntimeOptions = {}) {
    const { makeContext } = require("./runtime/context") as typeof import("./runtime/context");
    this.#ctx = makeContext({ ...(o.root !== undefined ? { root: o.root } : {}), logger: new Logger(o.log ?? {}), systemdCgroup: o.systemdCgroup === true, ...(o.rootless !== undefined ? { rootless: o.rootless } : {}) });
  }

  get root(): string {
    return this.#ctx.store.root;
  }

  // Creates a container from a bundle; it waits for start().
  async create(id: string, o: CreateOptions = {}): Promise<Container> {
    const { create } = require("./runtime/create") as typeof import("./runtime/create");
    const opts: CreateInternal = { id, ...o };
    await create(this.#ctx, opts);
    return new Container(this.#ctx, id);
  }

  // The container with this id (NOT_FOUND when there is none).
  async get(id: string): Promise<Container> {
    const { validateId } = require("./state/store") as typeof import("./state/store");
    validateId(id);
    this.#ctx.store.read(id);
    return new Container(this.#ctx, id);
  }

  async list(): Promise<ContainerState[]> {
    const { list } = require("./runtime/query") as typeof import("./runtime/query");
    return list(this.#ctx);
  }

  // The CLI's run: create + start, then (unless detached) the init in this process's foreground (signals
  // forwarded, a pty bridged to stdin/stdout); resolves to the exit code tsrun exits with.
  async run(id: string, o: Omit<CreateOptions, "shim"> & { detach?: boolean; keep?: boolean; noShim?: boolean } = {}): Promise<number> {
    const { run } = require("./runtime/run") as typeof import("./runtime/run");
    return run(this.#ctx, { id, ...o });
  }
}

export class Container {
  readonly #ctx: Context;
  constructor(
    ctx: Context,
    readonly id: string,
  ) {
    this.#ctx = ctx;
  }

  // notifySocket: relay the container's READY= to it (see create's notifySocket); resolves once relayed or
  // the init has exited.
  async start(o: { notifySocket?: string } = {}): Promise<void> {
    const { start } = require("./runtime/start") as typeof import("./runtime/start");
    await start(this.#ctx, this.id, o);
  }

  async state(): Promise<ContainerState> {
    const { state } = require("./runtime/query") as typeof import("./runtime/query");
    return state(this.#ctx, this.id);
  }

  async kill(signal: NodeJS.Signals | number = "SIGTERM", o: { all?: boolean } = {}): Promise<void> {
    const { kill } = require("./runtime/kill") as typeof import("./runtime/kill");
    await kill(this.#ctx, this.id, signal, o);
  }

  async pause(): Promise<void> {
    const { pause } = require("./runtime/pause") as typeof import("./runtime/pause");
    await pause(this.#ctx, this.id);
  }

  async resume(): Promise<void> {
    const { resume } = require("./runtime/pause") as typeof import("./runtime/pause");
    await resume(this.#ctx, this.id);
  }

  async delete(o: { force?: boolean } = {}): Promise<void> {
    const { remove } = require("./runtime/delete") as typeof import("./runtime/delete");
    await remove(this.#ctx, this.id, o);
  }

  // Changes the container's resources (linux.resources fields; what is not given is kept).
  async update(resources: UpdateResources): Promise<void> {
    const { update } = require("./runtime/update") as typeof import("./runtime/update");
    const { parseResources } = require("./spec/schema") as typeof import("./spec/schema");
    let r: UpdateResources;
    try {
      r = parseResources(resources, "resources");
    } catch (e) {
      throw new TsrunError((e as Error).message, "INVALID_CONFIG");
    }
    await update(this.#ctx, this.id, r);
  }

  // Every pid in the container's cgroups.
  async pids(): Promise<number[]> {
    const { containerPids } = require("./runtime/ps") as typeof import("./runtime/ps");
    return containerPids(this.#ctx, this.id);
  }

  // runc's stats object (what `events --stats` prints under "data"), as plain JSON values.
  async stats(): Promise<Stats> {
    const { containerStats } = require("./runtime/events") as typeof import("./runtime/events");
    return plainJson(containerStats(this.#ctx, this.id)) as Stats;
  }

  // Stats every intervalMs, and each OOM kill as it happens, until the container has no process left or
  // the loop is left.
  async *events(o: { intervalMs?: number } = {}): AsyncGenerator<ContainerEvent> {
    const { eventStream } = require("./runtime/events") as typeof import("./runtime/events");
    for await (const ev of eventStream(this.#ctx, this.id, o.intervalMs ?? 5000)) {
      yield ev.type === "stats" ? { type: "stats", id: ev.id, data: plainJson(ev.data) as Stats } : ev;
    }
  }

  // Resolves when the init has exited: its status when this process is its parent (a container created
  // here without a shim) or a tsrun shim recorded it; code null otherwise.
  async wait(): Promise<ExitStatus> {
    const { store } = this.#ctx;
    const record = store.read(this.id);
    await waitExit(record.pid, record.startTime);
    const own = reapOwn(record.pid);
    if (own) return own;
    if (record.shimPid) {
      // the shim writes exit.json once it has reaped the init
      const { retry } = require("./async") as typeof import("./async");
      let exit: ContainerRecord["exit"];
      await retry(
        () => {
          try {
            exit = store.read(this.id).exit;
          } catch (e) {
            if (e instanceof TsrunError && e.code === "NOT_FOUND") return true;
            throw e;
          }
          return exit !== undefined;
        },
        { timeoutMs: 5000, max: 20 },
      );
      if (exit) return { code: exit.code, signal: exit.signal ? signalName(exit.signal) : null };
    }
    return { code: null, signal: null };
  }

  // A new process in the running container (the process spec as config.json's "process").
  async exec(process: Process, o: ExecOptions = {}): Promise<ExecProcess> {
    const { startExec } = require("./runtime/exec") as typeof import("./runtime/exec");
    const opts: ExecInternal = { id: this.id, process: { ...process, terminal: o.tty ?? process.terminal ?? false }, ...o };
    const started = await startExec(this.#ctx, opts);
    return new ExecProcess(started.pid, started.master);
  }
}

export class ExecProcess {
  constructor(
    readonly pid: number,
    // the pty master (a tty without a console socket): the caller reads and writes it, and closes it
    readonly terminal?: number,
  ) {}

  // Resolves when the process has exited; its status when this process is its parent (not a detached
  // process a shim started).
  async wait(): Promise<ExitStatus> {
    await waitExit(this.pid, undefined);
    return reapOwn(this.pid) ?? { code: null, signal: null };
  }
}

// Resolves once `pid` has exited (its pidfd turns readable), or at once when it is gone or was recycled.
async function waitExit(pid: number, startTime: string | undefined): Promise<void> {
  if (!(pid > 0)) return;
  const { waitPidGone } = require("./runtime/signal") as typeof import("./runtime/signal");
  await waitPidGone(pid, startTime, -1);
}

// The exit status of `pid` when it is this process's child (reaped now); undefined when it is not.
function reapOwn(pid: number): ExitStatus | undefined {
  const { native } = require("./native") as typeof import("./native");
  try {
    const r = native().waitpid(pid, true);
    if (!(r.pid > 0) || r.code === undefined) return undefined;
    return { code: r.code, signal: r.signal ? signalName(r.signal) : null };
  } catch (e) {
    if (errnoCode(e) === "ECHILD") return undefined;
    throw e;
  }
}

function signalName(n: number): NodeJS.Signals | null {
  const { constants } = require("os") as typeof import("os");
  for (const [name, v] of Object.entries(constants.signals)) if (v === n) return name as NodeJS.Signals;
  return null;
}

// bigint counters as numbers (JSON-safe; values above 2^53 lose their last digits), undefined fields left out.
function plainJson(v: GoJson): JsonValue {
  if (v === undefined || v === null) return null;
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.map(plainJson);
  if (typeof v === "object") {
    const out: { [k: string]: JsonValue } = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = plainJson(x);
    return out;
  }
  return v;
}
