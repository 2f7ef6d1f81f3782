// events: the container's cgroup statistics and OOM notifications as runc prints them, one JSON object
// per line ({"type":"stats","id":…,"data":{…}} / {"type":"oom","id":…}). --stats prints one and exits;
// otherwise stats come every --interval (Go duration, default 5s) and OOM kills as they happen, polled
// every 100 ms: on v1 one event per new oom_kill in memory.oom_control; on v2 as runc's inotify watch on
// memory.events (registerMemoryEventV2): one event each time the file changes (any of low, high, max, oom,
// oom_kill) while its oom_kill count is above zero. Until the container's cgroup has no process left.
import { CgroupManager } from "../cgroups/manager";
import { TsrunError, messageOf } from "../errors";
import { readCgroupFile } from "../cgroups/files";
import { delay } from "../async";
import type { Stats } from "../cgroups/stats";
import { goJson } from "../gojson";
import { validateId } from "../state/store";
import type { Context } from "./context";

export interface EventsOptions {
  stats?: boolean;
  intervalMs?: number;
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

// Go's time.ParseDuration ("5s", "1m30s", "250ms", "1.5h"), in milliseconds.
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === "0") return 0;
  let rest = s.replace(/^[+-]/, "");
  const sign = s.startsWith("-") ? -1 : 1;
  if (!rest) throw new TsrunError(`time: invalid duration ${JSON.stringify(text)}`);
  let ms = 0;
  while (rest) {
    const m = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
    if (!m) throw new TsrunError(`time: invalid duration ${JSON.stringify(text)}`);
    ms += parseFloat(m[1]!) * UNITS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return sign * ms;
}

export type RawEvent = { type: "stats"; id: string; data: Stats } | { type: "oom"; id: string };

// runc's stats object for a container that is not stopped.
export function containerStats(ctx: Context, id: string): Stats {
  validateId(id);
  const record = ctx.store.read(id);
  if (ctx.store.status(record) === "stopped") throw new TsrunError(`container with id ${id} is not running`, "NOT_RUNNING");
  try {
    return CgroupManager.fromRecord(record.cgroup).stats();
  } catch (e) {
    throw new TsrunError(`unable to get container cgroup stats: ${messageOf(e)}`);
  }
}

// v2: whether memory.events going from `before` to `now` is an "oom" event (runc: a modification of the file
// while oom_kill > 0).
export function memoryEventsOom(before: string | undefined, now: string | undefined): boolean {
  if (now === undefined || now === before) return false;
  const m = /^oom_kill (\d+)$/m.exec(now);
  return m !== null && BigInt(m[1]!) > 0n;
}

function populated(cgroups: CgroupManager): boolean {
  try {
    return cgroups.pids().length > 0;
  } catch {
    return false;
  }
}

// Stats every `intervalMs` and OOM kills as they happen (the OOM counter is read every 100 ms), until the
// container's cgroups have no process left or the consumer stops. A stats read that fails is logged and
// skipped, as runc does.
export async function* eventStream(ctx: Context, id: string, intervalMs: number): AsyncGenerator<RawEvent> {
  validateId(id);
  if (!(intervalMs > 0)) throw new TsrunError("duration interval must be greater than 0", "INVALID_ARGUMENT");
  const record = ctx.store.read(id);
  if (ctx.store.status(record) === "stopped") throw new TsrunError(`container with id ${id} is not running`, "NOT_RUNNING");
  const cgroups = CgroupManager.fromRecord(record.cgroup);
  const mem = cgroups.locate("memory");
  const v2Events = mem?.version === 2 ? mem.dir : undefined;
  const readEvents = (dir: string): string | undefined => {
    try {
      return readCgroupFile(dir, "memory.events");
    } catch {
      return undefined; // gone with the cgroup
    }
  };
  let events = v2Events !== undefined ? readEvents(v2Events) : undefined;
  let ooms = v2Events !== undefined ? 0n : (cgroups.oomKillCount() ?? 0n);
  let nextStats = Date.now() + intervalMs;
  for (;;) {
    await delay(Math.max(0, Math.min(100, nextStats - Date.now())));
    try {
      if (v2Events !== undefined) {
        const now = readEvents(v2Events);
        if (memoryEventsOom(events, now)) yield { type: "oom", id: record.id };
        if (now !== undefined) events = now;
      } else {
        const n = cgroups.oomKillCount();
        for (; n !== undefined && n > ooms; ooms++) yield { type: "oom", id: record.id };
      }
    } catch (e) {
      ctx.logger.error(`unable to read the OOM count: ${messageOf(e)}`);
    }
    if (Date.now() >= nextStats) {
      nextStats += intervalMs;
      if (nextStats < Date.now()) nextStats = Date.now() + intervalMs;
      let data: Stats | undefined;
      try {
        data = cgroups.stats();
      } catch (e) {
        ctx.logger.error(`unable to get container cgroup stats: ${messageOf(e)}`);
      }
      if (data) yield { type: "stats", id: record.id, data };
    }
    if (!populated(cgroups)) return;
  }
}

// The CLI's events: JSON lines as runc prints them; resolves when the stream ends (at once with stats).
export async function events(ctx: Context, id: string, o: EventsOptions, write: (line: string) => void): Promise<void> {
  if (o.stats) {
    write(goJson({ type: "stats", id, data: containerStats(ctx, id) }) + "\n");
    return;
  }
  for await (const ev of eventStream(ctx, id, o.intervalMs ?? 5000)) {
    try {
      write(goJson(ev) + "\n");
    } catch {
      return; // nobody reads any more
    }
  }
}
