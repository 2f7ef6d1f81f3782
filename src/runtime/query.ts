// state and list: read-only views of the store.
import * as fs from "fs";
import type { ContainerState } from "../state/store";
import { validateId } from "../state/store";
import type { Context } from "./context";

export function state(ctx: Context, id: string): ContainerState {
  validateId(id);
  return ctx.store.state(ctx.store.read(id));
}

// As runc's list: the owner of the container's state directory, by name ("#UID" when /etc/passwd has none).
function ownerOf(dir: string, names: Map<number, string>): string {
  const uid = fs.statSync(dir).uid;
  return names.get(uid) ?? `#${uid}`;
}

function userNames(): Map<number, string> {
  const names = new Map<number, string>();
  try {
    for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
      const f = line.split(":");
      if (f.length >= 3 && /^\d+$/.test(f[2]!) && !names.has(Number(f[2]))) names.set(Number(f[2]), f[0]!);
    }
  } catch {
    // no passwd: owners are shown as #UID
  }
  return names;
}

export function list(ctx: Context): ContainerState[] {
  const out: ContainerState[] = [];
  const names = userNames();
  for (const id of ctx.store.ids()) {
    try {
      out.push({ ...ctx.store.state(ctx.store.read(id)), owner: ownerOf(ctx.store.dir(id), names) });
    } catch {
      // deleted while we listed
    } finally {
      ctx.store.forget(id); // one fd at a time, however many containers there are
    }
  }
  return out;
}

// runc's table: tabwriter(minwidth 12, padding 3), created in RFC 3339 with nanoseconds.
export function formatTable(states: readonly ContainerState[]): string {
  const rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created, s.owner])];
  const widths = rows[0]!.map((_, c) => Math.max(12, ...rows.map((r) => r[c]!.length + 3)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("")).join("\n") + "\n";
}
