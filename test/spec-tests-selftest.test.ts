// The harness tests itself: a runtime that is tsrun but for one dropped setting (a wrapper that rewrites the
// bundle's config into a copy without it) must fail exactly the case for that setting, and pass the others.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { REPO, specTestsLeftovers, TSRUN } from "./helpers";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "spec-selftest-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Results {
  runtimes: { name: string; results: { id: string; status: string; reason?: string }[] }[];
}

// A wrapper script: tsrun with `drop` taken out of config.json at create and run.
function brokenRuntime(drop: string): string {
  const file = path.join(dir, `broken-${drop.replace(/\W/g, "_")}`);
  const script = path.join(REPO, "dist", "spec-tests", "selftest", "broken-runtime.js");
  fs.writeFileSync(file, `#!/bin/sh\nexec ${process.execPath} ${script} ${TSRUN} '${drop}' "$@"\n`, { mode: 0o755 });
  return file;
}

function harness(runtime: string, filter: string[]): { status: number | null; stdout: string; results: Map<string, { status: string; reason?: string }> } {
  const before = specTestsLeftovers();
  const json = path.join(dir, `results-${Date.now()}.json`);
  const r = spawnSync(process.execPath, [path.join(REPO, "dist", "spec-tests", "cli.js"), "--runtime", `broken=${runtime}`, "--filter", filter.join(","), "--json", json], {
    encoding: "utf8",
    timeout: 300_000,
  });
  assert.ok(fs.existsSync(json), `the harness wrote no results: ${r.stderr}`);
  assert.deepEqual(specTestsLeftovers(), before, "the run left cgroups or work directories behind");
  const parsed = JSON.parse(fs.readFileSync(json, "utf8")) as Results;
  return { status: r.status, stdout: r.stdout, results: new Map(parsed.runtimes[0]!.results.map((x) => [x.id, x])) };
}

describe("spec-tests catches a broken runtime", () => {
  test("dropping hostname fails config.hostname, and nothing else", () => {
    const cases = ["config.hostname", "config.domainname", "config.process.cwd", "config.process.env", "runtime.kill.running"];
    const r = harness(brokenRuntime("hostname"), cases);
    assert.equal(r.results.get("config.hostname")?.status, "fail");
    assert.match(r.results.get("config.hostname")?.reason ?? "", /hostname: expected "oci-spec-host"/);
    for (const [id, x] of r.results) if (id !== "config.hostname") assert.equal(x.status, "pass", `${id}: ${x.reason}`);
    assert.ok(r.results.size >= cases.length);
    assert.equal(r.status, 1, "a MUST failure of the first runtime fails the run");
    assert.match(r.stdout, new RegExp(`^broken: ${r.results.size - 1} passed, 1 failed, 0 skipped$`, "m"));
  });

  test("dropping the /dev/shm mount fails config.linux.default-filesystems, and nothing else", () => {
    const cases = ["config.linux.default-filesystems", "config.mounts.option.ro", "config.mounts.order.nested", "runtime-linux.dev-symlinks"];
    const r = harness(brokenRuntime("mount:/dev/shm"), cases);
    assert.equal(r.results.get("config.linux.default-filesystems")?.status, "fail");
    assert.match(r.results.get("config.linux.default-filesystems")?.reason ?? "", /no tmpfs at \/dev\/shm/);
    for (const [id, x] of r.results) if (id !== "config.linux.default-filesystems") assert.equal(x.status, "pass", `${id}: ${x.reason}`);
    assert.equal(r.status, 0, "a SHOULD failure does not fail the run");
  });

  test("the unbroken wrapper passes the same cases", () => {
    const cases = ["config.hostname", "config.linux.default-filesystems"];
    const r = harness(brokenRuntime("mount:/no-such-mount"), cases);
    for (const [id, x] of r.results) assert.equal(x.status, "pass", `${id}: ${x.reason}`);
    assert.equal(r.results.size, cases.length);
    assert.equal(r.status, 0);
  });
});
