// bin/tsrun: nothing but node is executed, and a snapshot node would refuse never breaks a command (the plain
// entry runs instead, decided before any JavaScript of the command runs, and --debug says why).
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { after, before, describe, it } from "node:test";
import { TSRUN } from "./helpers";

const REPO = path.resolve(path.dirname(TSRUN), "..");
const hasStrace = spawnSync("strace", ["-V"]).status === 0;
let tmp = "";

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-bin-"));
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

interface Traced {
  status: number | null;
  stderr: string;
  execs: string[][]; // the argv of each execve after the first (the script's own)
}

// Runs ENTRY ARGS under strace -f -e trace=execve and returns the programs it executed.
function traced(entry: string, args: string[], env: NodeJS.ProcessEnv = process.env): Traced {
  const log = path.join(tmp, `strace-${Math.random().toString(36).slice(2)}`);
  const r = spawnSync("strace", ["-f", "-qq", "-s", "4096", "-e", "trace=execve", "-o", log, entry, ...args], { env, encoding: "utf8", timeout: 30_000 });
  const execs: string[][] = [];
  for (const line of fs.readFileSync(log, "utf8").split("\n")) {
    const m = /execve\("[^"]*", \[(.*)\], /.exec(line);
    if (m && !/= -1 /.test(line)) execs.push(JSON.parse(`[${m[1]}]`) as string[]);
  }
  fs.rmSync(log, { force: true });
  return { status: r.status, stderr: r.stderr, execs: execs.slice(1) };
}

// A copy of the package whose dist/ is the real one except for a stamp we write.
function fakePackage(stamp: (real: string) => string): string {
  const pkg = fs.mkdtempSync(path.join(tmp, "pkg-"));
  fs.mkdirSync(path.join(pkg, "bin"));
  fs.mkdirSync(path.join(pkg, "dist"));
  fs.copyFileSync(TSRUN, path.join(pkg, "bin", "tsrun"));
  fs.chmodSync(path.join(pkg, "bin", "tsrun"), 0o755);
  // dist/src copied: node resolves a module's symlinks, and the plain entry finds the stamp from its own path
  fs.cpSync(path.join(REPO, "dist", "src"), path.join(pkg, "dist", "src"), { recursive: true });
  for (const f of ["tsrun.blob", "commit.txt"]) fs.symlinkSync(path.join(REPO, "dist", f), path.join(pkg, "dist", f));
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(pkg, "node_modules"));
  fs.symlinkSync(path.join(REPO, "build"), path.join(pkg, "build"));
  fs.writeFileSync(path.join(pkg, "dist", "tsrun.blob.node"), stamp(fs.readFileSync(path.join(REPO, "dist", "tsrun.blob.node"), "utf8")));
  return pkg;
}

const haveBlob = fs.existsSync(path.join(REPO, "dist", "tsrun.blob.node"));

// NODE_EXTRA_CA_CERTS makes node parse a CA bundle at start-up (tens of ms): tsrun and the shim launcher start
// node without it. A bundle that cannot be read makes node warn on stderr, so the warning shows whether it
// was read.
describe("node starts without NODE_EXTRA_CA_CERTS", () => {
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: "/nonexistent/ca.pem" };
  it("bin/tsrun, fast lane, snapshot and commander entries", () => {
    for (const args of [["state", "x"], ["create", "-b", path.join(tmp, "none"), "x"], ["ps", "x"]]) {
      const r = spawnSync(TSRUN, ["--root", tmp, ...args], { encoding: "utf8", env });
      assert.strictEqual(r.status, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /extra certs/, args.join(" "));
    }
  });
  it("the containerd shim launcher, when it executes node", () => {
    const r = spawnSync(path.join(REPO, "bin", "containerd-shim-tsrun-v2"), ["-id", "x", "nosuchaction"], { encoding: "utf8", env, cwd: tmp });
    assert.strictEqual(r.status, 1, r.stderr);
    assert.match(r.stderr, /unknown action/);
    assert.doesNotMatch(r.stderr, /extra certs/);
  });
});

describe("bin/tsrun", { skip: !hasStrace && "strace is not installed" }, () => {
  it("`tsrun state x` executes node and nothing else", () => {
    const t = traced(TSRUN, ["--root", tmp, "state", "x"]);
    assert.strictEqual(t.status, 1, t.stderr);
    assert.match(t.stderr, /container "x" does not exist/);
    assert.deepStrictEqual(t.execs.map((a) => path.basename(a[0]!)), ["node"]);
  });

  it("create starts from the snapshot when the stamp matches, still executing only node", { skip: !haveBlob && "no snapshot built" }, () => {
    const t = traced(TSRUN, ["--root", tmp, "--debug", "create", "-b", path.join(tmp, "none"), "x"]);
    assert.strictEqual(t.status, 1, t.stderr);
    assert.deepStrictEqual(t.execs.length, 1);
    assert.ok(t.execs[0]!.includes("--snapshot-blob"), JSON.stringify(t.execs));
    assert.doesNotMatch(t.stderr, /snapshot not used/);
  });

  it("through npm's node_modules/.bin symlink: still only node", () => {
    const nm = path.join(tmp, "proj", "node_modules");
    fs.mkdirSync(path.join(nm, ".bin"), { recursive: true });
    fs.symlinkSync(REPO, path.join(nm, "tsrun"));
    fs.symlinkSync("../tsrun/bin/tsrun", path.join(nm, ".bin", "tsrun"));
    const t = traced(path.join(nm, ".bin", "tsrun"), ["--root", tmp, "state", "x"]);
    assert.match(t.stderr, /container "x" does not exist/);
    assert.deepStrictEqual(t.execs.map((a) => path.basename(a[0]!)), ["node"]);
  });

  it("a stamp from another boot: the plain entry runs the command once, checks node's tag, and the next create uses the blob", { skip: !haveBlob && "no snapshot built" }, () => {
    const pkg = fakePackage((real) => real.replace(/\n[^\n]*\n/, "\n00000000-0000-0000-0000-000000000000\n"));
    const entry = path.join(pkg, "bin", "tsrun");
    const t = traced(entry, ["--root", tmp, "--debug", "create", "-b", path.join(tmp, "none"), "x"]);
    assert.strictEqual(t.status, 1, t.stderr); // the command's own error, not node's 14
    assert.match(t.stderr, /bundle .* does not exist/);
    assert.strictEqual(t.stderr.match(/startup snapshot not used: not checked on this boot yet/g)?.length, 1, t.stderr);
    assert.match(t.stderr, /startup snapshot: this node loads it, used from the next command on/);
    assert.strictEqual(t.execs.length, 1, JSON.stringify(t.execs));
    assert.ok(!t.execs[0]!.includes("--snapshot-blob"));
    assert.strictEqual(fs.readFileSync(path.join(pkg, "dist", "tsrun.blob.node"), "utf8"), fs.readFileSync(path.join(REPO, "dist", "tsrun.blob.node"), "utf8"));
    const again = traced(entry, ["--root", tmp, "--debug", "create", "-b", path.join(tmp, "none"), "x"]);
    assert.ok(again.execs[0]!.includes("--snapshot-blob"), JSON.stringify(again.execs));
    assert.doesNotMatch(again.stderr, /snapshot not used/);
  });

  it("a blob another CPU or node made (its V8 tag is not this node's) is never handed to node", { skip: !haveBlob && "no snapshot built" }, () => {
    const pkg = fakePackage((real) => real.replace(/\n[^\n]*\n[^\n]*\n$/, "\nanother-boot\nnode v20.20.2 v8-tag 511c8947\n"));
    const entry = path.join(pkg, "bin", "tsrun");
    for (let i = 0; i < 2; i++) {
      const t = traced(entry, ["--root", tmp, "--debug", "run", "-b", path.join(tmp, "none"), "x"]);
      assert.strictEqual(t.status, 1, t.stderr);
      assert.match(t.stderr, /bundle .* does not exist/);
      assert.match(t.stderr, /startup snapshot stays unused: made for node v20\.20\.2 v8-tag 511c8947, this node is node v\S+ v8-tag [0-9a-f]{8}: npm run build remakes it/);
      assert.ok(!t.execs[0]!.includes("--snapshot-blob"));
      assert.strictEqual(t.execs.length, 1);
    }
    assert.match(fs.readFileSync(path.join(pkg, "dist", "tsrun.blob.node"), "utf8"), /another-boot/);
  });

  it("a stamp for another node binary, or NODE_OPTIONS, also selects the plain entry", { skip: !haveBlob && "no snapshot built" }, () => {
    const pkg = fakePackage((real) => real.replace(/^[^\n]*/, "/bin/sh"));
    const t = traced(path.join(pkg, "bin", "tsrun"), ["--root", tmp, "--debug", "exec", "x", "true"]);
    assert.match(t.stderr, /startup snapshot not used: made by another node binary \(\/bin\/sh\)/);
    assert.match(t.stderr, /container "x" does not exist/);
    assert.ok(!t.execs[0]!.includes("--snapshot-blob"));
    const n = traced(TSRUN, ["--root", tmp, "--debug", "exec", "x", "true"], { ...process.env, NODE_OPTIONS: "--max-old-space-size=200" });
    assert.match(n.stderr, /startup snapshot not used: NODE_OPTIONS is set/);
    assert.match(n.stderr, /container "x" does not exist/);
    assert.notStrictEqual(n.status, 14);
  });

  it("without --debug the fallback is silent", { skip: !haveBlob && "no snapshot built" }, () => {
    const r = spawnSync(TSRUN, ["--root", tmp, "exec", "x", "true"], { env: { ...process.env, NODE_OPTIONS: "--max-old-space-size=200" }, encoding: "utf8" });
    assert.strictEqual(r.stderr.trim(), 'exec failed: container "x" does not exist');
  });
});
