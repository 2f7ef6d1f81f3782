// Hooks that record themselves (the probe's `record`), or fail.
import type { CaseContext } from "./case";
import type { Hook } from "./config";

// A hook run in the runtime namespace: the host probe appends a record to the hook log. argv[0] is the tag.
export function recordHook(ctx: CaseContext, tag: string, existsPaths: string[] = []): Hook {
  return { path: ctx.hostProbe, args: [tag, "record", ctx.hookLog, ...existsPaths] };
}

// A hook whose path resolves in the container: the rootfs probe appends to /hooks.log (the same file).
export function containerRecordHook(tag: string): Hook {
  return { path: "/probe", args: [tag, "record", "/hooks.log"] };
}

export function failingHook(ctx: CaseContext, tag: string): Hook {
  return { path: ctx.hostProbe, args: [tag, "exit", "3"] };
}

export function hookTags(ctx: CaseContext): string[] {
  return ctx.hookRecords().map((r) => r.argv[0] ?? "");
}
