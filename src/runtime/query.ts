// state and list: read-only views of the store.
import type { ContainerState } from "../state/store";
import { validateId } from "../state/store";
import type { Context } from "./context";

export function state(ctx: Context, id: string): ContainerState {
  validateId(id);
  return ctx.store.state(ctx.store.read(id));
}

export function list(ctx: Context): ContainerState[] {
  const out: ContainerState[] = [];
  for (const id of ctx.store.ids()) {
    try {
      out.push(ctx.store.state(ctx.store.read(id)));
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
