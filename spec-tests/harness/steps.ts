// Step sequences cases are made of: the usual life of a container, and the refusals.
import type { CaseContext, Step } from "./case";
import { fail } from "./check";

// The usual life of a container whose process reports and exits: create, start, wait for it to exit, check
// what it printed, delete, and check that nothing is left.
export function lifecycle(what: string, check: (ctx: CaseContext) => void | Promise<void>, opts: { create?: Partial<Extract<Step, { op: "create" }>> } = {}): Step[] {
  return [{ op: "create", ...opts.create }, { op: "start" }, { op: "waitExit" }, { op: "check", what, check }, { op: "delete" }, { op: "nothingLeft" }];
}

// A config the runtime must refuse: create fails and leaves nothing behind (checked by the executor).
export function refusedAtCreate(): Step[] {
  return [{ op: "create", expect: "error" }];
}

// A config the runtime may refuse at create or at start (a property only start needs): either way the user
// program never runs and, after a forced delete, nothing is left.
export function refusedAtCreateOrStart(what: string): Step[] {
  return [
    { op: "create", expect: "any" },
    {
      op: "check",
      what,
      check: async (ctx) => {
        if (!ctx.results.some((r) => r.args.includes("create") && r.status === 0)) return;
        const r = await ctx.invoke(["start", ctx.id]);
        if (r.status === 0) fail("start succeeded");
      },
    },
    { op: "delete", force: true, expect: "any" },
    { op: "nothingLeft" },
  ];
}

// A container that stays up (the probe sleeps) until the case kills it.
export const LONG_RUNNING = ["sleep", "600"];
