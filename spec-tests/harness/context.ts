// One case against one runtime: its scratch directory, bundle, container id and cgroup, the calls made, and the
// cleanup that runs whatever happened (forced delete, helpers killed, cgroups and mounts removed, files gone).
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import type { CaseContext, Env, Facts, HookRecord, State } from "./case";
import { CheckError, SkipSignal, fail, firstLine } from "./check";
import type { Config } from "./config";
import { cgroupDirs, isAlive, killQuietly, mountsUnder, removeCgroupTree, type ProcessId } from "./host";
import type { CommandResult, Runtime } from "./runtime";

// What all cases of one run share.
export interface RunEnv {
  workDir: string; // the run's temp directory
  hostProbe: string; // the compiled probe
  cgroupParent: string; // "/spec-tests-…": every case's cgroup is under it
  tag: string; // short, unique to the run: part of every container id
  keepFiles: boolean; // leave the scratch directories in place
}

export class Context implements CaseContext {
  readonly results: CommandResult[] = [];
  readonly values = new Map<string, unknown>();
  readonly bundle: string;
  readonly rootfs: string;
  readonly hookLog: string;
  readonly hostProbe: string;
  config: Config = { ociVersion: "" };
  pid?: ProcessId;
  consoleSocket?: string;
  consoleOutput?: string;
  containerOut: string;
  containerErr: string;
  // Mounts under the scratch directory made by the case's set-up (not the runtime's).
  baselineMounts = new Set<string>();
  private calls = 0;
  private cleanups: (() => void | Promise<void>)[] = [];
  private readonly keepFiles: boolean;

  constructor(
    readonly runtime: Runtime,
    readonly env: Env,
    readonly id: string,
    readonly dir: string,
    readonly cgroupsPath: string,
    run: RunEnv,
  ) {
    this.bundle = path.join(dir, "bundle");
    this.rootfs = path.join(this.bundle, "rootfs");
    this.hookLog = path.join(this.rootfs, "hooks.log");
    this.hostProbe = run.hostProbe;
    this.containerOut = path.join(dir, "container.out");
    this.containerErr = path.join(dir, "container.err");
    this.keepFiles = run.keepFiles;
  }

  // The bundle directory and a rootfs holding only the probe (and the directories mounts go on).
  prepare(): void {
    fs.mkdirSync(this.rootfs, { recursive: true, mode: 0o755 });
    fs.mkdirSync(this.runtime.root, { mode: 0o711 });
    fs.chmodSync(this.dir, 0o755);
    fs.chmodSync(this.bundle, 0o755);
    fs.chmodSync(this.rootfs, 0o755);
    for (const d of ["proc", "sys", "dev", "tmp", "etc", "mnt"]) fs.mkdirSync(path.join(this.rootfs, d), { mode: 0o755 });
    fs.chmodSync(path.join(this.rootfs, "tmp"), 0o1777);
    fs.copyFileSync(this.hostProbe, path.join(this.rootfs, "probe"));
    fs.chmodSync(path.join(this.rootfs, "probe"), 0o755);
  }

  writeConfig(config: Config = this.config): void {
    fs.writeFileSync(path.join(this.bundle, "config.json"), JSON.stringify(config, null, 2));
  }

  async invoke(args: string[], opts: { timeoutMs?: number | undefined; umask?: number | undefined; oomScoreAdj?: number | undefined; outputName?: string; extraFiles?: string[] | undefined } = {}): Promise<CommandResult> {
    const name = opts.outputName ?? `call-${++this.calls}`;
    const r = await this.runtime.invoke(args, {
      cwd: this.dir,
      stdout: path.join(this.dir, `${name}.out`),
      stderr: path.join(this.dir, `${name}.err`),
      timeoutMs: opts.timeoutMs,
      umask: opts.umask,
      oomScoreAdj: opts.oomScoreAdj,
      extraFiles: opts.extraFiles,
    });
    this.results.push(r);
    if (r.timedOut) fail(`${args[0]} did not finish within ${(opts.timeoutMs ?? 30_000) / 1000} s (killed)`);
    return r;
  }

  async state(): Promise<State> {
    const r = await this.invoke(["state", this.id]);
    if (r.status !== 0) fail(`state: exit ${r.status}: ${firstLine(r.stderr)}`);
    return parseState(r.stdout);
  }

  stdout(): string {
    try {
      return fs.readFileSync(this.containerOut, "utf8");
    } catch {
      return "";
    }
  }

  stderr(): string {
    try {
      return fs.readFileSync(this.containerErr, "utf8");
    } catch {
      return "";
    }
  }

  jsonLines(): unknown[] {
    return jsonLinesOf(this.stdout());
  }

  json<T>(index: number): T {
    const lines = this.jsonLines();
    if (index >= lines.length) fail(`the container printed ${lines.length} JSON line(s), expected at least ${index + 1}; stdout ${JSON.stringify(this.stdout().slice(0, 200))}, stderr ${JSON.stringify(firstLine(this.stderr()))}`);
    return lines[index] as T;
  }

  facts(): Facts {
    const f = this.jsonLines().find((l): l is Facts => typeof l === "object" && l !== null && "caps" in l && "namespaces" in l);
    if (!f) fail(`the container printed no facts; stdout ${JSON.stringify(this.stdout().slice(0, 200))}, stderr ${JSON.stringify(firstLine(this.stderr()))}`);
    return f;
  }

  hookRecords(): HookRecord[] {
    let text = "";
    try {
      text = fs.readFileSync(this.hookLog, "utf8");
    } catch {
      return [];
    }
    return jsonLinesOf(text) as HookRecord[];
  }

  hostPath(containerPath: string): string {
    return path.join(this.rootfs, containerPath);
  }

  addCleanup(fn: () => void | Promise<void>): void {
    this.cleanups.push(fn);
  }

  skip(reason: string): never {
    throw new SkipSignal(reason);
  }

  // Whatever happened: force-delete the container, undo the case's own set-up, kill what is left of the
  // container, remove its cgroups and any mount under the scratch directory, remove the directory. Returns
  // the problems met (they are the harness's, reported as diagnostics).
  async cleanup(): Promise<string[]> {
    const problems: string[] = [];
    if (fs.existsSync(path.join(this.runtime.root, this.id))) {
      try {
        await this.invoke(["delete", "--force", this.id], { outputName: "cleanup-delete" });
      } catch (e) {
        problems.push(`delete --force: ${(e as Error).message}`);
      }
    }
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    if (this.pid && isAlive(this.pid)) killQuietly(this.pid.pid);
    for (const d of cgroupDirs(this.cgroupsPath)) {
      const p = removeCgroupTree(d);
      if (p) problems.push(p);
    }
    for (const m of mountsUnder(this.dir).reverse()) spawnSync("umount", ["-l", m]);
    if (this.keepFiles) return problems;
    try {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } catch (e) {
      problems.push(`rm ${this.dir}: ${(e as Error).message}`);
    }
    return problems;
  }
}

export function jsonLinesOf(text: string): unknown[] {
  const out: unknown[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "").trim();
    if (!line.startsWith("{") && !line.startsWith("[")) continue;
    try {
      out.push(JSON.parse(line) as unknown);
    } catch {
      // not JSON: part of a plain-text protocol
    }
  }
  return out;
}

export function parseState(text: string): State {
  let v: unknown;
  try {
    v = JSON.parse(text) as unknown;
  } catch {
    throw new CheckError(`state printed no JSON: ${JSON.stringify(text.slice(0, 200))}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new CheckError(`state printed ${JSON.stringify(text.slice(0, 200))}, not an object`);
  return v as State;
}
