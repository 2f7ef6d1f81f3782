#!/usr/bin/env node
// `node scripts/bench-shim.js [--runs N]` (after `npm run build`, as root, with containerd, ctr and umoci):
// `ctr run --rm /bin/true` through runc's shim with runc, through runc's shim with tsrun, and through tsrun's
// own shim (one shim per container, and TSRUN_SHIM_SHARED=1: one shim for all) — medians and ratios to
// runc, the setups timed in turn, run after run — and the resident memory of the shims with 1 and 10 running
// containers. Each engine is a private containerd (engines/engines.ts), removed at the end.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { spawnSync } = require("child_process");
const { buildImage, Containerd, TSRUN, unmountUnder } = require("../dist/engines/engines.js");

const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 10;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const work = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-bench-shim-"));
const runc = spawnSync("sh", ["-c", "command -v runc"], { encoding: "utf8" }).stdout.trim();

const engines = [];
function engine(name, runtime, shim, shared) {
  if (shared) process.env.TSRUN_SHIM_SHARED = "1";
  else delete process.env.TSRUN_SHIM_SHARED;
  const e = new Containerd(path.join(work, name), runtime, image, shim);
  delete process.env.TSRUN_SHIM_SHARED;
  engines.push(e);
  return e;
}

let image;
const rows = [];
try {
  image = buildImage(work);
  const setups = [
    ...(runc ? [["runc shim + runc", runc, false, false]] : []),
    ["runc shim + tsrun", TSRUN, false, false],
    ["tsrun shim", TSRUN, true, false],
    ["tsrun shim (shared)", TSRUN, true, true],
  ];
  let seq = 0;
  const es = setups.map(([name, runtime, shim, shared]) => engine(name.replace(/[^a-z]+/g, "-"), runtime, shim, shared));
  for (const e of es) e.timeRun(`warm${seq++}`); // (a shared shim starts here)
  // round-robin: each round times every setup once, so that a change of load (the machine is shared)
  // falls on all of them alike
  const times = es.map(() => []);
  for (let i = 0; i < runs; i++) es.forEach((e, k) => times[k].push(e.timeRun(`b${seq++}`)));
  es.forEach((e, k) => {
    const rss = (n) => {
      const names = [];
      for (let i = 0; i < n; i++) {
        const c = `r${seq++}`;
        e.runDetached(c, ["/bin/sleep", "300"]);
        names.push(c);
      }
      const shims = e.shimRss();
      for (const c of names) e.remove(c);
      return { count: shims.length, kb: shims.reduce((a, s) => a + s.rssKb, 0) };
    };
    rows.push({ name: setups[k][0], ms: median(times[k]), rss1: rss(1), rss10: rss(10) });
  });
  const base = rows.find((r) => r.name === "runc shim + runc")?.ms;
  console.log(`ctr run --rm /bin/true, median of ${runs} (load ${os.loadavg()[0].toFixed(1)}):`);
  for (const r of rows) {
    const ratio = base ? ` ${(r.ms / base).toFixed(2)}x` : "";
    console.log(`  ${r.name.padEnd(22)} ${r.ms.toFixed(0).padStart(6)} ms${ratio}   shim RSS: 1 container ${r.rss1.kb} kB (${r.rss1.count} shim), 10 containers ${r.rss10.kb} kB (${r.rss10.count} shims)`);
  }
} finally {
  for (const e of engines) {
    try {
      e.close();
    } catch (err) {
      console.error(`closing: ${String(err)}`);
    }
  }
  unmountUnder(work);
  fs.rmSync(work, { recursive: true, force: true });
}
