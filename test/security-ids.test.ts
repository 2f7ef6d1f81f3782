// Container ids and --root as an attacker (or a careless caller) would give them: every verb refuses a bad id
// with runc's error before touching anything, a container directory is only ever reached from the root's
// fd (a symlink planted in the root is refused), and a canary tree around --root survives everything.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Runtime } from "../src/index";
import { cleanup, makeBundle, ok, TSRUN, tsrun, work, type RunResult } from "./helpers";
import { treeSnapshot } from "./faults";

after(cleanup);

function oneLineError(r: RunResult, expected: RegExp, what: string): void {
  assert.notEqual(r.status, 0, `${what}: must fail (stdout ${r.stdout})`);
  const lines = r.stderr.split("\n").filter(Boolean);
  assert.equal(lines.length, 1, `${what}: one line of error, got ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0]!, expected, what);
}

describe("container ids", () => {
  // work/ids/{canary/..., a/b/root (the --root), victim/<victim id> (another root's container)}
  let top: string;
  let root: string;
  let victimRoot: string;
  let victimId: string;
  let canaryBefore: string;
  before(() => {
    top = path.join(work(), "ids");
    root = path.join(top, "a", "b", "root");
    victimRoot = path.join(top, "victim");
    fs.mkdirSync(root, { recursive: true });
    fs.mkdirSync(path.join(top, "canary", "sub"), { recursive: true });
    fs.writeFileSync(path.join(top, "canary", "keep"), "canary");
    fs.writeFileSync(path.join(top, "canary", "sub", "state.json"), "{}");
    fs.writeFileSync(path.join(top, "a", "keep"), "a");
    fs.writeFileSync(path.join(top, "a", "b", "keep"), "b");
    const b = makeBundle(["sleep", "60"]);
    victimId = b.id;
    ok(tsrun(["create", "--bundle", b.dir, victimId], { root: victimRoot }));
    canaryBefore = treeSnapshot(path.join(top, "canary")) + treeSnapshot(path.join(top, "a"));
  });
  after(() => {
    if (victimId) tsrun(["delete", "-f", victimId], { root: victimRoot });
  });

  const victimState = () => JSON.parse(ok(tsrun(["state", victimId], { root: victimRoot })).stdout).status as string;

  const bad: [string, string, RegExp][] = [
    ["empty", "", /^container id cannot be empty$/],
    ["dot", ".", /^invalid container ID format$/],
    ["dot-dot", "..", /^invalid container ID format$/],
    ["slash", "a/b", /^invalid container ID format$/],
    ["climb", "../x", /^invalid container ID format$/],
    ["climb to the canary", "../../../canary", /^invalid container ID format$/],
    ["climb to the parent of the root", "../..", /^invalid container ID format$/],
    ["newline", "a\nb", /^invalid container ID format$/],
    ["space", "a b", /^invalid container ID format$/],
    ["absolute", "/tmp", /^invalid container ID format$/],
    ["long", "a".repeat(100_000), /^invalid container ID format$/],
  ];
  // verbs and their extra arguments
  const verbs: [string, string[]][] = [
    ["state", []],
    ["delete", []],
    ["delete", ["-f"]],
    ["kill", []],
    ["kill", ["-a"]],
    ["start", []],
    ["pause", []],
    ["resume", []],
    ["ps", []],
    ["events", ["--stats"]],
    ["update", ["--pids-limit", "10"]],
    ["exec", ["/probe", "facts"]],
    ["logs", []],
    ["attach", []],
    ["create", ["--bundle", "@"]],
    ["run", ["--bundle", "@"]],
  ];

  test("every verb refuses every bad id with runc's error and touches nothing", () => {
    const b = makeBundle(["facts"]);
    for (const [name, id, expected] of [...bad, ["another root's container", "", /^invalid container ID format$/] as [string, string, RegExp]]) {
      const theId = name === "another root's container" ? `../../../victim/${victimId}` : id;
      for (const [verb, extra] of verbs) {
        const args = extra.map((a) => (a === "@" ? b.dir : a));
        const flags = args.filter((a) => a.startsWith("-") || a === b.dir || /^\d+$/.test(a));
        const rest = args.filter((a) => !flags.includes(a));
        const r = tsrun([verb, ...flags, theId, ...rest], { root });
        // exec's failures are runc's "exec failed: …" (status 255)
        const want = verb === "exec" ? new RegExp(expected.source.replace(/^\^/, "^exec failed: ")) : expected;
        oneLineError(r, want, `${verb} ${extra.join(" ")} with ${name}`);
      }
    }
    assert.equal(treeSnapshot(path.join(top, "canary")) + treeSnapshot(path.join(top, "a")), canaryBefore, "the tree around --root is unchanged");
    assert.deepEqual(fs.readdirSync(root), [], "nothing was made in --root");
    assert.equal(victimState(), "created", "another root's container was not touched");
  });

  test("the library API refuses a 1 MB id and a climbing id the same way", async () => {
    const rt = new Runtime({ root });
    for (const id of ["a".repeat(1 << 20), "../x", ""]) {
      await assert.rejects(rt.get(id), { name: "TsrunError", code: "INVALID_ARGUMENT", message: /container id cannot be empty|invalid container ID format/ });
      await assert.rejects(rt.create(id, { bundle: work() }), { code: "INVALID_ARGUMENT", message: /container id cannot be empty|invalid container ID format/ });
    }
    assert.equal(treeSnapshot(path.join(top, "canary")) + treeSnapshot(path.join(top, "a")), canaryBefore);
    assert.equal(victimState(), "created");
  });

  test("a symlink planted in --root is never followed, by any verb", () => {
    // root/evil -> the victim's state directory; root/evil2 -> the canary directory
    const r2 = path.join(top, "planted");
    fs.mkdirSync(r2);
    fs.symlinkSync(path.join(victimRoot, victimId), path.join(r2, "evil"));
    fs.symlinkSync(path.join(top, "canary"), path.join(r2, "evil2"));
    try {
      for (const id of ["evil", "evil2"]) {
        for (const [verb, extra] of [["state", []], ["kill", ["9"]], ["delete", ["-f"]], ["delete", []], ["pause", []], ["exec", ["/probe", "facts"]]] as [string, string[]][]) {
          const flags = extra.filter((a) => a.startsWith("-"));
          const rest = extra.filter((a) => !a.startsWith("-"));
          const r = tsrun([verb, ...flags, id, ...rest], { root: r2 });
          oneLineError(r, /is not a directory tsrun made|does not exist/, `${verb} through a planted symlink ${id}`);
        }
        assert.ok(fs.lstatSync(path.join(r2, id)).isSymbolicLink(), "the link itself is left as it was");
      }
      const list = ok(tsrun(["list", "-q"], { root: r2 }));
      assert.equal(list.stdout, "", "list shows no container through a symlink");
      assert.equal(treeSnapshot(path.join(top, "canary")), canaryBefore.slice(0, treeSnapshot(path.join(top, "canary")).length));
      assert.equal(victimState(), "created");
    } finally {
      fs.rmSync(r2, { recursive: true, force: true });
    }
  });

  test("delete removes only the files tsrun made: a state directory holding anything else is left, with an error", () => {
    const b = makeBundle(["facts"]);
    const r3 = path.join(top, "r3");
    ok(tsrun(["create", "--bundle", b.dir, b.id], { root: r3 }));
    fs.writeFileSync(path.join(r3, b.id, "precious"), "x");
    const r = tsrun(["delete", "-f", b.id], { root: r3 });
    oneLineError(r, /holds files tsrun did not make \(precious\)/, "delete with a stranger's file");
    assert.equal(fs.readFileSync(path.join(r3, b.id, "precious"), "utf8"), "x");
    fs.rmSync(path.join(r3, b.id, "precious"));
    ok(tsrun(["delete", "-f", b.id], { root: r3 }));
    assert.deepEqual(fs.readdirSync(r3).filter((n) => !n.startsWith(".")), []);
  });
});

describe("the store", () => {
  test("a long-lived library caller follows a container deleted and made again by another tsrun", async () => {
    const r = path.join(work(), "relinked");
    const rt = new Runtime({ root: r });
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["create", "--bundle", b.dir, b.id], { root: r }));
    const c = await rt.get(b.id);
    const first = (await c.state()).pid;
    ok(tsrun(["delete", "-f", b.id], { root: r }));
    await assert.rejects(c.state(), { code: "NOT_FOUND", message: /does not exist/ });
    ok(tsrun(["create", "--bundle", b.dir, b.id], { root: r }));
    const second = await c.state();
    assert.equal(second.status, "created");
    assert.notEqual(second.pid, first);
    await c.delete({ force: true });
    assert.deepEqual(fs.readdirSync(r).filter((n) => !n.startsWith(".")), []);
  });
});

describe("the store, listing", () => {
  test("list holds one directory fd at a time: more containers than the fd limit are listed", () => {
    const r = path.join(work(), "many");
    const b = makeBundle(["sleep", "30"]);
    ok(tsrun(["create", "--bundle", b.dir, b.id], { root: r }));
    const record = JSON.parse(fs.readFileSync(path.join(r, b.id, "state.json"), "utf8")) as { id: string; pid: number; cgroup: unknown };
    ok(tsrun(["delete", "-f", b.id], { root: r }));
    // stopped containers (their init is gone), recorded as tsrun records them
    const n = 1100;
    for (let i = 0; i < n; i++) {
      const id = `many-${i}`;
      fs.mkdirSync(path.join(r, id));
      fs.writeFileSync(path.join(r, id, "state.json"), JSON.stringify({ ...record, id, cgroup: { dirs: {}, created: [] } }));
    }
    try {
      // with a soft fd limit well below the number of containers
      const l = spawnSync("sh", ["-c", 'ulimit -n 256 && exec "$0" "$@"', TSRUN, "--root", r, "list", "-q"], { encoding: "utf8", maxBuffer: 1 << 24 });
      assert.equal(l.status, 0, l.stderr);
      assert.equal(l.stdout.split("\n").filter(Boolean).length, n);
    } finally {
      fs.rmSync(r, { recursive: true, force: true });
    }
  });
});

describe("--root", () => {
  test("a file as --root: every verb says so in one line, delete -f included", () => {
    const file = path.join(work(), "root-is-a-file");
    fs.writeFileSync(file, "data");
    for (const args of [["delete", "-f", "x"], ["state", "x"], ["list"], ["kill", "x"]]) {
      oneLineError(tsrun(args, { root: file }), /^--root .*root-is-a-file: open: not a directory$/, args.join(" "));
    }
    const b = makeBundle(["facts"]);
    oneLineError(tsrun(["create", "--bundle", b.dir, b.id], { root: file }), /^--root .*root-is-a-file: (open|create): (file already exists|not a directory)$/, "create");
    assert.equal(fs.readFileSync(file, "utf8"), "data");
  });

  test("a missing --root: state says the container does not exist, delete -f succeeds, list is empty", () => {
    const missing = path.join(work(), "no", "such", "root");
    oneLineError(tsrun(["state", "x"], { root: missing }), /^container "x" does not exist$/, "state");
    assert.equal(tsrun(["delete", "-f", "x"], { root: missing }).status, 0);
    assert.equal(ok(tsrun(["list", "-q"], { root: missing })).stdout, "");
    assert.ok(!fs.existsSync(missing), "nothing was created for a read-only verb");
  });

  test("a read-only --root: create fails in one line naming the root, and leaves nothing", () => {
    const ro = path.join(work(), "ro-root");
    fs.mkdirSync(ro);
    const m = spawnSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tsrun-test-ro", ro]);
    assert.equal(m.status, 0, m.stderr.toString());
    try {
      const b = makeBundle(["facts"]);
      oneLineError(tsrun(["create", "--bundle", b.dir, b.id], { root: path.join(ro, "sub") }), /^--root .*ro-root\/sub: create: read-only file system$/, "create under a missing root on a read-only fs");
      oneLineError(tsrun(["create", "--bundle", b.dir, b.id], { root: ro }), /^--root .*ro-root: create the state directory of .*: read-only file system$/, "create in a read-only root");
      const seccomp = makeBundle(["facts"], (s) => {
        s.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW" };
      });
      oneLineError(tsrun(["create", "--bundle", seccomp.dir, seccomp.id], { root: ro }), /read-only file system$/, "create with seccomp in a read-only root");
    } finally {
      spawnSync("umount", [ro]);
    }
  });
});
