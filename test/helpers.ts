// Shared test fixtures: a static probe compiled once, bundles whose rootfs holds only that probe, a private
// --root, unique ids, and cleanup that runs even when a test fails.
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { defaultSpec } from "../src/spec/default";
import type { Spec } from "../src/spec/schema";

export const REPO = path.resolve(__dirname, "..", "..");
export const TSRUN = path.join(REPO, "bin", "tsrun");
// per test process: parallel runs never touch each other (a helper process, such as the pure-v2 scenarios
// run in a private mount namespace, shares its test's parent)
export const CGROUP_PARENT = process.env.TSRUN_TEST_CGROUP_PARENT ?? `tsrun-test-${process.pid}`;

let workDir: string | undefined;
export function work(): string {
  if (!workDir) {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-test-"));
    fs.chmodSync(workDir, 0o755); // a user-namespaced container's root must be able to reach its bundle
  }
  return workDir;
}

let probeBin: string | undefined;
export function probe(): string {
  if (probeBin) return probeBin;
  if (process.env.TSRUN_TEST_PROBE) return (probeBin = process.env.TSRUN_TEST_PROBE);
  const out = path.join(work(), "probe");
  execFileSync("cc", ["-static", "-O2", "-o", out, path.join(REPO, "spec-tests", "probe", "probe.c")]);
  return (probeBin = out);
}

let seq = 0;
export function uniqueId(prefix = "t"): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${seq++}`;
}

export interface Bundle {
  dir: string;
  rootfs: string;
  spec: Spec;
  id: string;
  write(): void;
}

// A bundle with rootfs/probe and runc's default config, patched for tests: no terminal, a cgroup under
// /tsrun-test/, the probe as the process.
// A rootfs holding the static probe as /probe and the usual mount points.
export function makeRootfs(rootfs: string): void {
  fs.mkdirSync(rootfs, { recursive: true });
  fs.copyFileSync(probe(), path.join(rootfs, "probe"));
  fs.chmodSync(path.join(rootfs, "probe"), 0o755);
  for (const d of ["proc", "sys", "dev", "tmp", "etc"]) fs.mkdirSync(path.join(rootfs, d));
}

export function makeBundle(args: string[] = ["facts"], patch?: (s: Spec) => void): Bundle {
  const id = uniqueId();
  const dir = path.join(work(), id);
  const rootfs = path.join(dir, "rootfs");
  makeRootfs(rootfs);
  const spec = defaultSpec({});
  spec.process!.terminal = false;
  spec.root!.readonly = false;
  spec.process!.args = ["/probe", ...args];
  spec.linux!.cgroupsPath = `/${CGROUP_PARENT}/${id}`;
  patch?.(spec);
  const b: Bundle = {
    dir,
    rootfs,
    spec,
    id,
    write() {
      fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(b.spec, null, 1));
    },
  };
  b.write();
  return b;
}

export function stateRoot(): string {
  const r = path.join(work(), "state");
  fs.mkdirSync(r, { recursive: true });
  return r;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

// stdout/stderr go to files, not pipes: a detached container keeps its stdio open after tsrun exits,
// and a pipe would keep the caller waiting for an end of file that never comes.
export function tsrun(args: string[], opts: { cwd?: string; root?: string; timeout?: number } = {}): RunResult {
  const out = path.join(work(), `out-${process.pid}-${seq}`);
  const err = path.join(work(), `err-${process.pid}-${seq++}`);
  const o = fs.openSync(out, "w+");
  const e = fs.openSync(err, "w+");
  try {
    const r: SpawnSyncReturns<Buffer> = spawnSync(TSRUN, ["--root", opts.root ?? stateRoot(), ...args], {
      cwd: opts.cwd ?? work(),
      timeout: opts.timeout ?? 30_000,
      stdio: ["ignore", o, e],
    });
    if (r.error) throw r.error;
    return { status: r.status ?? 128 + (r.signal ? os.constants.signals[r.signal] : 0), stdout: fs.readFileSync(out, "utf8"), stderr: fs.readFileSync(err, "utf8") };
  } finally {
    fs.closeSync(o);
    fs.closeSync(e);
    fs.rmSync(out, { force: true });
    fs.rmSync(err, { force: true });
  }
}

export function tsrunAsync(args: string[], opts: { root?: string } = {}) {
  return spawn(TSRUN, ["--root", opts.root ?? stateRoot(), ...args], { cwd: work(), stdio: ["pipe", "pipe", "pipe"] });
}

// Runs the bundle's process to completion and parses its first stdout line as JSON.
export function runJson<T = Record<string, unknown>>(b: Bundle): T {
  const r = tsrun(["run", "--bundle", b.dir, b.id]);
  if (r.status !== 0) throw new Error(`tsrun run failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.split("\n")[0]!) as T;
}

export function ok(r: RunResult): RunResult {
  if (r.status !== 0) throw new Error(`tsrun failed with ${r.status}: ${r.stderr}`);
  return r;
}

// The host's cgroup mount points as they are (every v1 hierarchy, the v2 tree; on a v2-only host /sys/fs/cgroup
// itself), so a "no cgroup left" check can fail on any layout.
export function cgroupMounts(): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const parts = line.split(" ");
    const sep = parts.indexOf("-");
    if (sep < 0) continue;
    const type = parts[sep + 1];
    if ((type === "cgroup" || type === "cgroup2") && parts[4]) out.push(parts[4]);
  }
  return [...new Set(out)];
}

export function cgroupDirsOf(id: string): string[] {
  return cgroupMounts()
    .map((m) => path.join(m, CGROUP_PARENT, id))
    .filter((d) => fs.existsSync(d));
}

// Polls `check` every `every` ms until it returns something truthy, for at most `ms`; returns its last value.
export function waitFor<T>(check: () => T, ms = 10_000, every = 20): T {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v || Date.now() >= deadline) return v;
    sleepSync(every);
  }
}

// Lets time pass without the event loop (for a process that does something after a delay of its own).
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// Deletes every container of the private root, then the test cgroups and the work directory.
export function cleanup(): void {
  const root = stateRoot();
  for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) tsrun(["delete", "--force", id]);
  // under each v1 hierarchy and the v2 tree of a hybrid host, or at the root of a v2-only /sys/fs/cgroup
  const parents = cgroupMounts().map((m) => path.join(m, CGROUP_PARENT));
  for (const d of parents) {
    if (!fs.existsSync(d)) continue;
    for (const sub of fs.readdirSync(d, { withFileTypes: true })) if (sub.isDirectory()) rmdirRetry(path.join(d, sub.name));
    rmdirRetry(d);
  }
  if (workDir) {
    for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
      const mp = line.split(" ")[4];
      if (mp && mp.startsWith(workDir)) spawnSync("umount", ["-l", mp]);
    }
    fs.rmSync(workDir, { recursive: true, force: true });
    workDir = undefined;
    probeBin = undefined;
  }
}

function rmdirRetry(d: string): void {
  for (let i = 0; i < 50; i++) {
    try {
      fs.rmdirSync(d);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      sleepSync(20);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// What is left of a spec-tests run (its --json names its work directory and cgroup parent): other runs, from
// other worktrees on this host, may be going on at the same time and are not looked at.
export function specTestsLeftovers(run: { workDir: string; cgroupParent: string }): string[] {
  const dirs = cgroupMounts().map((m) => path.join(m, run.cgroupParent));
  return [run.workDir, ...dirs].filter((d) => fs.existsSync(d));
}

export function nsInode(pid: number | "self", ns: string): number {
  return Number(/\[(\d+)\]/.exec(fs.readlinkSync(`/proc/${pid}/ns/${ns}`))![1]);
}
