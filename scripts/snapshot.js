#!/usr/bin/env node
// Builds dist/tsrun.blob, the startup snapshot bin/tsrun uses for create and run, with a stamp of the node
// binary it was made for (a snapshot only loads into the exact node that made it). If anything fails,
// tsrun simply runs without it.
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const root = path.join(__dirname, "..");
const dist = path.join(root, "dist");
const bundle = path.join(dist, "tsrun-snapshot.js");
const blob = path.join(dist, "tsrun.blob");
const stamp = path.join(dist, "tsrun.blob.node");
fs.rmSync(blob, { force: true });
fs.rmSync(stamp, { force: true });
try {
  const esbuild = require("esbuild");
  esbuild.buildSync({
    entryPoints: [path.join(root, "src", "snapshot.ts")],
    bundle: true,
    platform: "node",
    target: "node20",
    outfile: bundle,
    logLevel: "warning",
    minify: true,
    keepNames: true,
  });
  execFileSync(process.execPath, ["--no-warnings", "--snapshot-blob", blob, "--build-snapshot", bundle], { cwd: dist, stdio: ["ignore", "inherit", "inherit"] });
  const st = fs.statSync(process.execPath);
  fs.writeFileSync(stamp, `${fs.realpathSync(process.execPath)} ${Math.floor(st.mtimeMs / 1000)} ${st.size}\n`);
} catch (e) {
  fs.rmSync(blob, { force: true });
  console.error(`tsrun: no startup snapshot (${e.message.split("\n")[0]}); create and run will start slower`);
}
