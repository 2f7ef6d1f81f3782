// NOTIFY_SOCKET under a real systemd (the guest): a Type=notify unit runs `tsrun run -d`; systemd gets the
// container's READY=1 through tsrun, takes MAINPID (the container's init) and answers BARRIER=1.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, test } from "node:test";
import { cleanup, makeBundle, ok, stateRoot, TSRUN, tsrun, waitFor } from "../helpers";

const GUEST = process.env.TSRUN_GUEST === "1";

after(() => {
  if (GUEST) cleanup();
});

function systemctl(...args: string[]): string {
  return spawnSync("systemctl", args, { encoding: "utf8" }).stdout.trim();
}

test("systemd Type=notify: tsrun run -d relays READY=1 and MAINPID=<container init>", { skip: GUEST ? false : "systemd guest only (TSRUN_GUEST=1)" }, () => {
  const b = makeBundle(["multi", "delay", "0.5", "--", "notify", "READY=1", "--", "sleep", "300"]);
  const unit = `tsrun-notify-${process.pid}.service`;
  try {
    // systemd-run returns once the start job is done: for Type=notify, once READY=1 came
    const r = spawnSync(
      "systemd-run",
      ["--unit", unit, "-p", "Type=notify", "-p", "TimeoutStartSec=300", `--setenv=PATH=${process.env.PATH ?? "/usr/bin:/bin"}`, TSRUN, "--root", stateRoot(), "run", "-d", "--bundle", b.dir, b.id],
      { encoding: "utf8", timeout: 320_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const pid = (JSON.parse(ok(tsrun(["state", b.id])).stdout) as { pid: number }).pid;
    assert.equal(systemctl("show", "-p", "ActiveState", "--value", unit), "active");
    // (MAINPID comes in the datagram after READY=1: systemd-run may return in between)
    const mainPid = waitFor(() => {
      const v = Number(systemctl("show", "-p", "MainPID", "--value", unit));
      return v === pid ? v : 0;
    }, 10_000);
    assert.equal(mainPid, pid);
  } finally {
    spawnSync("systemctl", ["stop", unit]);
    spawnSync("systemctl", ["reset-failed", unit]);
    tsrun(["delete", "--force", b.id]);
  }
});
