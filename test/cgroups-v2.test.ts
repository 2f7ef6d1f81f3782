// cgroup v2 for real: each scenario of cgroups-v2-scenarios.ts runs in a private mount namespace where
// cgroup2 is mounted on /sys/fs/cgroup (the hybrid host's own v2 hierarchy, seen as a v2-only host), as one
// tests crun on such a host. The mount disappears with the namespace; the cgroups are under this test
// process's /tsrun-test-<pid>/ and removed by the scenario, or by cleanup() here.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { scenarioNames } from "./cgroups-v2-scenarios";
import { CGROUP_PARENT, cleanup, probe } from "./helpers";

after(cleanup);

const haveV2 = fs.readFileSync("/proc/self/mountinfo", "utf8").includes(" - cgroup2 ");

function inPureV2(name: string): void {
  const scenarios = path.join(__dirname, "cgroups-v2-scenarios.js");
  const script = `require(${JSON.stringify(scenarios)}).runScenario(${JSON.stringify(name)}).then(() => process.exit(0), (e) => { console.error(e && e.stack || e); process.exit(1); })`;
  const r = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", 'mount -t cgroup2 none /sys/fs/cgroup && exec "$0" -e "$1"', process.execPath, script], {
    env: { ...process.env, TSRUN_TEST_CGROUP_PARENT: CGROUP_PARENT, TSRUN_TEST_PROBE: probe() },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `scenario ${name} in a pure cgroup2 view failed:\n${r.stderr}${r.stdout}`);
}

describe("cgroup v2 (private mount namespace, cgroup2 on /sys/fs/cgroup)", { skip: haveV2 ? false : "no cgroup2 on this kernel" }, () => {
  for (const name of scenarioNames) test(name, () => inPureV2(name));
});
