// `npm run spec-tests -- --runtime PATH …`: runs the conformance cases against each runtime, prints TAP and a
// closing count line per runtime, and writes the matrix. Exit status 1 when the first runtime fails a MUST case.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ALL_CASES } from "./cases";
import { KNOWN_FAILURES } from "./known-failures";
import { filterSelected, levelSelected, parseArgs, USAGE, UsageError, type Options } from "./harness/args";
import type { Case, CaseResult, Env, Features, RuntimeInfo } from "./harness/case";
import { firstLine } from "./harness/check";
import type { RunEnv } from "./harness/context";
import { runCase } from "./harness/executor";
import { cgroupDirs, cgroupHierarchies, hostFacts, mountsUnder, removeCgroupTree } from "./harness/host";
import { matrixDocument, resultsJson, TapWriter, tapPlan, type MatrixInput, type RuntimeReport } from "./harness/report";
import { ALL_RULES, checkCoverage } from "./rules";
import { Runtime, parseRuntimeArg } from "./harness/runtime";

const REPO = path.resolve(__dirname, "..", "..");

async function main(argv: string[]): Promise<number> {
  let opts: Options;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`spec-tests: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    throw e;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const coverage = checkCoverage(ALL_CASES);
  if (coverage.length > 0) {
    process.stderr.write(`spec-tests: the rule table is inconsistent:\n${coverage.map((p) => `  ${p}`).join("\n")}\n`);
    return 2;
  }
  const cases = ALL_CASES.filter((c) => levelSelected(c.level, opts.level) && filterSelected(c.id, opts.filters));
  if (opts.list) {
    for (const c of cases) process.stdout.write(`${c.id}\t${c.level}\t${c.spec}\t${c.title}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write("spec-tests: run as root (containers are created)\n");
    return 2;
  }
  if (cases.length === 0) {
    process.stderr.write("spec-tests: no case matches the filters\n");
    return 2;
  }
  const runtimes = opts.runtimes.map((r) => parseRuntimeArg(r, process.cwd()));
  const names = new Set<string>();
  for (const r of runtimes) {
    if (names.has(r.name)) {
      process.stderr.write(`spec-tests: two runtimes are named ${r.name}; name them: --runtime NAME=PATH\n`);
      return 2;
    }
    names.add(r.name);
  }

  const run = prepareRun(opts.keepFiles);
  const stop = () => {
    finishRun(run);
    process.exit(130);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // A bug in a case must not leave the run's cgroups and files behind.
  const crash = (e: unknown) => {
    process.stderr.write(`spec-tests: ${(e as Error).stack ?? String(e)}\n`);
    finishRun(run);
    process.exit(2);
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
  const reports: RuntimeReport[] = [];
  let exitCode = 0;
  try {
    const write = (line: string) => process.stdout.write(`${line}\n`);
    for (const [i, r] of runtimes.entries()) {
      const rt = new Runtime(r.name, r.command, path.join(run.workDir, r.name, "root"));
      fs.mkdirSync(rt.root, { recursive: true, mode: 0o711 });
      const info = await runtimeInfo(rt, run.workDir);
      const env: Env = { host: hostFacts(), runtime: info, cgroupParent: run.cgroupParent };
      const known = KNOWN_FAILURES[r.name] ?? {};
      const tap = new TapWriter(write, i + 1);
      tap.begin(r.name, cases.length);
      if (info.featuresError) tap.diagnostic(`features: ${info.featuresError}`);
      const results = await runAll(cases, opts.jobs, (c, seq) => runCase(c, rt, env, run, seq), (c, res, diagnostics) => {
        tap.result(c, res, known[c.id]);
        for (const d of diagnostics) tap.diagnostic(`cleanup of ${c.id}: ${d}`);
      });
      const mustFailed = results.filter((x) => x.status === "fail" && x.level === "MUST" && !(opts.allowKnown && known[x.id] !== undefined));
      const knownPassed = opts.allowKnown ? results.filter((x) => x.status !== "fail" && known[x.id] !== undefined && x.status === "pass") : [];
      tap.end(r.name, results, mustFailed.length > 0);
      if (i === 0 && (mustFailed.length > 0 || knownPassed.length > 0)) {
        exitCode = 1;
        for (const k of knownPassed) process.stderr.write(`spec-tests: ${k.id} is listed as a known failure of ${r.name} but passes: remove it from spec-tests/known-failures.ts\n`);
      }
      reports.push({ name: r.name, command: r.command, version: runtimeVersion(r.command), results, known });
    }
    write(tapPlan(runtimes.length));
  } finally {
    finishRun(run);
  }
  const matrix: MatrixInput = {
    command: `npm run spec-tests -- ${argv.map(shellQuote).join(" ")}`,
    generated: new Date().toISOString().slice(0, 10),
    host: hostLine(),
    cases,
    runtimes: reports,
  };
  if (opts.out) fs.writeFileSync(opts.out, matrixDocument(matrix, ALL_RULES.length));
  if (opts.json) fs.writeFileSync(opts.json, resultsJson(matrix));
  return exitCode;
}

// Runs cases `jobs` at a time and reports results in case order as soon as they are known.
async function runAll(
  cases: readonly Case[],
  jobs: number,
  one: (c: Case, seq: number) => Promise<{ result: CaseResult; diagnostics: string[] }>,
  report: (c: Case, r: CaseResult, diagnostics: string[]) => void,
): Promise<CaseResult[]> {
  const done: ({ result: CaseResult; diagnostics: string[] } | undefined)[] = cases.map(() => undefined);
  let next = 0;
  let reported = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      done[i] = await one(cases[i]!, i + 1);
      while (reported < cases.length && done[reported]) {
        const d = done[reported]!;
        report(cases[reported]!, d.result, d.diagnostics);
        reported++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, cases.length) }, worker));
  return done.map((d) => d!.result);
}

function prepareRun(keepFiles: boolean): RunEnv {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "spec-tests-"));
  fs.chmodSync(workDir, 0o755); // user-namespaced containers reach their bundles and the hook probe through it
  const hostProbe = path.join(workDir, "probe");
  execFileSync("cc", ["-static", "-O2", "-o", hostProbe, path.join(REPO, "spec-tests", "probe", "probe.c")], { stdio: ["ignore", "ignore", "inherit"] });
  const tag = `${process.pid.toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`;
  const cgroupParent = `/spec-tests-${tag}`;
  makeCgroupParent(cgroupParent);
  return { workDir, hostProbe, cgroupParent, tag, keepFiles };
}

// The run's parent cgroup in every hierarchy. A v1 cpuset cgroup starts with no CPUs and memory nodes: it gets
// its parent's, so that the containers' cgroups under it can inherit them.
function makeCgroupParent(cgroupParent: string): void {
  for (const h of cgroupHierarchies()) {
    const dir = path.join(h.mountPoint, cgroupParent);
    fs.mkdirSync(dir);
    if (h.version === 1 && h.controllers.includes("cpuset")) {
      for (const f of ["cpuset.cpus", "cpuset.mems"]) fs.writeFileSync(path.join(dir, f), fs.readFileSync(path.join(h.mountPoint, f), "utf8").trim());
    }
  }
}

// Removes the run's cgroup parent in every hierarchy and its work directory (after unmounting leftovers).
function finishRun(run: RunEnv): void {
  for (const d of cgroupDirs(run.cgroupParent)) {
    const problem = removeCgroupTree(d);
    if (problem) process.stderr.write(`spec-tests: cleanup: ${problem}\n`);
  }
  for (const m of mountsUnder(run.workDir).reverse()) {
    try {
      execFileSync("umount", ["-l", m], { stdio: "ignore" });
    } catch {
      // gone already
    }
  }
  if (run.keepFiles) process.stderr.write(`spec-tests: files kept in ${run.workDir}\n`);
  else {
    try {
      fs.rmSync(run.workDir, { recursive: true, force: true });
    } catch (e) {
      process.stderr.write(`spec-tests: cleanup: ${(e as Error).message}\n`);
    }
  }
}

async function runtimeInfo(rt: Runtime, workDir: string): Promise<RuntimeInfo> {
  const dir = path.join(workDir, rt.name);
  const r = await rt.invoke(["features"], { cwd: dir, stdout: path.join(dir, "features.out"), stderr: path.join(dir, "features.err"), timeoutMs: 20_000 });
  if (r.status !== 0) return { name: rt.name, featuresError: `exit ${r.status}: ${firstLine(r.stderr)}` };
  try {
    const v = JSON.parse(r.stdout) as unknown;
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return { name: rt.name, features: v as Features };
    return { name: rt.name, featuresError: "features printed JSON that is not an object" };
  } catch {
    return { name: rt.name, featuresError: `features printed no JSON: ${firstLine(r.stdout)}` };
  }
}

function runtimeVersion(command: string): string {
  try {
    return firstLine(execFileSync(command, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 }));
  } catch {
    return "unknown";
  }
}

function hostLine(): string {
  const h = hostFacts();
  const cg = h.cgroupV2Only ? "cgroup v2" : "hybrid cgroups (v1 controllers, v2 with " + (h.hugetlbV2 ? "hugetlb" : "no controller") + ")";
  return `Linux ${os.release()} ${os.arch()}, ${os.cpus().length} CPUs, ${cg}`;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`spec-tests: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(2);
  },
);
