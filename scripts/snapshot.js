#!/usr/bin/env node
// Builds dist/tsrun-fast.js (the fast lane bundle, below), and dist/tsrun.blob, the startup snapshot bin/tsrun
// uses for create, run and exec, and its stamp dist/tsrun.blob.node (format and meaning: src/snapshot-stamp.ts).
// The blob is loaded once here (a no-op command) before the stamp is written: a blob this node refuses gets no
// stamp, and bin/tsrun never hands it to node. If anything fails, tsrun simply runs without it (the plain entry).
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const root = path.join(__dirname, "..");
const dist = path.join(root, "dist");
const bundle = path.join(dist, "tsrun-snapshot.js");
const blob = path.join(dist, "tsrun.blob");
const stamp = path.join(dist, "tsrun.blob.node");

// Both bundles: `import * as fs from "fs"` of a Node module is bundled as `__toESM(require("fs"))`, which copies
// every property of the module into a new object (some 100 getters for fs), at every import of every
// module; read as TypeScript's `import fs = require("fs")` it is the module itself, as tsc's output has it.
const builtinImports = {
  name: "builtin-imports",
  setup(build) {
    const builtins = new Set(require("module").builtinModules);
    build.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => {
      const text = fs.readFileSync(args.path, "utf8");
      const contents = text.replace(/^import \* as (\w+) from "([\w:/]+)";$/gm, (line, name, mod) => (builtins.has(mod.replace(/^node:/, "")) ? `import ${name} = require("${mod}");` : line));
      return { contents, loader: "ts" };
    });
  },
};

// zod exports all its locales (z.locales.*, some 200 kB minified), and the namespace object tsrun uses as `z`
// keeps them all in the bundle, and so in the snapshot's heap, which node copies and deserializes at every
// create. tsrun never selects a locale (its messages are zod's English ones, the default): only en is bundled.
const zodEnglishOnly = {
  name: "zod-english-only",
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => (/[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: path.join(path.dirname(args.importer), "..", "locales", "en.js"), namespace: "zod-locales" } : undefined));
    build.onLoad({ filter: /.*/, namespace: "zod-locales" }, (args) => ({ contents: `export { default as en } from ${JSON.stringify(args.path)};\n`, resolveDir: path.dirname(args.path), loader: "js" }));
  },
};

async function main() {
  // dist/tsrun-fast.js: the fast lane (src/fast-entry.ts: state, start, kill, delete, pause, resume, list) in one
  // file. The systemd driver's D-Bus library stays a plain require (only --systemd-cgroup containers reach it).
  const fast = path.join(dist, "tsrun-fast.js");
  fs.rmSync(fast, { force: true });
  try {
    await require("esbuild").build({
      entryPoints: [path.join(root, "src", "fast-entry.ts")],
      bundle: true,
      platform: "node",
      target: "node20",
      outfile: fast,
      logLevel: "warning",
      minify: true,
      keepNames: true,
      external: ["@particle/dbus-next"],
      plugins: [builtinImports],
    });
  } catch (e) {
    fs.rmSync(fast, { force: true });
    console.error(`tsrun: no fast lane bundle (${e.message.split("\n")[0]}); the fast lane's commands will start slower`);
  }

  fs.rmSync(blob, { force: true });
  fs.rmSync(stamp, { force: true });
  try {
    const esbuild = require("esbuild");
    await esbuild.build({
      entryPoints: [path.join(root, "src", "snapshot.ts")],
      bundle: true,
      platform: "node",
      target: "node20",
      outfile: bundle,
      logLevel: "warning",
      minify: true,
      keepNames: true,
      plugins: [builtinImports, zodEnglishOnly],
    });
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // bin/tsrun never uses the blob under NODE_OPTIONS
    execFileSync(process.execPath, ["--no-warnings", "--snapshot-blob", blob, "--build-snapshot", bundle], { cwd: dist, env, stdio: ["ignore", "inherit", "inherit"] });
    // Loaded once, as bin/tsrun will (a no-op command): node must take it.
    const out = execFileSync(process.execPath, ["--snapshot-blob", blob, "--", "--version"], { cwd: dist, env, stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 }).toString();
    if (!out.startsWith("tsrun version")) throw new Error(`the snapshot does not run: ${out.split("\n")[0]}`);
    // V8's tag as a node without NODE_OPTIONS has it, as bin/tsrun runs node
    const text = execFileSync(process.execPath, ["-e", `process.stdout.write(require(${JSON.stringify(path.join(dist, "src", "snapshot-stamp.js"))}).stampText())`], { env }).toString();
    fs.writeFileSync(stamp, text);
  } catch (e) {
    fs.rmSync(blob, { force: true });
    fs.rmSync(stamp, { force: true });
    const err = e.stderr ? e.stderr.toString().trim() : "";
    console.error(`tsrun: no startup snapshot (${(err || e.message).split("\n")[0]}); create, run and exec will start slower`);
  }
}

main();
