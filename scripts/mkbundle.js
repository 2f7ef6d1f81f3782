#!/usr/bin/env node
// Makes an OCI bundle without downloading anything: a rootfs holding copies of a few host binaries and the
// shared libraries they need (found with ldd), and runc's default config.json from `tsrun spec`.
// Usage: node scripts/mkbundle.js DIR [binary ...]   (default binaries: sh ls cat echo hostname id ps uname)
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

function which(name) {
  if (name.includes("/")) return name;
  for (const dir of (process.env.PATH || "/usr/bin:/bin").split(":")) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new Error(`mkbundle: ${name} not found on PATH`);
}

function libsOf(bin) {
  let out = "";
  try {
    out = execFileSync("ldd", [bin], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return []; // static
  }
  const libs = [];
  for (const line of out.split("\n")) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

function copyInto(rootfs, file) {
  const real = fs.realpathSync(file);
  const dest = path.join(rootfs, file);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  if (!fs.existsSync(dest)) fs.copyFileSync(real, dest);
  fs.chmodSync(dest, fs.statSync(real).mode & 0o7777);
}

const DEFAULT_BINARIES = ["sh", "ls", "cat", "echo", "hostname", "id", "ps", "uname", "sleep"];

function makeBundle(target, bins = DEFAULT_BINARIES) {
  const dir = path.resolve(target);
  const rootfs = path.join(dir, "rootfs");
  fs.mkdirSync(rootfs, { recursive: true });
  for (const d of ["bin", "proc", "sys", "dev", "tmp", "etc", "root"]) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  for (const name of bins) {
    const bin = which(name);
    copyInto(rootfs, bin);
    const base = path.join(rootfs, "bin", path.basename(bin));
    if (!fs.existsSync(base)) fs.copyFileSync(path.join(rootfs, bin), base);
    fs.chmodSync(base, 0o755);
    for (const lib of libsOf(bin)) copyInto(rootfs, lib);
  }
  fs.writeFileSync(path.join(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n");
  fs.writeFileSync(path.join(rootfs, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
  const config = path.join(dir, "config.json");
  if (!fs.existsSync(config)) execFileSync(path.join(__dirname, "..", "bin", "tsrun"), ["spec", "--bundle", dir], { stdio: "inherit" });
  return dir;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const dir = makeBundle(args[0] || "demo-bundle", args.length > 1 ? args.slice(1) : DEFAULT_BINARIES);
  process.stdout.write(`${dir}\n`);
}
module.exports = { makeBundle };
