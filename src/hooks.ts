// Hooks that run in the runtime's namespaces (prestart, createRuntime, poststart, poststop): the state
// JSON on stdin, the hook's env (tsrun's own when none is given, as runc), and its timeout.
import { spawnSync } from "child_process";
import type { Hook } from "./spec/schema";
import type { ContainerState } from "./state/store";

export type RuntimeHookKind = "prestart" | "createRuntime" | "poststart" | "poststop";

export function runHook(kind: string, index: number, hook: Hook, state: ContainerState): void {
  const args = hook.args && hook.args.length > 0 ? hook.args : [hook.path];
  const env = hook.env ? Object.fromEntries(hook.env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])) : process.env;
  const r = spawnSync(hook.path, args.slice(1), {
    argv0: args[0]!,
    env,
    input: JSON.stringify(state),
    stdio: ["pipe", "pipe", "pipe"],
    timeout: hook.timeout ? hook.timeout * 1000 : undefined,
    killSignal: "SIGKILL",
    maxBuffer: 1 << 20,
  });
  const output = `${r.stdout?.toString() ?? ""}${r.stderr?.toString() ?? ""}`.trim().replace(/\s*\n\s*/g, " ");
  const what = `error running ${kind} hook #${index} ${hook.path}`;
  const code = r.error ? (r.error as NodeJS.ErrnoException).code : undefined;
  // A hook may exit without reading the state on stdin: its exit status is what counts, not our EPIPE.
  if (r.error && !(code === "EPIPE" && (r.status !== null || r.signal !== null))) {
    if (code === "ETIMEDOUT") throw new Error(`${what}: timed out after ${hook.timeout} s`);
    throw new Error(`${what}: ${r.error.message}`);
  }
  if (r.signal) throw new Error(`${what}: killed by ${r.signal}${output ? `: ${output}` : ""}`);
  if (r.status !== 0) throw new Error(`${what}: exit status ${r.status}${output ? `: ${output}` : ""}`);
}

export function runHooks(kind: RuntimeHookKind, hooks: readonly Hook[] | undefined, state: ContainerState): void {
  (hooks ?? []).forEach((h, i) => runHook(kind, i, h, state));
}

// poststart and poststop (runtime-spec): a failing hook is a warning, and the remaining hooks still run.
export function runHooksWarning(kind: "poststart" | "poststop", hooks: readonly Hook[] | undefined, state: ContainerState, warn: (msg: string) => void): void {
  (hooks ?? []).forEach((h, i) => {
    try {
      runHook(kind, i, h, state);
    } catch (e) {
      warn(e instanceof Error ? e.message : String(e));
    }
  });
}
