#!/usr/bin/env node
// Builds dist/containerd-shim-tsrun-v2.blob, the startup snapshot of the containerd shim's server (src/shim/containerd/
// snapshot.ts): bin/containerd-shim-tsrun-v2 starts `serve` from it. Loaded once here (`-v`) before it is kept:
// a blob this node refuses is removed. The launcher also falls back to the plain entry whenever node refuses
// the blob at run time (another node, other V8 flags), so a stale blob costs a failed start, never a failure.
// Its name says containerd-shim: the server's command line (node --snapshot-blob .../containerd-shim-tsrun-v2.blob
// -- ...) shows what it is to ps and to whoever looks for shims by name (engines/engines.ts).
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const root = path.join(__dirname, "..");
const dist = path.join(root, "dist");
const bundle = path.join(dist, "tsrun-shim-snapshot.js");
const blob = path.join(dist, "containerd-shim-tsrun-v2.blob");

fs.rmSync(blob, { force: true });
try {
  require("esbuild").buildSync({
    entryPoints: [path.join(root, "src", "shim", "containerd", "snapshot.ts")],
    bundle: true,
    platform: "node",
    target: "node20",
    outfile: bundle,
    logLevel: "warning",
    minify: true,
    keepNames: true,
  });
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  execFileSync(process.execPath, ["--no-warnings", "--snapshot-blob", blob, "--build-snapshot", bundle], { cwd: dist, env, stdio: ["ignore", "inherit", "inherit"] });
  const out = execFileSync(process.execPath, ["--snapshot-blob", blob, "--", "-v"], { cwd: dist, env, stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 }).toString();
  if (out !== "containerd-shim-tsrun-v2: tsrun\n") throw new Error(`the snapshot does not run: ${out.split("\n")[0]}`);
} catch (e) {
  fs.rmSync(blob, { force: true });
  const err = e.stderr ? e.stderr.toString().trim() : "";
  console.error(`tsrun: no startup snapshot for the containerd shim (${(err || e.message).split("\n")[0]}); its server will start slower`);
} finally {
  fs.rmSync(bundle, { force: true });
}
