// What the two CLI front ends share: src/cli.ts (commander: every command, usage errors, help) and
// src/cli-fast.ts (state, start, kill, delete, pause, resume and list given plainly, parsed by hand so they
// load no commander).
// Both run the same verbs with the same context, logger, errors and exit codes. Only light modules are
// imported here; each verb loads what it uses when it runs.
import * as fs from "fs";
import * as path from "path";
import { TsrunError, messageOf } from "./errors";
import { Logger, type LogFormat, type LogOptions } from "./log";
import type { Context } from "./runtime/context";

export interface GlobalOpts {
  root?: string;
  log?: string;
  logFormat: LogFormat;
  debug?: boolean;
  systemdCgroup?: boolean;
  rootless?: string;
}

export function write(text: string): void {
  fs.writeSync(1, text);
}

export function logOptions(g: GlobalOpts): LogOptions {
  return { ...(g.log ? { file: g.log } : {}), format: g.logFormat ?? "text", debug: g.debug === true };
}

// --root (default: rootless.ts's, decided when the context is made) and --rootless.
export function rootOptions(g: GlobalOpts): { root?: string; rootless?: boolean } {
  const { parseRootless } = require("./runtime/rootless") as typeof import("./runtime/rootless");
  const rootless = parseRootless(g.rootless);
  return { ...(g.root !== undefined ? { root: g.root } : {}), ...(rootless !== undefined ? { rootless } : {}) };
}

// The context the verbs run in.
export function cliContext(g: GlobalOpts, logger: Logger): Context {
  const { makeContext } = require("./runtime/context") as typeof import("./runtime/context");
  return makeContext({ ...rootOptions(g), logger, systemdCgroup: g.systemdCgroup === true });
}

// Before any command runs: the logger of the global options, and (bin/tsrun did not start create/run/exec
// from the snapshot) why, once, with --debug; a stamp from another boot is checked here, before the command
// runs (src/snapshot-stamp.ts).
export function beforeCommand(g: GlobalOpts): Logger {
  const logger = new Logger(logOptions(g));
  const skipped = process.env.TSRUN_SNAPSHOT_SKIPPED;
  const recheck = process.env.TSRUN_SNAPSHOT_RECHECK;
  delete process.env.TSRUN_SNAPSHOT_SKIPPED;
  delete process.env.TSRUN_SNAPSHOT_RECHECK;
  if (skipped) logger.debug(`startup snapshot not used: ${skipped}`);
  if (recheck) {
    const { recheckStamp } = require("./snapshot-stamp") as typeof import("./snapshot-stamp");
    // dist/src/cli-common.js, or a bundle in dist/
    const dist = path.basename(__dirname) === "src" ? path.dirname(__dirname) : __dirname;
    const why = recheckStamp(path.join(dist, "tsrun.blob.node"));
    logger.debug(why === null ? "startup snapshot: this node loads it, used from the next command on" : `startup snapshot stays unused: ${why}`);
  }
  return logger;
}

// A command's failure: one line (and a log record), and the status tsrun exits with.
export function failure(logger: Logger, e: unknown): number {
  logger.error(messageOf(e));
  return e instanceof TsrunError ? e.exitCode : 1;
}

// runc reads NOTIFY_SOCKET from its environment at create, run and start (an empty value is unset).
export function notifyOpts(): { notifySocket?: string } {
  const v = process.env.NOTIFY_SOCKET;
  return v ? { notifySocket: v } : {};
}

// ---- the verbs both front ends run (the context is made when each makes it, as before: start checks the
// id first)

export function stateVerb(ctx: () => Context, id: string): void {
  const c = ctx();
  const { state } = require("./runtime/query") as typeof import("./runtime/query");
  write(JSON.stringify(state(c, id), null, 2) + "\n");
}

export async function startVerb(ctx: () => Context, id: string): Promise<void> {
  const { validateId } = require("./state/store") as typeof import("./state/store");
  validateId(id);
  const { start } = require("./runtime/start") as typeof import("./runtime/start");
  await start(ctx(), id, notifyOpts());
}

export async function killVerb(ctx: () => Context, id: string, signal: string, all: boolean): Promise<void> {
  const c = ctx();
  const { kill } = require("./runtime/kill") as typeof import("./runtime/kill");
  await kill(c, id, signal, { all });
}

export async function deleteVerb(ctx: () => Context, id: string, force: boolean): Promise<void> {
  const c = ctx();
  const { remove } = require("./runtime/delete") as typeof import("./runtime/delete");
  await remove(c, id, { force });
}

// pause and resume, as the library's Container: the container is read first (validateId, then its state).
export async function pauseVerb(ctx: () => Context, id: string, resume: boolean): Promise<void> {
  const c = ctx();
  const { validateId } = require("./state/store") as typeof import("./state/store");
  validateId(id);
  c.store.read(id);
  const p = require("./runtime/pause") as typeof import("./runtime/pause");
  await (resume ? p.resume(c, id) : p.pause(c, id));
}

export function listVerb(ctx: () => Context, format: string, quiet: boolean): void {
  const q = require("./runtime/query") as typeof import("./runtime/query");
  const states = q.list(ctx());
  if (quiet) write(states.map((s) => s.id + "\n").join(""));
  else if (format === "json") write(JSON.stringify(states) + "\n");
  else write(q.formatTable(states));
}
