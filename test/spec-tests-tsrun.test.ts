// tsrun against the conformance harness: every MUST case. Known failures (spec-tests/known-failures.ts, each
// with its reason) are tolerated; any other MUST failure, or a known one that now passes, fails this test.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { REPO, specTestsLeftovers, TSRUN } from "./helpers";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "spec-tsrun-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test("tsrun passes the MUST cases of spec-tests (but its known failures)", () => {
  const before = specTestsLeftovers();
  const json = path.join(dir, "results.json");
  const r = spawnSync(process.execPath, [path.join(REPO, "dist", "spec-tests", "cli.js"), "--runtime", `tsrun=${TSRUN}`, "--level", "must", "--allow-known", "--json", json], {
    encoding: "utf8",
    timeout: 600_000,
  });
  const summary = /^tsrun: (\d+) passed, (\d+) failed, (\d+) skipped$/m.exec(r.stdout);
  assert.ok(summary, `no closing count line; stderr: ${r.stderr}`);
  const failures = r.stdout
    .split("\n")
    .filter((l) => /^ {4}not ok /.test(l) && !l.includes("# TODO known failure"))
    .map((l) => l.trim());
  assert.deepEqual(failures, [], "MUST cases that fail and are not known failures");
  assert.equal(r.status, 0, r.stderr);
  const results = JSON.parse(fs.readFileSync(json, "utf8")) as { runtimes: { results: { status: string }[] }[] };
  assert.ok(results.runtimes[0]!.results.filter((x) => x.status === "pass").length > 150, "most MUST cases pass");
  assert.deepEqual(specTestsLeftovers(), before, "the run left cgroups or work directories behind");
});
