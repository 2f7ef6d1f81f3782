// `tsrun check` in the systemd guest (npm run test:hosts): pure cgroup v2 with every controller, systemd as
// PID 1, AppArmor. Skipped unless TSRUN_GUEST=1.
import * as assert from "assert";
import { after, it } from "node:test";
import type { CheckReport } from "../../src/check/report";
import { cleanup, tsrun } from "../helpers";

const guest = process.env.TSRUN_GUEST === "1" ? false : "runs in the systemd guest only (TSRUN_GUEST=1)";
after(cleanup);

it("tsrun check in the guest: v2, systemd with D-Bus, AppArmor; the default config can run", { skip: guest }, () => {
  const r = tsrun(["check", "--format", "json"], { timeout: 120_000 });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  const rep = JSON.parse(r.stdout) as CheckReport;
  assert.strictEqual(rep.facts.cgroups.mode, "v2");
  for (const c of ["cpu", "memory", "pids", "io"]) assert.ok(rep.facts.cgroups.v2?.controllers.includes(c), c);
  assert.strictEqual(rep.facts.systemd.pid1, "systemd");
  assert.strictEqual(rep.facts.systemd.dbusSocket, true);
  assert.strictEqual(rep.facts.apparmor.enabled, true);
  assert.deepStrictEqual(rep.missingRequired, []);
});
