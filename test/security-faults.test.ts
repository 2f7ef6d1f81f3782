// `tsrun create` killed with SIGKILL at a random moment: whatever it had made, `state` and `list` tell the
// truth about it (no init running behind a "stopped" or a missing container) and `delete -f` removes all of
// it: state directory, cgroups, processes, mounts. Seeded: TSRUN_FAULT_SEED replays a run,
// TSRUN_FAULT_TRIALS runs more trials (the default keeps `npm test` short).
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { after, test } from "node:test";
import { cleanup, makeBundle, ok, stateRoot, TSRUN, tsrun, work } from "./helpers";
import { leftovers, processesOf, prng, settle } from "./faults";

after(cleanup);

const SEED = Number(process.env.TSRUN_FAULT_SEED ?? Date.now() % 100000);
const TRIALS = Number(process.env.TSRUN_FAULT_TRIALS ?? 24);

function createKilledAfter(args: string[], ms: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(TSRUN, ["--root", stateRoot(), ...args], { cwd: work(), stdio: "ignore" });
    const timer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.on("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

test(`kill -9 of create at a random moment never hides an init and delete -f removes everything (seed ${SEED})`, async () => {
  const random = prng(SEED);
  // how long a whole create takes here, to spread the kills over it
  const probe = makeBundle(["sleep", "30"]);
  const t0 = Date.now();
  ok(tsrun(["create", "--bundle", probe.dir, probe.id]));
  const full = Math.max(50, Date.now() - t0);
  ok(tsrun(["delete", "-f", probe.id]));

  const failures: string[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const withHook = random() < 0.3; // a createRuntime hook widens the window while the init exists
    const shim = random() < 0.25;
    const b = makeBundle(["sleep", "30"], (s) => {
      if (withHook) s.hooks = { createRuntime: [{ path: "/bin/sh", args: ["sh", "-c", "sleep 0.05"] }] };
    });
    const delay = Math.floor(random() * full * 1.3);
    await createKilledAfter(["create", ...(shim ? ["--shim"] : []), "--bundle", b.dir, b.id], delay);
    const what = `trial ${i} (kill after ${delay} ms of ~${full}${withHook ? ", with a hook" : ""}${shim ? ", --shim" : ""})`;

    // state and list agree with what runs: an init still running means "created", and then it is real
    const st = tsrun(["state", b.id]);
    const listed = ok(tsrun(["list", "-q"])).stdout.split("\n").includes(b.id);
    if (st.status === 0) {
      const s = JSON.parse(st.stdout) as { status: string; pid: number };
      assert.ok(listed, `${what}: state knows it, list must too`);
      if (s.status === "stopped" || s.status === "creating") {
        const hidden = settle(() => processesOf(b.id).map(String), 3000);
        if (hidden.length) failures.push(`${what}: state says ${s.status} but processes run in its cgroup: ${hidden.join(", ")}`);
      } else if (s.status === "created") {
        assert.ok(processesOf(b.id).includes(s.pid), `${what}: created, and its init ${s.pid} is in its cgroup`);
      } else failures.push(`${what}: unexpected status ${s.status}`);
    } else {
      assert.match(st.stderr, /does not exist/, what);
      const hidden = settle(() => processesOf(b.id).map(String), 3000);
      if (hidden.length) failures.push(`${what}: no state but processes run in its cgroup: ${hidden.join(", ")}`);
    }

    const d = tsrun(["delete", "-f", b.id]);
    if (d.status !== 0) failures.push(`${what}: delete -f failed: ${d.stderr.trim()}`);
    const left = settle(() => leftovers(b.id, b.dir), 3000);
    if (left.length) failures.push(`${what}: left after delete -f: ${left.join("; ")}`);
  }
  assert.deepEqual(failures, [], `seed ${SEED}`);
});

test("a config that will be refused touches nothing on the host: not even --root is made", () => {
  const root = `${work()}/never-made-root`;
  const cases: [string, (s: import("../src/spec/schema").Spec) => void, RegExp][] = [
    ["a global sysctl", (s) => (s.linux!.sysctl = { "kernel.core_pattern": "|/bin/false" }), /is not in a separate kernel namespace/],
    ["a bind inside /proc", (s) => s.mounts!.push({ destination: "/proc/sys/kernel", type: "bind", source: work(), options: ["rbind"] }), /inside \/proc/],
    ["hostname without a uts namespace", (s) => (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "uts")), /unable to set hostname without a private UTS namespace/],
  ];
  for (const [what, patch, expected] of cases) {
    const b = makeBundle(["facts"], patch);
    const r = tsrun(["create", "--bundle", b.dir, b.id], { root });
    assert.notEqual(r.status, 0, what);
    assert.match(r.stderr, expected, what);
    assert.equal(fs.existsSync(root), false, `${what}: --root was not made`);
    assert.deepEqual(leftovers(b.id, b.dir, root), [], what);
  }
});
