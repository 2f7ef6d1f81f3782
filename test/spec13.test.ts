// runtime-spec 1.3 applied for real: linux.memoryPolicy (set_mempolicy in the init and in exec, read back
// with get_mempolicy), linux.netDevices (a dummy interface moved and renamed into the container's network
// namespace, its global address kept), pids.limit 0 (pids.max "1", runc >= 1.4), and their refusals in
// runc's words.
import { after, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { cgroupDirsOf, cleanup, makeBundle, ok, stateRoot, TSRUN, tsrun } from "./helpers";

after(cleanup);

const MPOL_BIND = 2;
const MPOL_INTERLEAVE = 3;
const MPOL_F_STATIC_NODES = 1 << 15;

function probeJson(stdout: string, n = 0): Record<string, unknown> {
  return JSON.parse(stdout.trim().split("\n")[n]!) as Record<string, unknown>;
}

describe("linux.memoryPolicy", () => {
  test("the init and an exec run under the policy (get_mempolicy)", () => {
    const b = makeBundle(["mempolicy"], (s) => (s.linux!.memoryPolicy = { mode: "MPOL_BIND", nodes: "0", flags: ["MPOL_F_STATIC_NODES"] }));
    const r = ok(tsrun(["run", "--bundle", b.dir, b.id]));
    assert.deepEqual(probeJson(r.stdout), { ok: true, errno: 0, mode: MPOL_BIND | MPOL_F_STATIC_NODES, nodes: 1 });

    const c = makeBundle(["sleep", "30"], (s) => (s.linux!.memoryPolicy = { mode: "MPOL_INTERLEAVE", nodes: "0" }));
    ok(tsrun(["run", "-d", "--bundle", c.dir, c.id]));
    try {
      const e = ok(tsrun(["exec", c.id, "/probe", "mempolicy"]));
      assert.deepEqual(probeJson(e.stdout), { ok: true, errno: 0, mode: MPOL_INTERLEAVE, nodes: 1 });
    } finally {
      tsrun(["delete", "--force", c.id]);
    }
  });

  test("without one the process has the default policy", () => {
    const b = makeBundle(["mempolicy"]);
    assert.deepEqual(probeJson(ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout), { ok: true, errno: 0, mode: 0, nodes: 0 });
  });

  test("an unknown mode or flag, bad nodes and a wrong node count are refused in runc's words", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ mode: "MPOL_FOO", nodes: "0" }, 'invalid memory policy mode "MPOL_FOO"'],
      [{ mode: "MPOL_BIND", nodes: "0", flags: ["MPOL_F_BAR"] }, 'invalid memory policy flag "MPOL_F_BAR"'],
      [{ mode: "MPOL_BIND", nodes: "x" }, 'invalid memory policy nodes "x": '],
      [{ mode: "MPOL_BIND" }, "memory policy mode requires at least one node but got 0"],
      [{ mode: "MPOL_LOCAL", nodes: "0-1" }, "memory policy mode requires 0 nodes but got 2"],
    ];
    for (const [mp, msg] of cases) {
      const b = makeBundle(["facts"], (s) => ((s.linux as Record<string, unknown>).memoryPolicy = mp));
      const r = tsrun(["create", "--bundle", b.dir, b.id]);
      assert.notEqual(r.status, 0, JSON.stringify(mp));
      assert.ok(r.stderr.includes(msg), `${JSON.stringify(mp)}: ${r.stderr}`);
    }
  });
});

describe("linux.netDevices", () => {
  const ip = (...args: string[]) => spawnSync("ip", args, { encoding: "utf8" });
  // a network namespace of the test's own, holding the dummy interface: nothing of the host's is touched
  const netns = `tsrun-nd-${process.pid}`;
  after(() => ip("netns", "del", netns));

  test("an interface is moved into the container's namespace, renamed, its global address kept, up", () => {
    assert.equal(ip("netns", "add", netns).status, 0);
    // a dummy where the kernel has it, else one end of a veth pair (both go when the namespace they end
    // in is gone)
    const dev = `tsnd${process.pid % 100000}`;
    if (ip("-n", netns, "link", "add", dev, "type", "dummy").status !== 0) assert.equal(ip("-n", netns, "link", "add", dev, "type", "veth", "peer", "name", `${dev}p`).status, 0);
    assert.equal(ip("-n", netns, "address", "add", "169.254.169.77/24", "dev", dev).status, 0);
    assert.equal(ip("-n", netns, "address", "add", "127.0.0.33/8", "dev", dev).status, 0); // host scope: not kept
    // tsrun runs in the test's namespace (its mounts are the host's): the device is "on the host" there
    const b = makeBundle(["sleep", "30"], (s) => (s.linux!.netDevices = { [dev]: { name: "ctr0" } }));
    const r = spawnSync("nsenter", [`--net=/run/netns/${netns}`, TSRUN, "--root", stateRoot(), "run", "-d", "--bundle", b.dir, b.id], { encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    try {
      assert.notEqual(ip("-n", netns, "link", "show", dev).status, 0, "the device left the namespace tsrun ran in");
      const ls = probeJson(ok(tsrun(["exec", b.id, "/probe", "ls", "/sys/class/net/ctr0"])).stdout) as unknown as { exists: boolean }[];
      assert.equal(ls[0]!.exists, true);
      const flags = ok(tsrun(["exec", b.id, "/probe", "read", "/sys/class/net/ctr0/flags"]));
      assert.equal(Number((probeJson(flags.stdout).content as string).trim()) & 1, 1, "IFF_UP");
      const pid = (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { pid: number }).pid;
      const addrs = spawnSync("nsenter", [`--net=/proc/${pid}/ns/net`, "ip", "-o", "address", "show", "dev", "ctr0"], { encoding: "utf8" }).stdout;
      assert.match(addrs, /169\.254\.169\.77\/24/);
      assert.doesNotMatch(addrs, /127\.0\.0\.33/);
    } finally {
      ok(tsrun(["delete", "--force", b.id]));
    }
    // runc: nothing is moved back; a virtual device in a namespace that is gone is gone with it
    assert.notEqual(ip("-n", netns, "link", "show", dev).status, 0);
    assert.notEqual(ip("-n", netns, "link", "show", "ctr0").status, 0);
  });

  test("a missing device fails create and leaves nothing behind", () => {
    const b = makeBundle(["facts"], (s) => (s.linux!.netDevices = { tsrunnone0: {} }));
    const r = tsrun(["create", "--bundle", b.dir, b.id]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /error creating network interfaces: move netDevice tsrunnone0 to namespace \/proc\/\d+\/ns\/net: link not found for interface tsrunnone0 on runtime namespace: /);
    assert.equal(tsrun(["state", b.id]).status === 0, false);
  });

  test("refusals in runc's words", () => {
    const cases: [(s: ReturnType<typeof makeBundle>["spec"]) => void, string][] = [
      [(s) => ((s.linux!.netDevices = { eth9: {} }), (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "network"))), "unable to move network devices without a NET namespace"],
      [(s) => (s.linux!.netDevices = { "a/b": {} }), 'invalid network device name "a/b"'],
      [(s) => (s.linux!.netDevices = { eth9: { name: "x".repeat(17) } }), `invalid network device name "${"x".repeat(17)}"`],
      [(s) => (s.linux!.netDevices = { eth9: { name: ".." } }), 'invalid network device name ".."'],
    ];
    for (const [patch, msg] of cases) {
      const b = makeBundle(["facts"], patch);
      const r = tsrun(["create", "--bundle", b.dir, b.id]);
      assert.notEqual(r.status, 0, msg);
      assert.ok(r.stderr.includes(msg), `${msg}: ${r.stderr}`);
    }
  });
});

describe("pids.limit (runtime-spec 1.3)", () => {
  for (const [limit, want] of [
    [0, "1"],
    [-1, "max"],
    [7, "7"],
  ] as const) {
    test(`limit ${limit} writes pids.max ${want}`, () => {
      const b = makeBundle(["facts"], (s) => (s.linux!.resources = { pids: { limit } }));
      ok(tsrun(["create", "--bundle", b.dir, b.id]));
      try {
        const dirs = cgroupDirsOf(b.id).filter((d) => fs.existsSync(path.join(d, "pids.max")));
        assert.ok(dirs.length > 0, "a pids cgroup");
        for (const d of dirs) assert.equal(fs.readFileSync(path.join(d, "pids.max"), "utf8").trim(), want, d);
      } finally {
        tsrun(["delete", "--force", b.id]);
      }
    });
  }

  test("limit 0 is a real limit: the init is alone, a fork fails", () => {
    const b = makeBundle(["fork-orphans", "1"], (s) => (s.linux!.resources = { pids: { limit: 0 } }));
    const r = tsrun(["run", "--bundle", b.dir, b.id]);
    assert.match(r.stderr, /probe: fork: Resource temporarily unavailable/);
  });

  test("a pids object without a limit leaves pids.max alone", () => {
    const b = makeBundle(["facts"], (s) => (s.linux!.resources = { pids: {} }));
    ok(tsrun(["create", "--bundle", b.dir, b.id]));
    try {
      for (const d of cgroupDirsOf(b.id)) if (fs.existsSync(path.join(d, "pids.max"))) assert.equal(fs.readFileSync(path.join(d, "pids.max"), "utf8").trim(), "max");
    } finally {
      tsrun(["delete", "--force", b.id]);
    }
  });
});
