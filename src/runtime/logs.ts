// logs: what a shim-supervised container wrote, from container.log (one JSON record per chunk:
// {"log","stream","time"}); with follow, new records as they come until the shim has finished.
import * as fs from "fs";
import * as path from "path";
import { TsrunError } from "../errors";
import { validateId, processAlive } from "../state/store";
import type { Context } from "./context";

export interface LogsOptions {
  follow?: boolean;
  timestamps?: boolean;
}

interface LogRecord {
  log: string;
  stream: "stdout" | "stderr";
  time: string;
}

export async function logs(ctx: Context, id: string, o: LogsOptions = {}, out: (stream: "stdout" | "stderr", text: string) => void = defaultOut): Promise<void> {
  validateId(id);
  const record = ctx.store.read(id);
  if (!record.shimPid) throw new TsrunError(`container ${id} has no logs: it is not supervised by a tsrun shim (use run -d or create --shim)`);
  const file = path.join(ctx.store.dir(id), "container.log");
  let offset = 0;
  let pending = "";
  const drain = () => {
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch {
      return;
    }
    try {
      const buf = Buffer.alloc(65536);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, offset);
        if (n <= 0) break;
        offset += n;
        pending += buf.toString("utf8", 0, n);
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (!line) continue;
          const r = JSON.parse(line) as LogRecord;
          out(r.stream, o.timestamps ? `${r.time} ${r.log}` : r.log);
        }
      }
    } finally {
      fs.closeSync(fd);
    }
  };
  drain();
  if (!o.follow) return;
  while (processAlive(record.shimPid, record.shimStartTime ?? "")) {
    await new Promise((r) => setTimeout(r, 100));
    drain();
  }
  drain();
}

function defaultOut(stream: "stdout" | "stderr", text: string): void {
  fs.writeSync(stream === "stdout" ? 1 : 2, text);
}
