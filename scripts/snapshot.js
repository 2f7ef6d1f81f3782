#!/usr/bin/env node
// Builds dist/tsrun.blob, the startup snapshot bin/tsrun uses for create, run and exec, and its stamp
// dist/tsrun.blob.node, which bin/tsrun reads with shell builtins before it hands the blob to node:
//   line 1: the node binary that made it (its real path; bin/tsrun checks [ node -ef this ] and that node is
//           not newer than the stamp),
//   line 2: the CPU flags of /proc/cpuinfo (the text after the first "flags"/"Features" line's colon),
//   line 3: for people: node's version and V8's cached-data tag.
// node refuses a blob whose V8 cached-data tag (V8's version, flags and detected CPU features) differs from its
// own, with status 14 before any JavaScript runs; the stamp keeps bin/tsrun from ever asking it to. The blob is
// loaded once here before the stamp is written: a blob this node refuses gets no stamp. If anything fails,
// tsrun simply runs without it (the plain entry).
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");
const v8 = require("v8");

const root = path.join(__dirname, "..");
const dist = path.join(root, "dist");
const bundle = path.join(dist, "tsrun-snapshot.js");
const blob = path.join(dist, "tsrun.blob");
const stamp = path.join(dist, "tsrun.blob.node");

// As bin/tsrun reads it: the first line starting with "flags" (x86) or "Features" (arm64) that has a colon.
function cpuFlags() {
  for (const line of fs.readFileSync("/proc/cpuinfo", "utf8").split("\n")) {
    if ((line.startsWith("flags") || line.startsWith("Features")) && line.includes(":")) return line.slice(line.indexOf(":") + 1);
  }
  return "";
}

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
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // bin/tsrun never uses the blob under NODE_OPTIONS
  execFileSync(process.execPath, ["--no-warnings", "--snapshot-blob", blob, "--build-snapshot", bundle], { cwd: dist, env, stdio: ["ignore", "inherit", "inherit"] });
  // Loaded once, as bin/tsrun will (a no-op command): node must take it.
  const out = execFileSync(process.execPath, ["--snapshot-blob", blob, "--", "--version"], { cwd: dist, env, stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 }).toString();
  if (!out.startsWith("tsrun version")) throw new Error(`the snapshot does not run: ${out.split("\n")[0]}`);
  const tag = v8.cachedDataVersionTag().toString(16).padStart(8, "0");
  fs.writeFileSync(stamp, `${fs.realpathSync(process.execPath)}\n${cpuFlags()}\nnode ${process.version} v8-tag ${tag}\n`);
} catch (e) {
  fs.rmSync(blob, { force: true });
  fs.rmSync(stamp, { force: true });
  const err = e.stderr ? e.stderr.toString().trim() : "";
  console.error(`tsrun: no startup snapshot (${(err || e.message).split("\n")[0]}); create, run and exec will start slower`);
}
