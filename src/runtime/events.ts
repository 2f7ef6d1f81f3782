// events: the container's cgroup statistics and OOM notifications as runc prints them, one JSON object
// per line ({"type":"stats","id":…,"data":{…}} / {"type":"oom","id":…}). --stats prints one and exits;
// otherwise stats come every --interval (Go duration, default 5s) and OOM kills as they happen (the OOM
// counter — v1 memory.oom_control, v2 memory.events — is polled every 100 ms), until the container's
// cgroup has no process left.
import { CgroupManager } from "../cgroups/manager";
import { TsrunError, messageOf } from "../errors";
import { goJson } from "../gojson";
import type { ContainerRecord } from "../state/store";
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

function statsLine(record: ContainerRecord, cgroups: CgroupManager): string {
  return goJson({ type: "stats", id: record.id, data: cgroups.stats() }) + "\n";
}

function populated(cgroups: CgroupManager): boolean {
  try {
    return cgroups.pids().length > 0;
  } catch {
    return false;
  }
}

// Resolves when the stream ends; `write` gets whole lines.
export async function events(ctx: Context, id: string, o: EventsOptions, write: (line: string) => void): Promise<void> {
  validateId(id);
  const interval = o.intervalMs ?? 5000;
  if (!(interval > 0)) throw new TsrunError("duration interval must be greater than 0");
  const record = ctx.store.read(id);
  if (ctx.store.status(record) === "stopped") throw new TsrunError(`container with id ${id} is not running`);
  const cgroups = CgroupManager.fromRecord(record.cgroup);
  if (o.stats) {
    try {
      write(statsLine(record, cgroups));
    } catch (e) {
      throw new TsrunError(`unable to get container cgroup stats: ${messageOf(e)}`);
    }
    return;
  }
  let ooms = cgroups.oomKillCount() ?? 0n;
  await new Promise<void>((resolve) => {
    let ticker: NodeJS.Timeout | undefined = undefined;
    let watcher: NodeJS.Timeout | undefined = undefined;
    const stop = () => {
      clearInterval(ticker);
      clearInterval(watcher);
      resolve();
    };
    const emit = (line: string) => {
      try {
        write(line);
      } catch {
        stop(); // nobody reads any more
      }
    };
    ticker = setInterval(() => {
      try {
        emit(statsLine(record, cgroups));
      } catch (e) {
        ctx.logger.error(`unable to get container cgroup stats: ${messageOf(e)}`);
      }
    }, interval);
    watcher = setInterval(() => {
      try {
        const n = cgroups.oomKillCount();
        for (; n !== undefined && n > ooms; ooms++) emit(goJson({ type: "oom", id: record.id }) + "\n");
      } catch (e) {
        ctx.logger.error(`unable to read the OOM count: ${messageOf(e)}`);
      }
      if (!populated(cgroups)) stop();
    }, 100);
  });
}
