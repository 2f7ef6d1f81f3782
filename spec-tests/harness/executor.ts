// Runs a case against a runtime: set-up, bundle, steps in order (each with its expected outcome and checks),
// and cleanup. The first failing step ends the case.
import * as fs from "fs";
import * as path from "path";
import type { Case, CaseResult, Env, Outcome, Step } from "./case";
import { CheckError, SkipSignal, eq, fail, firstLine } from "./check";
import { BASE_OCI_VERSION, baseConfig, type Config, type Process } from "./config";
import { Context, parseState, type RunEnv } from "./context";
import { existingCgroupDirs, isAlive, mountsUnder, processId, sleepSync } from "./host";
import { Runtime, type CommandResult } from "./runtime";

class Refused extends Error {}

export interface CaseRun {
  result: CaseResult;
  diagnostics: string[]; // harness problems (cleanup), reported but not counted
}

export async function runCase(c: Case, rt: Runtime, env: Env, run: RunEnv, seq: number): Promise<CaseRun> {
  const started = Date.now();
  const done = (status: CaseResult["status"], reason?: string, diagnostics: string[] = []): CaseRun => ({
    result: { id: c.id, level: c.level, status, ms: Date.now() - started, ...(reason !== undefined ? { reason } : {}) },
    diagnostics,
  });
  const unmet = c.requires?.find((r) => !r.met(env));
  if (unmet) return done("skip", unmet.why);

  const dir = path.join(run.workDir, rt.name, `${seq}-${c.id}`);
  const id = `st${run.tag}-${seq}`;
  // Each case has a root of its own: no case sees another's containers.
  const caseRuntime = new Runtime(rt.name, rt.command, path.join(dir, "root"));
  const ctx = new Context(caseRuntime, env, id, dir, `${run.cgroupParent}/${rt.name}-${seq}`, run);
  let outcome: CaseRun;
  let stepNo = 0;
  let stepName = "set-up";
  try {
    ctx.prepare();
    await c.setup?.(ctx);
    ctx.baselineMounts = new Set(mountsUnder(ctx.dir));
    const config = baseConfig(c.args ?? ["facts"], ctx.cgroupsPath);
    config.ociVersion = c.since ?? BASE_OCI_VERSION;
    c.bundle?.(config, ctx);
    ctx.config = config;
    ctx.writeConfig();
    let firstCreate = true;
    for (const step of c.steps) {
      stepNo++;
      stepName = step.op;
      const creates = step.op === "create" || step.op === "run";
      await runStep(step, ctx, c.refusable !== undefined && creates && firstCreate);
      if (creates) firstCreate = false;
    }
    outcome = done("pass");
  } catch (e) {
    if (e instanceof SkipSignal) outcome = done("skip", e.message);
    else if (e instanceof Refused) outcome = done("skip", `refused (${c.refusable}): ${e.message}`);
    else if (e instanceof CheckError) outcome = done("fail", `step ${stepNo} (${stepName}): ${e.message}`);
    else outcome = done("fail", `harness error in step ${stepNo} (${stepName}): ${(e as Error).stack ?? String(e)}`);
  }
  outcome.diagnostics = await ctx.cleanup();
  outcome.result.ms = Date.now() - started;
  return outcome;
}

function checkOutcome(r: CommandResult, expected: Outcome, what: string): void {
  if (expected === "any") return;
  const okExit = r.status === 0;
  if (expected === "ok" && !okExit) fail(`${what}: expected success, got ${exitText(r)}: ${firstLine(r.stderr) || "(no error message)"}`);
  if (expected === "error" && okExit) fail(`${what}: expected an error, but it succeeded`);
}

function exitText(r: CommandResult): string {
  return r.status === null ? `signal ${r.signal}` : `exit ${r.status}`;
}

async function runStep(step: Step, ctx: Context, refusable: boolean): Promise<void> {
  switch (step.op) {
    case "create": {
      const pidFile = path.join(ctx.dir, "pid");
      const args = ["create", "--bundle", ctx.bundle, "--pid-file", pidFile];
      if (step.console) {
        if (!ctx.consoleSocket) fail("the case asks for a console but set none up");
        args.push("--console-socket", ctx.consoleSocket);
      }
      if (step.preserveFds) args.push("--preserve-fds", String(step.preserveFds.length));
      args.push(ctx.id);
      const extraFiles = step.preserveFds?.map((f) => path.join(ctx.dir, f));
      const first = ctx.pid === undefined;
      const r = await ctx.invoke(args, { outputName: first ? "container" : "create-again", umask: step.umask, oomScoreAdj: step.oomScoreAdj, extraFiles });
      await afterCreate(r, step.expect ?? "ok", "create", ctx, refusable, first ? pidFile : undefined, first);
      await step.check?.(r, ctx);
      return;
    }
    case "run": {
      const pidFile = path.join(ctx.dir, "pid");
      const r = await ctx.invoke(["run", "--bundle", ctx.bundle, "--pid-file", pidFile, ctx.id], { outputName: "container", umask: step.umask, oomScoreAdj: step.oomScoreAdj });
      const expected = step.expect ?? "ok";
      if (expected === "ok" && step.exitCode !== undefined) {
        if (r.status !== step.exitCode) {
          if (refusable && (await leftNothing(ctx)) === undefined && !ctx.stdout().trim()) throw new Refused(firstLine(r.stderr) || `exit ${r.status}`);
          fail(`run: expected the container's exit status ${step.exitCode}, got ${exitText(r)}: ${firstLine(r.stderr)}`);
        }
      } else {
        await afterCreate(r, expected, "run", ctx, refusable, undefined, ctx.pid === undefined);
      }
      await step.check?.(r, ctx);
      return;
    }
    case "start": {
      const r = await ctx.invoke(["start", ctx.id]);
      checkOutcome(r, step.expect ?? "ok", "start");
      await step.check?.(r, ctx);
      return;
    }
    case "state": {
      const r = await ctx.invoke(["state", ctx.id]);
      const expected = step.expect ?? "ok";
      checkOutcome(r, expected, "state");
      if (r.status !== 0) return;
      const s = parseState(r.stdout);
      if (step.status) eq(s.status, step.status, "state.status");
      await step.check?.(s, ctx);
      return;
    }
    case "kill": {
      const r = await ctx.invoke(["kill", ctx.id, step.signal ?? "SIGTERM"]);
      checkOutcome(r, step.expect ?? "ok", `kill ${step.signal ?? "SIGTERM"}`);
      return;
    }
    case "delete": {
      const r = await ctx.invoke(step.force ? ["delete", "--force", ctx.id] : ["delete", ctx.id]);
      checkOutcome(r, step.expect ?? "ok", step.force ? "delete --force" : "delete");
      await step.check?.(r, ctx);
      return;
    }
    case "exec": {
      let args: string[];
      if (step.process) {
        const base = ctx.config.process;
        if (!base) fail("exec with a process file needs the config's process as a base");
        const proc: Process = step.process(JSON.parse(JSON.stringify(base)) as Process);
        const file = path.join(ctx.dir, "process.json");
        fs.writeFileSync(file, JSON.stringify(proc, null, 2));
        args = ["exec", "--process", file, ctx.id];
      } else {
        args = ["exec", ctx.id, ...(step.args ?? ["/probe", "facts"])];
      }
      const r = await ctx.invoke(args, { outputName: "exec" });
      checkOutcome(r, step.expect ?? "ok", "exec");
      await step.check?.(r, ctx);
      return;
    }
    case "waitExit": {
      if (!ctx.pid) fail("no container process to wait for");
      const deadline = Date.now() + (step.timeoutMs ?? 10_000);
      while (isAlive(ctx.pid)) {
        if (Date.now() > deadline) fail(`the container process ${ctx.pid.pid} did not exit within ${(step.timeoutMs ?? 10_000) / 1000} s`);
        await sleep(20);
      }
      return;
    }
    case "waitOutput": {
      const deadline = Date.now() + (step.timeoutMs ?? 10_000);
      while (!step.pattern.test(ctx.stdout())) {
        if (Date.now() > deadline) fail(`the container did not print ${step.pattern} within ${(step.timeoutMs ?? 10_000) / 1000} s; stdout ${JSON.stringify(ctx.stdout().slice(0, 200))}`);
        await sleep(20);
      }
      return;
    }
    case "check":
      try {
        await step.check(ctx);
      } catch (e) {
        if (e instanceof CheckError) throw new CheckError(`${step.what}: ${e.message}`);
        throw e;
      }
      return;
    case "editConfig": {
      const copy = JSON.parse(JSON.stringify(ctx.config)) as Config;
      step.patch(copy);
      ctx.writeConfig(copy);
      return;
    }
    case "sleep":
      await sleep(step.ms);
      return;
    case "nothingLeft": {
      const left = await leftNothing(ctx);
      if (left) fail(left);
      return;
    }
  }
}

// After create/run: the outcome, the container process, and for an expected error (when no container of the
// case existed before), nothing left behind.
async function afterCreate(r: CommandResult, expected: Outcome, what: string, ctx: Context, refusable: boolean, pidFile: string | undefined, first: boolean): Promise<void> {
  if (expected === "ok" && r.status !== 0 && refusable) {
    const left = await leftNothing(ctx);
    if (left === undefined) throw new Refused(firstLine(r.stderr) || `exit ${r.status}`);
    fail(`${what} failed (${firstLine(r.stderr)}) and left something behind: ${left}`);
  }
  checkOutcome(r, expected, what);
  if (r.status === 0 && pidFile) {
    let pid = Number(readOr(pidFile));
    if (!(pid > 0)) {
      const s = await ctx.state();
      pid = typeof s.pid === "number" ? s.pid : 0;
    }
    const p = pid > 0 ? processId(pid) : undefined;
    if (p) ctx.pid = p;
  }
  if (r.status !== 0 && expected !== "any" && first) {
    const left = await leftNothing(ctx);
    if (left) fail(`${what} failed as expected but left something behind: ${left}`);
  }
}

// Undefined when nothing of the container is left; otherwise what is.
export async function leftNothing(ctx: Context): Promise<string | undefined> {
  const problems: string[] = [];
  const entry = path.join(ctx.runtime.root, ctx.id);
  if (fs.existsSync(entry)) problems.push(`state entry ${entry} exists`);
  const s = await ctx.invoke(["state", ctx.id]);
  if (s.status === 0) problems.push(`\`state ${ctx.id}\` still succeeds`);
  const configured = ctx.config.linux?.cgroupsPath;
  const cgPath = configured && configured.startsWith("/") ? configured : ctx.cgroupsPath;
  for (let i = 0; i < 50 && existingCgroupDirs(cgPath).length > 0; i++) sleepSync(10);
  const cg = existingCgroupDirs(cgPath);
  if (cg.length > 0) problems.push(`cgroup ${cg.join(", ")} exists`);
  const mounts = mountsUnder(ctx.dir).filter((m) => !ctx.baselineMounts.has(m));
  if (mounts.length > 0) problems.push(`mounts left on the host: ${mounts.join(", ")}`);
  if (ctx.pid && isAlive(ctx.pid)) problems.push(`the container process ${ctx.pid.pid} is alive`);
  return problems.length > 0 ? problems.join("; ") : undefined;
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return "";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

