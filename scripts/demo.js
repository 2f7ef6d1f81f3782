#!/usr/bin/env node
// `npm run demo`: builds a bundle from host binaries (no downloads) and runs a container from it.
"use strict";
const { execFileSync, spawnSync } = require("child_process");
const fs = require("fs");
const path = require("path");

if (process.getuid() !== 0) {
  console.error("the demo starts a real container: run it as root");
  process.exit(1);
}
const dir = path.join(__dirname, "..", "demo-bundle");
fs.rmSync(dir, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(__dirname, "mkbundle.js"), dir], { stdio: ["ignore", "ignore", "inherit"] });
const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
config.process.terminal = false;
config.process.args = ["sh", "-c", 'echo "hello from $(hostname), pid $$ in its own namespaces:"; id; ls /; ps -o pid,comm 2>/dev/null || true'];
config.hostname = "tsrun-demo";
config.linux.cgroupsPath = "/tsrun-demo";
fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config, null, "\t"));
const id = `demo-${process.pid}`;
const r = spawnSync(path.join(__dirname, "..", "bin", "tsrun"), ["run", "--bundle", dir, id], { stdio: "inherit" });
fs.rmSync(dir, { recursive: true, force: true });
process.exit(r.status === null ? 1 : r.status);
