// Hooks that run in the runtime's namespaces (prestart, createRuntime, poststart, poststop): the state
// JSON on stdin, the hook's env (tsrun's own when none is given, as runc), and its timeout. A hook runs as
// a child process the event loop waits for: nothing blocks while it runs.
import type { Hook } from "./spec/schema";
import type { ContainerState } from "./state/store";

export type RuntimeHookKind = "prestart" | "createRuntime" | "poststart" | "poststop";

const MAX_OUTPUT = 1 << 20;

export function runHook(kind: string, index: number, hook: Hook, state: ContainerState): Promise<void> {
  const args = hook.args && hook.args.length > 0 ? hook.args : [hook.path];
  const env = hook.env ? Object.fromEntries(hook.env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])) : process.env;
  const what = `error running ${kind} hook #${index} ${hook.path}`;
  // child_process (and the streams and net modules it loads) only when a hook runs: start and delete without
  // hooks never pay for it
  const { spawn } = require("child_process") as typeof import("child_process");
  return new Promise<void>((resolve, reject) => {
    const child = spawn(hook.path, args.slice(1), { argv0: args[0]!, env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let size = 0;
    const collect = (b: Buffer) => {
      if (size < MAX_OUTPUT) out.push(b);
      size += b.length;
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    // A hook may exit without reading the state on stdin: its exit status is what counts, not our EPIPE.
    child.stdin.on("error", () => {});
    child.stdin.end(JSON.stringify(state));
    let timedOut = false;
    const timer = hook.timeout
      ? setTimeout(() => {
          timedOut = true;
          child.kill("SIGKILL");
        }, hook.timeout * 1000)
      : undefined;
    let spawnError: Error | undefined;
    child.on("error", (e) => {
      spawnError = e;
    });
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      const output = Buffer.concat(out).toString().slice(0, MAX_OUTPUT).trim().replace(/\s*\n\s*/g, " ");
      if (spawnError) return reject(new Error(`${what}: ${spawnError.message}`));
      if (timedOut) return reject(new Error(`${what}: timed out after ${hook.timeout} s`));
      if (signal) return reject(new Error(`${what}: killed by ${signal}${output ? `: ${output}` : ""}`));
      if (status !== 0) return reject(new Error(`${what}: exit status ${status}${output ? `: ${output}` : ""}`));
      resolve();
    });
  });
}

export async function runHooks(kind: RuntimeHookKind, hooks: readonly Hook[] | undefined, state: ContainerState): Promise<void> {
  for (const [i, h] of (hooks ?? []).entries()) await runHook(kind, i, h, state);
}

// poststart and poststop (runtime-spec): a failing hook is a warning, and the remaining hooks still run.
export async function runHooksWarning(kind: "poststart" | "poststop", hooks: readonly Hook[] | undefined, state: ContainerState, warn: (msg: string) => void): Promise<void> {
  for (const [i, h] of (hooks ?? []).entries()) {
    try {
      await runHook(kind, i, h, state);
    } catch (e) {
      warn(e instanceof Error ? e.message : String(e));
    }
  }
}
