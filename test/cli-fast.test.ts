// The fast lane (src/cli-fast.ts, dist/tsrun-fast.js): which command lines it takes, and that for those it
// answers exactly as the full commander CLI does (status, stdout, stderr, --log records), through a whole
// lifecycle and its errors.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { parseFast } from "../src/cli-fast";
import { REPO, TSRUN, cleanup, makeBundle, ok, stateRoot, tsrun, uniqueId, work } from "./helpers";

after(cleanup);

describe("parseFast", () => {
  test("takes state, start, kill, delete, pause, resume and list given plainly", () => {
    assert.deepEqual(parseFast(["--root", "/r", "state", "c1"]), { g: { logFormat: "text", rootless: "auto", root: "/r" }, verb: "state", args: ["c1"], flags: new Set(), values: new Map() });
    assert.deepEqual(parseFast(["--root=/r", "--log", "/l", "--log-format", "json", "--debug", "--systemd-cgroup", "--rootless", "false", "--criu", "x", "kill", "-a", "c1", "KILL"]), {
      g: { logFormat: "json", rootless: "false", root: "/r", log: "/l", debug: true, systemdCgroup: true },
      verb: "kill",
      args: ["c1", "KILL"],
      flags: new Set(["all"]),
      values: new Map(),
    });
    assert.deepEqual(parseFast(["delete", "c1", "--force"])?.flags, new Set(["force"]));
    assert.deepEqual(parseFast(["kill", "c1", "--all"])?.args, ["c1"]);
    assert.deepEqual(parseFast(["start", ""])?.args, [""]); // the id's own error, as commander passes it on
    assert.equal(parseFast(["resume", "c1"])?.verb, "resume");
    assert.deepEqual(parseFast(["list", "-f", "json", "-q"])?.values, new Map([["format", "json"]]));
    assert.deepEqual(parseFast(["ls", "--format=table"])?.values, new Map([["format", "table"]]));
  });

  test("leaves everything else to the full CLI", () => {
    for (const argv of [
      [],
      ["create", "c1"],
      ["--help"],
      ["state", "--help"],
      ["-v"],
      ["state"],
      ["state", "a", "b"],
      ["kill", "c1", "KILL", "extra"],
      ["kill", "c1", "-9"],
      ["kill", "-af", "c1"],
      ["delete", "-a", "c1"],
      ["state", "--", "c1"],
      ["state", "--debug", "c1"],
      ["--root"],
      ["--root", "--debug", "state", "c1"],
      ["--root=", "state", "c1"],
      ["--log-format", "xml", "state", "c1"],
      ["--bogus", "state", "c1"],
      ["--debug=1", "state", "c1"],
      ["toString", "c1"],
      ["pause"],
      ["list", "x"],
      ["list", "--format", "xml"],
      ["list", "-fjson"],
      ["list", "-f"],
    ])
      assert.equal(parseFast(argv), undefined, JSON.stringify(argv));
  });
});

// The full CLI, whatever the command line: dist/src/cli.js's runCli, as bin/tsrun's plain entry runs it.
function fullCli(args: string[]): { status: number; stdout: string; stderr: string } {
  const code = `process.argv.splice(1, 0, "tsrun"); require(${JSON.stringify(path.join(REPO, "dist", "src", "cli.js"))}).runCli();`;
  const r = spawnSync(process.execPath, ["-e", code, "--", "--root", stateRoot(), ...args], { cwd: work(), encoding: "utf8", timeout: 30_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const normal = (s: string) => s.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "TIME");

// The same command through bin/tsrun (the fast lane) and the full CLI: the same answer, and the same records
// in a --log file. Returns bin/tsrun's.
function same(args: string[], withLog = true): { status: number; stdout: string; stderr: string } {
  const logs = [path.join(work(), `${uniqueId("fast")}.log`), path.join(work(), `${uniqueId("full")}.log`)];
  const extra = (i: number) => (withLog ? ["--log", logs[i]!, "--log-format", "json"] : []);
  const a = tsrun([...extra(0), ...args]);
  const b = fullCli([...extra(1), ...args]);
  assert.deepEqual({ ...a, stderr: normal(a.stderr) }, { ...b, stderr: normal(b.stderr) }, `tsrun ${args.join(" ")}`);
  if (withLog) {
    const read = (f: string) => (fs.existsSync(f) ? normal(fs.readFileSync(f, "utf8")) : "");
    assert.equal(read(logs[0]!), read(logs[1]!), `--log of tsrun ${args.join(" ")}`);
  }
  return a;
}

describe("the fast lane answers as the full CLI", () => {
  test("bin/tsrun runs the fast lane's verbs from dist/tsrun-fast.js", { skip: !fs.existsSync(path.join(REPO, "dist", "tsrun-fast.js")) && "no fast lane bundle" }, () => {
    const log = path.join(work(), uniqueId("trace"));
    const r = spawnSync("strace", ["-f", "-qq", "-s", "4096", "-e", "trace=execve", "-o", log, TSRUN, "--root", stateRoot(), "state", "nope"], { encoding: "utf8" });
    if (r.error) return; // no strace
    const execs = fs.readFileSync(log, "utf8").split("\n").filter((l) => /execve\(.*= 0$/.test(l));
    assert.equal(execs.length, 2, execs.join("\n"));
    assert.match(execs[1]!, /dist\/tsrun-fast\.js/);
  });

  test("errors: no such container, a bad id, a bad --rootless, a bad signal", () => {
    const id = uniqueId();
    for (const cmd of [["state", id], ["start", id], ["kill", id], ["kill", "-a", id, "9"], ["delete", id], ["pause", id], ["resume", id]]) assert.equal(same(cmd).status, 1);
    assert.equal(same(["delete", "--force", id]).status, 0);
    assert.match(same(["state", "a/b"]).stderr, /invalid container ID format/);
    assert.match(same(["start", ".."]).stderr, /invalid container ID format/);
    assert.match(same(["--rootless", "maybe", "state", id]).stderr, /--rootless: invalid value "maybe"/);
    assert.match(same(["--rootless", "maybe", "start", "a/b"]).stderr, /invalid container ID format/); // start checks the id first
  });

  test("a whole lifecycle: create, state, start, kill, pause and resume refused, list, delete", () => {
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["create", "--bundle", b.dir, b.id]));
    const created = same(["state", b.id], false);
    assert.equal((JSON.parse(created.stdout) as { status: string }).status, "created");
    assert.match(same(["kill", b.id, "NOSUCHSIGNAL"]).stderr, /NOSUCHSIGNAL/);
    ok(tsrun(["start", b.id]));
    assert.equal((JSON.parse(same(["state", b.id], false).stdout) as { status: string }).status, "running");
    assert.match(same(["start", b.id]).stderr, /cannot start an already running container/);
    assert.equal(same(["kill", b.id, "0"]).status, 0);
    assert.match(same(["resume", b.id]).stderr, /container not paused/);
    assert.match(same(["list"], false).stdout, new RegExp(`${b.id}.*running`));
    assert.equal((JSON.parse(same(["list", "--format", "json"]).stdout) as { id: string }[]).filter((c) => c.id === b.id).length, 1);
    assert.match(same(["ls", "-q"]).stdout, new RegExp(`^${b.id}$`, "m"));
    assert.match(same(["delete", b.id]).stderr, /cannot delete container .* that is not stopped: running/);
    ok(tsrun(["kill", b.id, "KILL"]));
    for (let i = 0; i < 100 && !tsrun(["state", b.id]).stdout.includes('"stopped"'); i++) spawnSync("sleep", ["0.05"]);
    assert.equal((JSON.parse(same(["state", b.id], false).stdout) as { status: string }).status, "stopped");
    assert.match(same(["kill", b.id]).stderr, /container not running/);
    assert.match(same(["pause", b.id]).stderr, /container not running/);
    ok(tsrun(["--debug", "delete", b.id]));
    assert.match(same(["state", b.id]).stderr, /does not exist/);
  });
});
