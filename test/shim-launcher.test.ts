// bin/containerd-shim-tsrun-v2, the native launcher (native/shim-launcher.cc), against main.ts: on a table of
// bundles (config.json's annotations present, absent, hostile, malformed; TSRUN_SHIM_SHARED on and off; the
// bundle's tsrun-shim.json; the group's socket alive, dead, absent) both run `start` and `delete`, and their
// outputs, exit statuses, address files and socket paths must be the same. The table also says which cases
// the launcher answers itself and which it hands to node: `node` on PATH is a recording wrapper of the real
// one (and, for `serve`, a stand-in server that says "ready"), so no real shim server is ever started.
import { fromBinary } from "@bufbuild/protobuf";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { DeleteResponseSchema } from "../src/shim/containerd/gen/runtime/task/v2/shim_pb";
import { deleteResponse, groupOf, parseFlags, SOCKET_DIR, socketPath } from "../src/shim/containerd/main";
import { REPO, work, cleanup } from "./helpers";

const LAUNCHER = path.join(REPO, "bin", "containerd-shim-tsrun-v2");
const MAIN = fs.realpathSync(path.join(REPO, "dist", "src", "shim", "containerd", "main.js"));
// the server's startup snapshot (scripts/snapshot-shim.js), when npm run build could make it
const BLOB = path.join(fs.realpathSync(REPO), "dist", "containerd-shim-tsrun-v2.blob");
const serveEntry = () => (fs.existsSync(BLOB) ? ["--snapshot-blob", BLOB, "--"] : [MAIN]);
// an address of this test run alone: its sockets never meet a real shim's
const ADDRESS = `/run/tsrun-launcher-test-${process.pid}/containerd.sock`;
const NS = "launcher-test";

let fakeBin = "";
let nodeLog = "";
const listeners: net.Server[] = [];
const sockets = new Set<string>();

before(() => {
  fakeBin = path.join(work(), "fakebin");
  fs.mkdirSync(fakeBin);
  nodeLog = path.join(work(), "node.log");
  // every run of node is recorded (one argument a line, then --end--); `serve` is a stand-in server
  fs.writeFileSync(
    path.join(fakeBin, "node"),
    `#!/bin/sh
for a in "$@"; do printf '%s\\n' "$a"; done >>"$FAKE_NODE_LOG"
echo --end-- >>"$FAKE_NODE_LOG"
eval last=\\\${$#}
if [ "$last" = serve ]; then
  [ "$FAKE_NODE_MODE" = fail ] && { echo "no luck" >&2; exit 3; }
  [ "$FAKE_NODE_MODE" = refuse-blob ] && [ "$1" = --snapshot-blob ] && { echo "Failed to load the startup snapshot" >&2; exit 14; }
  [ "$FAKE_NODE_MODE" = fail-blob ] && [ "$1" = --snapshot-blob ] && { echo "Cannot find module '/elsewhere/build/Release/tsrun.node'" >&2; exit 1; }
  echo "serve says hello" >&2
  echo ready
  exit 0
fi
exec ${process.execPath} "$@"
`,
    { mode: 0o755 },
  );
  fs.mkdirSync(SOCKET_DIR, { recursive: true, mode: 0o711 });
});

after(() => {
  for (const l of listeners) l.close();
  for (const s of sockets) fs.rmSync(s, { force: true });
  cleanup();
});

function nodeRuns(): string[][] {
  if (!fs.existsSync(nodeLog)) return [];
  const runs: string[][] = [];
  let cur: string[] = [];
  for (const line of fs.readFileSync(nodeLog, "utf8").split("\n").slice(0, -1)) {
    if (line === "--end--") {
      runs.push(cur);
      cur = [];
    } else cur.push(line);
  }
  return runs;
}

interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
  address: string | null;
  nodeRuns: string[][];
}

function run(cmd: "launcher" | "main", bundle: string, args: string[], env: Record<string, string | undefined> = {}): Run {
  fs.rmSync(nodeLog, { force: true });
  fs.rmSync(path.join(bundle, "address"), { force: true });
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, PATH: `${fakeBin}:${process.env.PATH ?? "/usr/bin:/bin"}`, FAKE_NODE_LOG: nodeLog, ...env })) if (v !== undefined) e[k] = v;
  const r = cmd === "launcher" ? spawnSync(LAUNCHER, args, { cwd: bundle, env: e, timeout: 20_000 }) : spawnSync(process.execPath, [MAIN, ...args], { cwd: bundle, env: e, timeout: 20_000 });
  let address: string | null = null;
  try {
    address = fs.readFileSync(path.join(bundle, "address"), "utf8");
  } catch {
    // none written
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString(), address, nodeRuns: nodeRuns() };
}

// what main.ts computes for the bundle, or the error it throws
function expectedSocket(bundle: string, id: string, shared: boolean, address = ADDRESS): string | Error {
  const saved = process.env.TSRUN_SHIM_SHARED;
  if (shared) process.env.TSRUN_SHIM_SHARED = "1";
  else delete process.env.TSRUN_SHIM_SHARED;
  try {
    return socketPath(address, NS, groupOf(bundle, id));
  } catch (e) {
    return e as Error;
  } finally {
    if (saved === undefined) delete process.env.TSRUN_SHIM_SHARED;
    else process.env.TSRUN_SHIM_SHARED = saved;
  }
}

function listen(sock: string): Promise<void> {
  sockets.add(sock);
  fs.rmSync(sock, { force: true });
  const l = net.createServer((c) => c.destroy());
  listeners.push(l);
  return new Promise((resolve) => l.listen(sock, resolve));
}

// a socket file no one listens on (a dead shim's)
function deadSocket(sock: string): void {
  sockets.add(sock);
  fs.rmSync(sock, { force: true });
  const r = spawnSync("python3", ["-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])", sock]);
  assert.equal(r.status, 0, r.stderr.toString());
}

let seq = 0;
function bundleWith(config: string | Buffer | null | ((dir: string) => void)): string {
  const dir = path.join(work(), `b${seq++}`);
  fs.mkdirSync(dir);
  if (typeof config === "function") config(dir);
  else if (config !== null) fs.writeFileSync(path.join(dir, "config.json"), config);
  return dir;
}

const ann = (a: unknown) => JSON.stringify({ ociVersion: "1.0.2", process: { args: ["/bin/true"] }, annotations: a });
const deep = (n: number) => `{"x":${"[".repeat(n)}${"]".repeat(n)},"annotations":{"io.kubernetes.cri.sandbox-id":"deep"}}`;

// [name, config.json, shared, the launcher answers itself]
const startCases: [string, string | Buffer | null | ((dir: string) => void), boolean, boolean][] = [
  ["no config.json", null, false, true],
  ["no config.json, shared", null, true, true],
  ["no annotations", JSON.stringify({ ociVersion: "1.0.2" }), false, true],
  ["no annotations, shared", JSON.stringify({ ociVersion: "1.0.2" }), true, true],
  ["pod", ann({ "io.kubernetes.cri.sandbox-id": "pod1" }), false, true],
  ["pod, shared", ann({ "io.kubernetes.cri.sandbox-id": "pod1" }), true, true],
  ["shim-group wins over pod", ann({ "io.kubernetes.cri.sandbox-id": "pod1", "io.containerd.tsrun.shim-group": "g1" }), false, true],
  ["empty shim-group: the pod", ann({ "io.containerd.tsrun.shim-group": "", "io.kubernetes.cri.sandbox-id": "pod2" }), false, true],
  ["null and false fall through", ann({ "io.containerd.tsrun.shim-group": null, "io.kubernetes.cri.sandbox-id": false }), false, true],
  ["other annotations only", ann({ "a.b": "c", "io.kubernetes.cri.sandbox-idx": "no" }), false, true],
  ["annotations null", ann(null), false, true],
  ["annotations a string", ann("io.kubernetes.cri.sandbox-id"), false, true],
  ["annotations an array", ann(["pod1"]), false, true],
  ["top-level null", "null", true, true],
  ["top-level array, shared", '[{"annotations":{"io.kubernetes.cri.sandbox-id":"p"}}]', true, true],
  ["top-level string", '"annotations"', false, true],
  ["duplicate annotations: the last", '{"annotations":{"io.kubernetes.cri.sandbox-id":"first"},"annotations":{}}', false, true],
  ["duplicate key: the last", '{"annotations":{"io.kubernetes.cri.sandbox-id":"first","io.kubernetes.cri.sandbox-id":"second"}}', false, true],
  ["escaped names and values", '{"\\u0061nnotations":{"io.kubernetes.cri.sandbox-id":"p\\u00f6d\\t\\"q\\"\\\\"}}', false, true],
  ["surrogate pair", '{"annotations":{"io.kubernetes.cri.sandbox-id":"\\ud83d\\ude00"}}', false, true],
  ["raw UTF-8", ann({ "io.kubernetes.cri.sandbox-id": "pöd-日本-😀" }), false, true],
  ["numbers and literals elsewhere", '{ "a" : [ -0.5e-3, 1E+9, 0, true, false, null, {} ], "annotations" : { "io.kubernetes.cri.sandbox-id" : "p" } }\r\n', false, true],
  ["trailing comma: malformed", '{"annotations":{"io.kubernetes.cri.sandbox-id":"p"},}', true, true],
  ["truncated: malformed", '{"annotations":{"io.kubernetes.cri.sandbox-id":"p"', true, true],
  ["single quotes: malformed", "{'annotations':{}}", false, true],
  ["leading zero: malformed", '{"n":01,"annotations":{"io.kubernetes.cri.sandbox-id":"p"}}', false, true],
  ["raw control character: malformed", '{"annotations":{"io.kubernetes.cri.sandbox-id":"a\tb"}}', false, true],
  ["byte order mark: malformed", `\ufeff${ann({ "io.kubernetes.cri.sandbox-id": "p" })}`, false, true],
  ["bad escape: malformed", '{"annotations":{"io.kubernetes.cri.sandbox-id":"\\x41"}}', false, true],
  ["trailing garbage: malformed", `${ann({ "io.kubernetes.cri.sandbox-id": "p" })} x`, false, true],
  ["empty file: malformed", "", true, true],
  // node's cases
  ["a number (path.join throws)", ann({ "io.kubernetes.cri.sandbox-id": 5 }), false, false],
  ["zero (falsy in JavaScript)", ann({ "io.kubernetes.cri.sandbox-id": 0, "io.containerd.tsrun.shim-group": 0 }), false, false],
  ["true (path.join throws)", ann({ "io.kubernetes.cri.sandbox-id": true }), false, false],
  ["an object (path.join throws)", ann({ "io.containerd.tsrun.shim-group": {} }), false, false],
  ["a slash in the group", ann({ "io.kubernetes.cri.sandbox-id": "a/b" }), false, false],
  ["a dot-dot group (path.join rewrites it)", ann({ "io.kubernetes.cri.sandbox-id": ".." }), false, false],
  ["a lone surrogate", '{"annotations":{"io.kubernetes.cri.sandbox-id":"\\ud800x"}}', false, false],
  ["a NUL in the group", '{"annotations":{"io.kubernetes.cri.sandbox-id":"a\\u0000b"}}', false, false],
  ["invalid UTF-8", Buffer.concat([Buffer.from('{"annotations":{"io.kubernetes.cri.sandbox-id":"p'), Buffer.from([0xff, 0xc0, 0x80]), Buffer.from('"}}')]), false, false],
  ["nesting deeper than the reader's limit", deep(600), false, false],
  ["config.json a symlink", (d) => {
    fs.writeFileSync(path.join(d, "real.json"), ann({ "io.kubernetes.cri.sandbox-id": "via-link" }));
    fs.symlinkSync("real.json", path.join(d, "config.json"));
  }, false, false],
  ["config.json a directory", (d) => fs.mkdirSync(path.join(d, "config.json")), false, false],
  ["config.json over 16 MiB", (d) => fs.writeFileSync(path.join(d, "config.json"), `${ann({ "io.kubernetes.cri.sandbox-id": "big" })}${" ".repeat(16 << 20)}`), false, false],
];

describe("the native launcher against main.ts", () => {
  test("start: the same socket, address file and output on every bundle of the table", async () => {
    for (const [name, config, shared, native] of startCases) {
      const id = `c${seq}`;
      const bundle = bundleWith(config);
      const args = ["-namespace", NS, "-address", ADDRESS, "-publish-binary", "/usr/bin/containerd", "-id", id, "start"];
      const env = { TSRUN_SHIM_SHARED: shared ? "1" : undefined };
      const want = expectedSocket(bundle, id, shared);
      if (typeof want === "string") await listen(want); // a shim serves the group: neither starts one
      const l = run("launcher", bundle, args, env);
      const m = run("main", bundle, args, env);
      const what = `${name}: ${typeof want === "string" ? want : want.message}`;
      assert.equal(l.status, m.status, what);
      assert.equal(l.stdout.toString(), m.stdout.toString(), what);
      assert.equal(l.stderr, m.stderr, what);
      assert.equal(l.address, m.address, what);
      if (typeof want === "string") {
        assert.equal(l.status, 0, `${what}: ${l.stderr}`);
        assert.equal(l.stdout.toString(), `unix://${want}`, what);
      } else assert.equal(l.status, 1, what);
      assert.deepEqual(l.nodeRuns.length === 0, native, `${what}: ${native ? "answered by the launcher" : "handed to node"}`);
      if (!native) assert.deepEqual(l.nodeRuns, [[MAIN, ...args]], what);
    }
  });

  test("start with no live shim: the server is spawned as main.ts spawns it (flags in Go's forms)", () => {
    const forms: string[][] = [
      ["-namespace", NS, "-address", ADDRESS, "-publish-binary", "/usr/bin/containerd", "-id", "s1", "start"],
      ["--namespace", NS, "--address", ADDRESS, "-publish-binary=/pb", "-id=s2", "-debug", "start"],
      ["-namespace=" + NS, "-address=" + ADDRESS, "--id", "s3", "-debug=false", "-bundle", "/ignored", "start"],
      ["-v", "-namespace", NS, "-address", ADDRESS, "-unknown", "x", "-id", "s4", "start"],
    ];
    for (const args of forms) {
      const f = parseFlags(args);
      const bundle = bundleWith(ann({}));
      const sock = socketPath(f.address, f.namespace, groupOf(bundle, f.id));
      deadSocket(sock); // a dead shim's socket: replaced
      const log = path.join(bundle, "shim.log");
      const l = run("launcher", bundle, args, { TSRUN_SHIM_LOG: log });
      assert.equal(l.status, 0, l.stderr);
      assert.equal(l.stdout.toString(), `unix://${sock}`);
      assert.equal(l.address, `unix://${sock}`);
      const serve = [...serveEntry(), "-namespace", f.namespace, "-address", f.address, "-publish-binary", f.publishBinary, "-id", f.id, "-socket", sock, ...(f.debug ? ["-debug"] : []), "serve"];
      assert.deepEqual(l.nodeRuns, [serve], args.join(" "));
      assert.equal(fs.readFileSync(log, "utf8"), "serve says hello\n", "the server's stderr goes to TSRUN_SHIM_LOG");
      assert.ok(!fs.existsSync(sock), "the dead socket was removed before the server was started");
    }
    // a blob node refuses (status 14), or one made for another package directory (the server fails before
    // it is ready): started again from main.js
    for (const mode of ["refuse-blob", "fail-blob"]) {
      if (!fs.existsSync(BLOB)) break;
      const args = ["-namespace", NS, "-address", ADDRESS, "-id", "s6", "start"];
      const bundle = bundleWith(null);
      const sock = socketPath(ADDRESS, NS, "s6");
      const l = run("launcher", bundle, args, { FAKE_NODE_MODE: mode });
      assert.equal(l.status, 0, l.stderr);
      assert.equal(l.stdout.toString(), `unix://${sock}`);
      const rest = ["-namespace", NS, "-address", ADDRESS, "-publish-binary", "", "-id", "s6", "-socket", sock, "serve"];
      assert.deepEqual(l.nodeRuns, [
        ["--snapshot-blob", BLOB, "--", ...rest],
        [MAIN, ...rest],
      ]);
    }
    // a server that exits before it is ready: main.ts's message and status
    const bundle = bundleWith(null);
    const l = run("launcher", bundle, ["-namespace", NS, "-address", ADDRESS, "-id", "s5", "start"], { FAKE_NODE_MODE: "fail" });
    assert.equal(l.status, 1);
    assert.equal(l.stderr, "tsrun shim: the shim server did not start: exit 3\n");
    assert.equal(l.address, null);
  });

  test("delete: the same DeleteResponse, and the same cleanup, with the socket alive, dead or absent", async () => {
    const tsrunRoot = path.join(work(), "tsrun-root");
    fs.mkdirSync(path.join(tsrunRoot, NS), { recursive: true });
    // [name, bundle set-up, socket state, answered by the launcher]
    type Sock = "alive" | "dead" | "absent";
    const cases: [string, (dir: string) => void, Sock, boolean][] = [
      ["no tsrun-shim.json, socket absent", () => {}, "absent", true],
      ["no tsrun-shim.json, socket alive", (d) => fs.writeFileSync(path.join(d, "config.json"), ann({ "io.kubernetes.cri.sandbox-id": "podd" })), "alive", true],
      ["no tsrun-shim.json, socket dead (removed)", () => {}, "dead", true],
      ["tsrun-shim.json, no container", (d) => fs.writeFileSync(path.join(d, "tsrun-shim.json"), JSON.stringify({ root: path.join(tsrunRoot, "x") })), "absent", true],
      ["a rootfs that is no mount point", (d) => fs.mkdirSync(path.join(d, "rootfs")), "alive", true],
      ["tsrun-shim.json malformed", (d) => fs.writeFileSync(path.join(d, "tsrun-shim.json"), "{root"), "absent", false],
      ["tsrun-shim.json root not a string", (d) => fs.writeFileSync(path.join(d, "tsrun-shim.json"), '{"root":7}'), "absent", false],
      ["tsrun-shim.json root with ..", (d) => fs.writeFileSync(path.join(d, "tsrun-shim.json"), JSON.stringify({ root: `${tsrunRoot}/../tsrun-root` })), "absent", false],
      ["config.json malformed and a dead socket", (d) => fs.writeFileSync(path.join(d, "config.json"), "{"), "dead", true],
      ["a group node judges", (d) => fs.writeFileSync(path.join(d, "config.json"), ann({ "io.kubernetes.cri.sandbox-id": "a/b" })), "alive", false],
    ];
    for (const [name, setup, sockState, native] of cases) {
      const id = `d${seq}`;
      const bundle = bundleWith(setup);
      const args = ["-namespace", NS, "-address", ADDRESS, "-publish-binary", "/usr/bin/containerd", "-id", id, "-bundle", bundle, "delete"];
      const sock = expectedSocket(bundle, id, false);
      assert.equal(typeof sock, "string", name);
      const prepare = async () => {
        if (sockState === "alive" && !sockets.has(sock as string)) await listen(sock as string);
        if (sockState === "dead") deadSocket(sock as string);
      };
      const results: Run[] = [];
      for (const cmd of ["launcher", "main"] as const) {
        await prepare();
        const r = run(cmd, bundle, args, { TSRUN_SHIM_ROOT: tsrunRoot });
        results.push(r);
        if (r.status === 0) assert.equal(fs.existsSync(sock as string), sockState === "alive", `${name} (${cmd}): the socket is kept only when alive`);
      }
      const [l, m] = results as [Run, Run];
      assert.equal(l.status, m.status, name);
      assert.equal(l.stderr, m.stderr, name);
      assert.equal(l.nodeRuns.length === 0, native, `${name}: ${native ? "answered by the launcher" : "handed to node"}`);
      if (l.status !== 0) continue;
      const ld = fromBinary(DeleteResponseSchema, l.stdout);
      const md = fromBinary(DeleteResponseSchema, m.stdout);
      assert.deepEqual([ld.pid, ld.exitStatus], [md.pid, md.exitStatus], name);
      assert.equal(ld.exitStatus, 137, name);
      const at = (d: typeof ld) => new Date(Number(d.exitedAt!.seconds) * 1000 + d.exitedAt!.nanos / 1e6);
      assert.ok(Math.abs(at(ld).getTime() - Date.now()) < 30_000, name);
      // byte for byte what main.ts's deleteResponse writes for that time
      assert.deepEqual([...l.stdout], [...deleteResponse(0, 137, at(ld))], name);
    }
  });

  test("delete hands node the cases with something to undo: a container left, a mounted rootfs", () => {
    const tsrunRoot = path.join(work(), "tsrun-root2");
    const id = `e${seq}`;
    fs.mkdirSync(path.join(tsrunRoot, NS, id), { recursive: true });
    const b1 = bundleWith(null);
    const args = ["-namespace", NS, "-address", ADDRESS, "-id", id, "-bundle", b1, "delete"];
    const l = run("launcher", b1, args, { TSRUN_SHIM_ROOT: tsrunRoot });
    assert.deepEqual(l.nodeRuns, [[MAIN, ...args]], "a container dir under the root: node's");
    assert.equal(fromBinary(DeleteResponseSchema, l.stdout).exitStatus, 137);

    const b2 = bundleWith((d) => fs.mkdirSync(path.join(d, "rootfs")));
    const rootfs = path.join(b2, "rootfs");
    assert.equal(spawnSync("mount", ["-t", "tmpfs", "none", rootfs]).status, 0);
    const args2 = ["-namespace", NS, "-address", ADDRESS, "-id", "e2", "delete"];
    const l2 = run("launcher", b2, args2, { TSRUN_SHIM_ROOT: tsrunRoot });
    assert.equal(l2.status, 0, l2.stderr);
    assert.deepEqual(l2.nodeRuns, [[MAIN, ...args2]], "a mounted rootfs: node's");
    assert.ok(!fs.readFileSync("/proc/self/mountinfo", "utf8").includes(` ${rootfs} `), "node unmounted it");
  });

  test("-v and --version; other actions are main.ts's", () => {
    const b = bundleWith(null);
    for (const args of [["-v"], ["--version"], ["-id", "x", "-v"]]) {
      const l = run("launcher", b, args);
      const m = run("main", b, args);
      assert.deepEqual([l.status, l.stdout.toString(), l.stderr], [m.status, m.stdout.toString(), m.stderr]);
      assert.deepEqual(l.nodeRuns, [], "answered by the launcher");
      assert.equal(l.stdout.toString(), "containerd-shim-tsrun-v2: tsrun\n");
    }
    for (const args of [["bogus"], []]) {
      const l = run("launcher", b, args);
      const m = run("main", b, args);
      assert.deepEqual([l.status, l.stdout.toString(), l.stderr], [m.status, m.stdout.toString(), m.stderr]);
      assert.deepEqual(l.nodeRuns, [[MAIN, ...args]]);
    }
  });
});
