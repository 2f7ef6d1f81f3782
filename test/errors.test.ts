// Every bad input: one line on stderr naming the cause, exit 1, one JSON record in --log, and nothing
// half-created left behind (no state directory, no cgroup).
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { cgroupDirsOf, cleanup, makeBundle, ok, stateRoot, tsrun, uniqueId, work } from "./helpers";

after(cleanup);

function expectFailure(args: string[], pattern: RegExp, id?: string): void {
  const log = path.join(work(), `${uniqueId("log")}.json`);
  const r = tsrun(["--log", log, "--log-format", "json", ...args]);
  assert.equal(r.status, 1, `exit status of ${args.join(" ")}: ${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  assert.match(lines[0]!, pattern);
  const records = fs.readFileSync(log, "utf8").trim().split("\n");
  assert.equal(records.length, 1, "one record in the log file");
  const rec = JSON.parse(records[0]!) as { level: string; msg: string; time: string };
  assert.equal(rec.level, "error");
  assert.equal(rec.msg, lines[0]);
  assert.match(rec.time, /^\d{4}-\d\d-\d\dT/);
  if (id) {
    assert.equal(fs.existsSync(path.join(stateRoot(), id)), false, "no state directory left");
    assert.deepEqual(cgroupDirsOf(id), [], "no cgroup left");
  }
}

describe("bad input", () => {
  test("missing bundle, missing config.json, unreadable JSON", () => {
    const id = uniqueId();
    expectFailure(["create", "--bundle", "/nonexistent/bundle", id], /bundle \/nonexistent\/bundle does not exist/, id);
    const empty = path.join(work(), "empty-bundle");
    fs.mkdirSync(empty);
    expectFailure(["create", "--bundle", empty, id], /config\.json not found/, id);
    fs.writeFileSync(path.join(empty, "config.json"), "{ not json");
    expectFailure(["create", "--bundle", empty, id], /config\.json: invalid JSON/, id);
  });

  test("invalid config: the JSON path and the reason", () => {
    const cases: [(s: Record<string, unknown>) => void, RegExp][] = [
      [(s) => ((s.process as Record<string, unknown>).args = 5), /config\.json: process\.args: /],
      [(s) => (s.hostname = 7), /config\.json: hostname: /],
      [(s) => (s.ociVersion = "2.0.0"), /ociVersion/],
      [(s) => ((s.linux as { namespaces: unknown[] }).namespaces.push({ type: "bogus" })), /linux\.namespaces\[\d+\]\.type: /],
      [(s) => ((s.process as { user: unknown }).user = { uid: -1, gid: 0 }), /process\.user\.uid/],
      [(s) => (s.mounts as unknown[]).push({ destination: "/../../etc", type: "tmpfs", source: "tmpfs" }), /escapes the container's root filesystem/],
      [(s) => ((s.linux as Record<string, unknown>).timeOffsets = { monotonic: { secs: 1 } }), /timeOffsets is set but the container has no new time namespace/],
    ];
    for (const [patch, pattern] of cases) {
      const b = makeBundle();
      const raw = JSON.parse(fs.readFileSync(path.join(b.dir, "config.json"), "utf8")) as Record<string, unknown>;
      patch(raw);
      fs.writeFileSync(path.join(b.dir, "config.json"), JSON.stringify(raw));
      expectFailure(["create", "--bundle", b.dir, b.id], pattern, b.id);
    }
  });

  test("unknown keys are tolerated", () => {
    const b = makeBundle(["exit", "0"]);
    const raw = JSON.parse(fs.readFileSync(path.join(b.dir, "config.json"), "utf8")) as Record<string, unknown>;
    raw.someFutureField = { a: 1 };
    (raw.process as Record<string, unknown>).anotherOne = true;
    fs.writeFileSync(path.join(b.dir, "config.json"), JSON.stringify(raw));
    ok(tsrun(["run", "--bundle", b.dir, b.id]));
  });

  test("invalid and duplicate ids", () => {
    const b = makeBundle(["sleep", "30"]);
    for (const id of ["a/b", "..", "has space", "x".repeat(1025)]) expectFailure(["create", "--bundle", b.dir, id], /invalid container ID format/);
    ok(tsrun(["create", "--bundle", b.dir, b.id]));
    expectFailure(["create", "--bundle", b.dir, b.id], /container with given ID already exists/);
    assert.equal((JSON.parse(ok(tsrun(["state", b.id])).stdout) as { status: string }).status, "created", "the first one is untouched");
    ok(tsrun(["delete", b.id]));
  });

  test("a container that does not exist", () => {
    const id = uniqueId();
    for (const cmd of [["state", id], ["start", id], ["kill", id], ["delete", id]]) expectFailure(cmd, /container "[^"]+" does not exist/);
    ok(tsrun(["delete", "--force", id]));
  });

  test("a process that cannot be executed fails create, as runc", () => {
    const b = makeBundle();
    b.spec.process!.args = ["/no/such/binary"];
    b.write();
    expectFailure(["create", "--bundle", b.dir, b.id], /exec: "\/no\/such\/binary": stat \/no\/such\/binary: No such file or directory/, b.id);
    b.spec.process!.args = ["nosuchcmd"];
    b.write();
    expectFailure(["create", "--bundle", b.dir, b.id], /exec: "nosuchcmd": executable file not found in \$PATH/, b.id);
  });

  test("usage errors go through the log too", () => {
    expectFailure(["create"], /missing required argument/);
    expectFailure(["kill"], /missing required argument/);
  });

  test("--systemd-cgroup is refused clearly, not ignored", () => {
    const b = makeBundle();
    expectFailure(["--systemd-cgroup", "create", "--bundle", b.dir, b.id], /systemd is not running/, b.id);
  });
});
