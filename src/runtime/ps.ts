// ps: the container's processes — every pid in its cgroups, nested cgroups included — as a JSON array, or
// as the table `ps` prints (default `ps -ef`) keeping the header and the container's rows, as runc does.
import { execFile } from "child_process";
import { CgroupManager } from "../cgroups/manager";
import { TsrunError, messageOf } from "../errors";
import type { Context } from "./context";
import { validateId } from "../state/store";

export function containerPids(ctx: Context, id: string): number[] {
  const record = ctx.store.read(id);
  try {
    return CgroupManager.fromRecord(record.cgroup).pids();
  } catch (e) {
    throw new TsrunError(`unable to get all container pids: ${messageOf(e)}`);
  }
}

export async function ps(ctx: Context, id: string, format: "table" | "json", psArgs: readonly string[] = []): Promise<string> {
  validateId(id);
  const pids = containerPids(ctx, id);
  if (format === "json") return (pids.length ? JSON.stringify(pids) : "null") + "\n"; // Go encodes an empty list as null
  const args = psArgs.length ? [...psArgs] : ["-ef"];
  const r = await new Promise<{ stdout: string; stderr: string; status: number | null; error?: Error }>((resolve) => {
    execFile("ps", args, { encoding: "utf8", maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const code = error && typeof (error as { code?: unknown }).code === "number" ? ((error as { code: number }).code) : error ? null : 0;
      resolve({ stdout, stderr, status: code, ...(error && code === null ? { error } : {}) });
    });
  });
  const output = `${r.stdout}${r.stderr}`;
  if (r.error) throw new TsrunError(`ps: ${messageOf(r.error)}`);
  if (r.status !== 0) throw new TsrunError(`ps ${args.join(" ")}: exit status ${r.status}: ${output.trim().replace(/\s*\n\s*/g, " ")}`);
  const lines = r.stdout.split("\n");
  const header = lines[0] ?? "";
  const pidIndex = header.trim().split(/\s+/).indexOf("PID");
  if (pidIndex < 0) throw new TsrunError("couldn't find PID field in ps output");
  const want = new Set(pids);
  const out = [header];
  for (const line of lines.slice(1)) {
    if (!line) continue;
    const field = line.trim().split(/\s+/)[pidIndex];
    const pid = Number(field);
    if (!Number.isInteger(pid)) throw new TsrunError(`unable to parse pid: ${JSON.stringify(field)}`);
    if (want.has(pid)) out.push(line);
  }
  return out.join("\n") + "\n";
}
