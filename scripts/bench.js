#!/usr/bin/env node
// `npm run bench`: tsrun and runc side by side in one run, same bundle, same machine.
// Reports medians per operation and the tsrun/runc ratio, plus the RSS of a waiting init.
// runc comes from Debian (`apt-get install runc`); without it only tsrun's figures are printed.
// Usage: node scripts/bench.js [--runs N]
"use strict";
const { spawnSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 15;
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

function main() {
  if (process.getuid() !== 0) {
    console.error("bench starts real containers: run it as root");
    process.exit(1);
  }
  const b = makeBundle(["true", "sleep"]);
  const runc = which("runc");
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
}

try {
  main();
} finally {
  // the containers' cgroups were removed by delete; their parent is ours to remove
  for (const c of fs.existsSync("/sys/fs/cgroup") ? fs.readdirSync("/sys/fs/cgroup") : []) {
    const d = `/sys/fs/cgroup/${c}/${cgParent}`;
    try {
      for (const sub of fs.readdirSync(d)) fs.rmdirSync(path.join(d, sub));
      fs.rmdirSync(d);
    } catch {
      // not there
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
}
