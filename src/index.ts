// tsrun's library API: every CLI command is a function here. A Node program can drive containers
// exactly as the CLI does:
//   const rt = new Tsrun({ root: "/run/tsrun" });
//   rt.create({ id: "c1", bundle: "/path/to/bundle" }); rt.start("c1"); rt.state("c1"); rt.delete("c1");
import { Logger, type LogOptions } from "./log";
import type { ContainerState } from "./state/store";
import { makeContext, type Context, type RuntimeOptions } from "./runtime/context";
import { create, type CreateOptions, type Created } from "./runtime/create";
import { run, type RunOptions } from "./runtime/run";
import { kill, type KillOptions } from "./runtime/kill";
import { remove, type DeleteOptions } from "./runtime/delete";
import { start } from "./runtime/start";
import { exec, type ExecOptions } from "./runtime/exec";
import { logs, type LogsOptions } from "./runtime/logs";
import { attach } from "./runtime/attach";
import { list, state } from "./runtime/query";
import { pause, resume } from "./runtime/pause";
import { containerPids, ps } from "./runtime/ps";
import { events, type EventsOptions } from "./runtime/events";
import { update, type UpdateOptions } from "./runtime/update";
import { CgroupManager } from "./cgroups/manager";

export class Tsrun {
  readonly ctx: Context;
  constructor(o: RuntimeOptions & { log?: LogOptions } = {}) {
    this.ctx = makeContext({ ...o, logger: o.logger ?? new Logger(o.log ?? {}) });
  }
  create(o: CreateOptions): Created {
    return create(this.ctx, o);
  }
  start(id: string): void {
    start(this.ctx, id);
  }
  run(o: RunOptions): Promise<number> {
    return run(this.ctx, o);
  }
  // Resolves to the process's exit code (0 at once when detached).
  exec(o: ExecOptions): Promise<number> {
    return exec(this.ctx, o);
  }
  logs(id: string, o?: LogsOptions, out?: (stream: "stdout" | "stderr", text: string) => void): Promise<void> {
    return logs(this.ctx, id, o, out);
  }
  attach(id: string): Promise<void> {
    return attach(this.ctx, id);
  }
  state(id: string): ContainerState {
    return state(this.ctx, id);
  }
  list(): ContainerState[] {
    return list(this.ctx);
  }
  kill(id: string, signal?: string | number, o?: KillOptions): void {
    kill(this.ctx, id, signal, o);
  }
  delete(id: string, o?: DeleteOptions): void {
    remove(this.ctx, id, o);
  }
  pause(id: string): void {
    pause(this.ctx, id);
  }
  resume(id: string): void {
    resume(this.ctx, id);
  }
  // The pids in the container's cgroups.
  pids(id: string): number[] {
    return containerPids(this.ctx, id);
  }
  // `ps` output: the table ps(1) prints (psArgs default -ef) with the container's rows, or the JSON array.
  ps(id: string, format: "table" | "json" = "table", psArgs: string[] = []): string {
    return ps(this.ctx, id, format, psArgs);
  }
  // runc's stats object (what `events --stats` prints under "data").
  stats(id: string): Record<string, unknown> {
    return CgroupManager.fromRecord(this.ctx.store.read(id).cgroup).stats();
  }
  // `events`: each JSON line to onLine; resolves when the stream ends (at once with stats: true).
  events(id: string, o: EventsOptions, onLine: (line: string) => void): Promise<void> {
    return events(this.ctx, id, o, onLine);
  }
  update(id: string, o: UpdateOptions): void {
    update(this.ctx, id, o);
  }
}

export { TsrunError } from "./errors";
export { Logger } from "./log";
export type { LogOptions, LogFormat } from "./log";
export type { ContainerState, Status } from "./state/store";
export type { CreateOptions, Created, RunOptions, KillOptions, DeleteOptions, RuntimeOptions, ExecOptions, LogsOptions, EventsOptions, UpdateOptions };
export type { UpdateFlags } from "./runtime/update";
export { features } from "./runtime/features";
export { formatTable } from "./runtime/query";
export { defaultSpec, specJson } from "./spec/default";
export { parseSpec, parseProcess, SpecError } from "./spec/schema";
export type { Spec, Process } from "./spec/schema";
