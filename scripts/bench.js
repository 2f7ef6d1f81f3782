#!/usr/bin/env node
// `npm run bench`: tsrun and runc side by side in one run, same bundle, same machine.
// Reports medians per operation and the tsrun/runc ratio, plus the RSS of a waiting init.
// runc comes from Debian (`apt-get install runc`); without it only tsrun's figures are printed.
// Also: the seccomp compiler on Docker's default profile (cold and from the cache), and the cost of a cheap
// syscall (the static probe's getppid-loop) in a container with that profile and without, tsrun and runc.
// And each CLI verb's CPU time (user+sys of its whole process tree, as the shell's `times` reports what it
// waited for) against `node -e 0` in the same rounds, with the targets of issue 15: state/start/kill/delete
// <= 1.15x node's floor, create and run <= the floor + 40 ms.
// Usage: node scripts/bench.js [--runs N] [--loops N] [--cli-only]
"use strict";
const { spawnSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const arg = (name, def) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) || def : def);
const runs = arg("--runs", 15);
const loops = arg("--loops", 2000000);
const TSRUN = path.join(__dirname, "..", "bin", "tsrun");

function which(name) {
  for (const dir of (process.env.PATH || "").split(":")) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-bench-"));
const cgParent = `tsrun-bench-${process.pid}`;

function makeBundle(bins) {
  const dir = require("./mkbundle").makeBundle(path.join(work, "bundle"), bins);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  cfg.process.terminal = false;
  cfg.process.args = ["true"];
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(cfg));
  return { dir, cfg };
}

function setCgroup(dir, cfg, id) {
  cfg.linux.cgroupsPath = `/${cgParent}/${id}`;
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(cfg));
}

// stderr to a file: a created container's init keeps its stdio, and a pipe would never reach EOF
function time(bin, args) {
  const errFile = path.join(work, "stderr");
  const err = fs.openSync(errFile, "w");
  const t0 = process.hrtime.bigint();
  const r = spawnSync(bin, args, { stdio: ["ignore", "ignore", err] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  fs.closeSync(err);
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(" ")}: exit ${r.status}: ${fs.readFileSync(errFile, "utf8")}`);
  return ms;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}

function measure(name, bin, b) {
  const root = path.join(work, `root-${name}`);
  const t = { run: [], create: [], start: [], state: [], delete: [], rss: [] };
  for (let i = 0; i < runs; i++) {
    const id = `${name}-${i}`;
    setCgroup(b.dir, b.cfg, id);
    t.run.push(time(bin, ["--root", root, "run", "--bundle", b.dir, id]));
    const id2 = `${name}-c${i}`;
    setCgroup(b.dir, b.cfg, id2);
    const pidFile = path.join(work, `${id2}.pid`);
    t.create.push(time(bin, ["--root", root, "create", "--bundle", b.dir, "--pid-file", pidFile, id2]));
    t.rss.push(rssKb(Number(fs.readFileSync(pidFile, "utf8"))));
    t.state.push(time(bin, ["--root", root, "state", id2]));
    t.start.push(time(bin, ["--root", root, "start", id2]));
    // /bin/true exits at once; wait for it before delete so delete measures the same work for both
    for (let k = 0; k < 200; k++) {
      const s = spawnSync(bin, ["--root", root, "state", id2], { encoding: "utf8" });
      if (/"status": "stopped"/.test(s.stdout)) break;
    }
    t.delete.push(time(bin, ["--root", root, "delete", id2]));
  }
  return t;
}

// exec latency (a running container, /bin/true exec'd into it), and the RSS of a waiting tsrun shim.
function measureExec(name, bin, b) {
  const root = path.join(work, `root-${name}`);
  const id = `${name}-exec`;
  const cfg = JSON.parse(JSON.stringify(b.cfg));
  cfg.process.args = ["sleep", "600"];
  cfg.linux.cgroupsPath = `/${cgParent}/${id}`;
  cfg.root.path = path.join(b.dir, "rootfs");
  const dir = path.join(work, `bundle-${name}-exec`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(cfg));
  time(bin, ["--root", root, "run", "--detach", "--bundle", dir, id]);
  const t = [];
  try {
    for (let i = 0; i < runs; i++) t.push(time(bin, ["--root", root, "exec", id, "true"]));
    let shimRss;
    if (name === "tsrun") {
      const rec = JSON.parse(fs.readFileSync(path.join(root, id, "state.json"), "utf8"));
      shimRss = rssKb(rec.shimPid);
    }
    return { exec: t, shimRss };
  } finally {
    time(bin, ["--root", root, "delete", "--force", id]);
  }
}

// ---- the CLI's CPU time against node's floor

// CPU ms (user+sys) of `bin args` and every process it waited for; bash's `times` prints the children's
// line from getrusage(RUSAGE_CHILDREN), to the millisecond.
function cpu(bin, args, ok = [0], env = process.env) {
  const errFile = path.join(work, "stderr");
  const script = '"$@" </dev/null >/dev/null 2>"$0"; s=$?; times; exit $s';
  const r = spawnSync("bash", ["-c", script, errFile, bin, ...args], { encoding: "utf8", env });
  if (!ok.includes(r.status)) throw new Error(`${path.basename(bin)} ${args.join(" ")}: exit ${r.status}: ${fs.readFileSync(errFile, "utf8")}`);
  const lines = r.stdout.trim().split("\n");
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(lines[lines.length - 1]);
  if (!m) throw new Error(`times: ${r.stdout}`);
  return (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000;
}

// The floor is node as bin/tsrun starts it: without NODE_EXTRA_CA_CERTS (bin/tsrun unsets it; a CA bundle
// parsed at start-up would raise the floor by tens of ms and flatter every ratio).
const floorEnv = { ...process.env };
delete floorEnv.NODE_EXTRA_CA_CERTS;

// A startup snapshot that holds nothing: what any `node --snapshot-blob` start costs before tsrun's code.
function emptyBlob() {
  const js = path.join(work, "empty-snapshot.js");
  const blob = path.join(work, "empty.blob");
  fs.writeFileSync(js, "require('v8').startupSnapshot.setDeserializeMainFunction(() => {});\n");
  const r = spawnSync(process.execPath, ["--snapshot-blob", blob, "--build-snapshot", js], { cwd: work, stdio: "ignore", env: { ...process.env, NODE_OPTIONS: "" } });
  return r.status === 0 ? blob : undefined;
}

// Rounds of each verb through bin/tsrun (and runc's, when there is runc), each right after a `node -e 0`: the
// machine's load (other users, a VM's stolen time is counted as CPU time here) falls on a verb and its floor
// alike, and each verb is judged by the median of its own ratios (and differences) to the floor beside it.
// create/state/start/kill/delete act on a container running sleep; run runs /bin/true in the foreground.
function measureCli(b, runc) {
  const sleeper = path.join(work, "bundle-cli-sleep");
  const cfg = JSON.parse(JSON.stringify(b.cfg));
  cfg.process.args = ["sleep", "600"];
  cfg.root.path = path.join(b.dir, "rootfs");
  fs.mkdirSync(sleeper, { recursive: true });
  const blob = emptyBlob();
  const bins = { tsrun: TSRUN, ...(runc ? { runc } : {}) };
  const t = { floor: [], snapshot: [] };
  for (const name of Object.keys(bins)) t[name] = {};
  // one sample: [cpu of the command, cpu of node -e 0 just before]
  const sample = (into, verb, f) => {
    const floor = cpu(process.execPath, ["-e", "0"], [0], floorEnv);
    t.floor.push(floor);
    (into[verb] ??= []).push([f(), floor]);
  };
  for (let i = 0; i < runs; i++) {
    if (blob) sample(t, "snapshot", () => cpu(process.execPath, ["--snapshot-blob", blob], [0], floorEnv));
    // node as this environment starts it, for comparison, when it sets NODE_EXTRA_CA_CERTS
    if (process.env.NODE_EXTRA_CA_CERTS) sample(t, "caFloor", () => cpu(process.execPath, ["-e", "0"]));
    for (const [name, bin] of Object.entries(bins)) {
      const root = path.join(work, `root-cli-${name}`);
      const id = `cli-${name}-${i}`;
      cfg.linux.cgroupsPath = `/${cgParent}/${id}`;
      fs.writeFileSync(path.join(sleeper, "config.json"), JSON.stringify(cfg));
      const r = t[name];
      sample(r, "create", () => cpu(bin, ["--root", root, "create", "--bundle", sleeper, id]));
      sample(r, "state", () => cpu(bin, ["--root", root, "state", id]));
      sample(r, "start", () => cpu(bin, ["--root", root, "start", id]));
      sample(r, "kill", () => cpu(bin, ["--root", root, "kill", id, "KILL"]));
      for (let k = 0; k < 200; k++) {
        const s = spawnSync(bin, ["--root", root, "state", id], { encoding: "utf8" });
        if (/"status": "stopped"/.test(s.stdout)) break;
      }
      sample(r, "delete", () => cpu(bin, ["--root", root, "delete", id]));
      const rid = `cli-${name}-r${i}`;
      setCgroup(b.dir, b.cfg, rid);
      sample(r, "run", () => cpu(bin, ["--root", root, "run", "--bundle", b.dir, rid]));
    }
  }
  return t;
}

function printCli(t) {
  const pad = (s, n) => String(s).padEnd(n);
  const ratio = (xs) => median(xs.map(([a, f]) => a / f));
  const plus = (xs) => median(xs.map(([a, f]) => a - f));
  console.log(`\nCLI CPU time (user+sys of the process tree, ms), median of ${runs} rounds; each sample beside its own node -e 0`);
  console.log(pad("node -e 0", 14) + pad(median(t.floor).toFixed(1), 9) + "(the floor: median of all its samples)");
  if (t.caFloor) {
    const s = t.caFloor;
    console.log(pad("  + CA certs", 14) + pad(median(s.map((x) => x[0])).toFixed(1), 9) + pad(ratio(s).toFixed(2) + "x", 8) + pad("+" + plus(s).toFixed(1), 9) + "node -e 0 with this environment's NODE_EXTRA_CA_CERTS (bin/tsrun unsets it)");
  }
  if (t.snapshot) {
    const s = t.snapshot;
    console.log(pad("empty blob", 14) + pad(median(s.map((x) => x[0])).toFixed(1), 9) + pad(ratio(s).toFixed(2) + "x", 8) + pad("+" + plus(s).toFixed(1), 9) + "node --snapshot-blob of a snapshot holding nothing: what any snapshot start costs");
  }
  console.log(pad("verb", 14) + pad("tsrun", 9) + pad("ratio", 8) + pad("+floor", 9) + pad("target", 14) + pad("", 8) + (t.runc ? "runc" : ""));
  for (const verb of ["state", "start", "kill", "delete", "create", "run"]) {
    const xs = t.tsrun[verb];
    const byRatio = verb !== "create" && verb !== "run";
    const meets = byRatio ? ratio(xs) <= 1.15 : plus(xs) <= 40;
    console.log(
      pad(verb, 14) + pad(median(xs.map((x) => x[0])).toFixed(1), 9) + pad(ratio(xs).toFixed(2) + "x", 8) + pad("+" + plus(xs).toFixed(1), 9) +
        pad(byRatio ? "<= 1.15x" : "<= floor+40", 14) + pad(meets ? "meets" : "MISSES", 8) + (t.runc ? median(t.runc[verb].map((x) => x[0])).toFixed(1) : ""),
    );
  }
}

// ---- seccomp

const REPO = path.join(__dirname, "..");
const DOCKER_PROFILE = path.join(REPO, "test", "fixtures", "docker-default-seccomp.json");

function seccompCompile() {
  const { compile } = require(path.join(REPO, "dist", "src", "seccomp", "compile.js"));
  const { compileCached } = require(path.join(REPO, "dist", "src", "seccomp", "cache.js"));
  const profile = JSON.parse(fs.readFileSync(DOCKER_PROFILE, "utf8"));
  const timeOf = (f) => {
    const t0 = process.hrtime.bigint();
    const r = f();
    return { ms: Number(process.hrtime.bigint() - t0) / 1e6, r };
  };
  const first = timeOf(() => compile(profile));
  const cold = [];
  for (let i = 0; i < runs; i++) cold.push(timeOf(() => compile(profile)).ms);
  const cacheDir = path.join(work, "seccomp-cache");
  const miss = timeOf(() => compileCached(profile, cacheDir));
  const hit = [];
  for (let i = 0; i < runs; i++) hit.push(timeOf(() => compileCached(profile, cacheDir)).ms);
  return { insns: first.r.program.length / 8, first: first.ms, cold: median(cold), miss: miss.ms, hit: median(hit) };
}

// A rootfs with only the static probe; the config with and without Docker's profile.
function probeBundle() {
  const dir = path.join(work, "probe-bundle");
  fs.mkdirSync(path.join(dir, "rootfs"), { recursive: true });
  for (const d of ["proc", "sys", "dev", "tmp", "etc"]) fs.mkdirSync(path.join(dir, "rootfs", d));
  spawnSync("cc", ["-static", "-O2", "-o", path.join(dir, "rootfs", "probe"), path.join(REPO, "spec-tests", "probe", "probe.c")], { stdio: "inherit" });
  spawnSync(TSRUN, ["spec", "--bundle", dir], { stdio: "inherit" });
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  cfg.process.terminal = false;
  cfg.process.args = ["/probe", "getppid-loop", String(loops)];
  return { dir, cfg };
}

// ns per getppid(2) inside a container, median of a few runs.
function syscallCost(name, bin, b, profile) {
  const root = path.join(work, `root-${name}`);
  const ns = [];
  for (let i = 0; i < Math.max(3, Math.min(runs, 7)); i++) {
    const id = `${name}-sys-${profile ? "docker" : "none"}-${i}`;
    const cfg = { ...b.cfg, linux: { ...b.cfg.linux, cgroupsPath: `/${cgParent}/${id}` } };
    if (profile) cfg.linux.seccomp = profile;
    else delete cfg.linux.seccomp;
    fs.writeFileSync(path.join(b.dir, "config.json"), JSON.stringify(cfg));
    const r = spawnSync(bin, ["--root", root, "run", "--bundle", b.dir, id], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${name} run: exit ${r.status}: ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split("\n")[0]);
    ns.push(out.ns / out.n);
  }
  return median(ns);
}

function main() {
  if (process.getuid() !== 0) {
    console.error("bench starts real containers: run it as root");
    process.exit(1);
  }
  const b = makeBundle(["true", "sleep"]);
  const runc = which("runc");
  if (process.argv.includes("--cli-only")) {
    printCli(measureCli(b, runc));
    return;
  }
  const results = { tsrun: { ...measure("tsrun", TSRUN, b), ...measureExec("tsrun", TSRUN, b) } };
  if (runc) results.runc = { ...measure("runc", runc, b), ...measureExec("runc", runc, b) };
  else console.log("runc not found (apt-get install runc): tsrun figures only\n");

  const rows = ["run", "create", "start", "state", "delete", "exec"];
  const pad = (s, n) => String(s).padEnd(n);
  console.log(`tsrun vs runc, median of ${runs} runs (ms); bundle: /bin/true in a rootfs of host binaries\n`);
  console.log(pad("operation", 12) + pad("tsrun", 10) + (runc ? pad("runc", 10) + "tsrun/runc" : ""));
  for (const r of rows) {
    const a = median(results.tsrun[r]);
    const line = pad(r, 12) + pad(a.toFixed(1), 10);
    if (runc) {
      const c = median(results.runc[r]);
      console.log(line + pad(c.toFixed(1), 10) + (a / c).toFixed(2) + "x");
    } else console.log(line);
  }
  const ra = median(results.tsrun.rss);
  const rc = runc ? median(results.runc.rss) : undefined;
  console.log(pad("init RSS", 12) + pad(`${ra} kB`, 10) + (runc ? pad(`${rc} kB`, 10) + (ra / rc).toFixed(2) + "x" : ""));
  console.log(pad("shim RSS", 12) + pad(`${results.tsrun.shimRss} kB`, 10) + "(a waiting tsrun shim; target <= 2048 kB; conmon is ~1-2 MB)");

  const c = seccompCompile();
  console.log(`\nseccomp compiler, Docker's default profile (${c.insns} BPF instructions), ms`);
  console.log(pad("first compile (cold JIT)", 38) + c.first.toFixed(2));
  console.log(pad(`compile, median of ${runs}`, 38) + c.cold.toFixed(2));
  console.log(pad("compileCached, miss (compile+store)", 38) + c.miss.toFixed(2));
  console.log(pad(`compileCached, hit, median of ${runs}`, 38) + c.hit.toFixed(3));

  const pb = probeBundle();
  const docker = JSON.parse(fs.readFileSync(DOCKER_PROFILE, "utf8"));
  const cost = { tsrun: [syscallCost("tsrun", TSRUN, pb, undefined), syscallCost("tsrun", TSRUN, pb, docker)] };
  if (runc) cost.runc = [syscallCost("runc", runc, pb, undefined), syscallCost("runc", runc, pb, docker)];
  console.log(`\ngetppid(2) in a container, ns per call (median; ${loops} calls per run)`);
  console.log(pad("", 22) + pad("tsrun", 10) + (runc ? pad("runc", 10) : ""));
  const row = (label, f) => console.log(pad(label, 22) + pad(f(cost.tsrun), 10) + (runc ? pad(f(cost.runc), 10) : ""));
  row("no seccomp", (x) => x[0].toFixed(1));
  row("Docker's profile", (x) => x[1].toFixed(1));
  row("filter cost", (x) => (x[1] - x[0]).toFixed(1));

  printCli(measureCli(b, runc));
}

try {
  main();
} finally {
  // the containers' cgroups were removed by delete (runc leaves the parents it made); the parent is ours
  for (const c of fs.existsSync("/sys/fs/cgroup") ? fs.readdirSync("/sys/fs/cgroup") : []) {
    const d = `/sys/fs/cgroup/${c}/${cgParent}`;
    if (!fs.existsSync(d)) continue;
    const rm = (dir) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rm(path.join(dir, e.name));
      try {
        fs.rmdirSync(dir);
      } catch (e) {
        console.error(`bench: could not remove cgroup ${dir}: ${e.message}`);
      }
    };
    rm(d);
  }
  fs.rmSync(work, { recursive: true, force: true });
}
