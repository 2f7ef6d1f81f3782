// The conformance harness's own parts, without containers: the rule table covers every rule with existing
// cases, the coverage check catches holes, known failures name real cases, arguments, TAP and the matrix.
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ALL_CASES } from "../spec-tests/cases";
import { KNOWN_FAILURES } from "../spec-tests/known-failures";
import { filterSelected, levelSelected, parseArgs, UsageError } from "../spec-tests/harness/args";
import type { Case, CaseResult } from "../spec-tests/harness/case";
import { matrixMarkdown, summaryLine, TapWriter } from "../spec-tests/harness/report";
import { ALL_RULES, checkCoverage, NOT_RUNTIME_RULES } from "../spec-tests/rules";
import { MOUNT_OPTION_TABLE } from "../spec-tests/rules/config";

const SPEC_FILES = ["config.md", "config-linux.md", "runtime.md", "runtime-linux.md", "features.md", "features-linux.md"];

describe("rule table", () => {
  test("every MUST/SHOULD rule has a case, every case it names exists, every MUST/SHOULD case is named", () => {
    assert.deepEqual(checkCoverage(ALL_CASES), []);
    assert.ok(ALL_RULES.length > 150, `${ALL_RULES.length} rules`);
  });

  test("the check finds a rule without a case, a missing case and an unnamed case", () => {
    const c: Case = { id: "x.case", spec: "config.md#x", level: "MUST", title: "x", steps: [] };
    const problems = checkCoverage(
      [c],
      [
        { id: "r1", spec: "config.md#x", level: "MUST", text: "", cases: [] },
        { id: "r2", spec: "config.md#x", level: "MUST", text: "", cases: ["no.such.case"] },
      ],
    );
    assert.deepEqual(problems, ["rule r1 (MUST, config.md#x) has no case", "rule r2 names case no.such.case, which does not exist", "case x.case (MUST) is named by no rule"]);
  });

  test("rules and cases cite the spec files in scope, with an anchor", () => {
    for (const x of [...ALL_RULES, ...ALL_CASES]) {
      const [file, anchor] = x.spec.split("#");
      assert.ok(SPEC_FILES.includes(file ?? ""), `${x.id}: ${x.spec}`);
      assert.ok(anchor && /^[a-z0-9-]+$/.test(anchor), `${x.id}: anchor of ${x.spec}`);
    }
    assert.ok(NOT_RUNTIME_RULES.every((r) => r.why.length > 0));
  });

  test("every option of the mount option table has a case at the table's level", () => {
    for (const [name, level] of MOUNT_OPTION_TABLE) {
      const c = ALL_CASES.find((x) => x.id === `config.mounts.option.${name}`);
      assert.ok(c, `no case for ${name}`);
      assert.equal(c.level, level, name);
    }
  });

  test("known failures name existing cases and explain them", () => {
    const ids = new Set(ALL_CASES.map((c) => c.id));
    for (const [rt, list] of Object.entries(KNOWN_FAILURES)) {
      for (const [id, why] of Object.entries(list)) {
        assert.ok(ids.has(id), `${rt}: ${id} is not a case`);
        assert.ok(why.length > 20, `${rt}: ${id} has no explanation`);
      }
    }
  });
});

describe("harness", () => {
  test("arguments", () => {
    const o = parseArgs(["--runtime", "bin/tsrun", "--runtime=crun=spec-tests/wrappers/crun-v2", "--filter", "config.hostname,runtime.", "--level", "should", "--out", "m.md", "--jobs", "3"]);
    assert.deepEqual(o.runtimes, ["bin/tsrun", "crun=spec-tests/wrappers/crun-v2"]);
    assert.deepEqual(o.filters, ["config.hostname", "runtime."]);
    assert.equal(o.level, "SHOULD");
    assert.equal(o.out, "m.md");
    assert.equal(o.jobs, 3);
    assert.throws(() => parseArgs([]), UsageError);
    assert.throws(() => parseArgs(["--runtime", "x", "--level", "often"]), UsageError);
    assert.throws(() => parseArgs(["--runtime", "x", "--bogus"]), UsageError);
    assert.equal(levelSelected("MUST", "MUST"), true);
    assert.equal(levelSelected("SHOULD", "MUST"), false);
    assert.equal(levelSelected("MAY", "MAY"), true);
    assert.equal(filterSelected("config.hostname", ["hostname"]), true);
    assert.equal(filterSelected("config.domainname", ["hostname"]), false);
  });

  const cases: Case[] = [
    { id: "a.pass", spec: "config.md#hostname", level: "MUST", title: "a", steps: [] },
    { id: "b.fail", spec: "runtime.md#kill", level: "MUST", title: "b", steps: [] },
    { id: "c.skip", spec: "config-linux.md#intelrdt", level: "SHOULD", title: "c", steps: [] },
  ];
  const results: CaseResult[] = [
    { id: "a.pass", level: "MUST", status: "pass", ms: 1 },
    { id: "b.fail", level: "MUST", status: "fail", reason: "step 2 (kill): expected an error | with a pipe", ms: 1 },
    { id: "c.skip", level: "SHOULD", status: "skip", reason: "no resctrl # here", ms: 1 },
  ];

  test("TAP: a subtest per runtime, directives, and the closing count line", () => {
    const lines: string[] = [];
    const tap = new TapWriter((l) => lines.push(l), 1);
    tap.begin("rt", 3);
    cases.forEach((c, i) => tap.result(c, results[i]!, c.id === "b.fail" ? "a known bug" : undefined));
    tap.end("rt", results, true);
    assert.equal(lines[0], "TAP version 14");
    assert.ok(lines.includes("    1..3"));
    assert.ok(lines.includes("    ok 1 - a.pass [MUST] config.md#hostname"));
    assert.ok(lines.includes("    not ok 2 - b.fail [MUST] runtime.md#kill # TODO known failure: a known bug"));
    assert.ok(lines.includes("    ok 3 - c.skip [SHOULD] config-linux.md#intelrdt # SKIP no resctrl \\# here"));
    assert.equal(lines[lines.length - 2], "not ok 1 - rt");
    assert.equal(lines[lines.length - 1], "rt: 1 passed, 1 failed, 1 skipped");
    assert.equal(summaryLine("tsrun", results), "tsrun: 1 passed, 1 failed, 1 skipped");
  });

  test("the matrix: a row per case, a column per runtime, reasons as notes", () => {
    const md = matrixMarkdown({
      command: "npm run spec-tests -- --runtime rt",
      generated: "2025-01-01",
      host: "a host",
      cases,
      runtimes: [{ name: "rt", command: "/bin/rt", version: "rt 1", results, known: { "b.fail": "a known bug" } }],
    });
    assert.match(md, /\| rt \| rt 1 \| 1 \| 1 \| 1 \| 1 \| 0 \|/);
    assert.match(md, /\| `a\.pass` \| MUST \| \[config\.md#hostname\]\(https:\/\/github\.com\/opencontainers\/runtime-spec\/blob\/v1\.2\.1\/config\.md#hostname\) \| ok \|/);
    assert.match(md, /\| `b\.fail` \| MUST \| .* \| \*\*not ok\*\* \[1\]\(#n1\) \|/);
    assert.match(md, /\| `c\.skip` \| SHOULD \| .* \| skip \[2\]\(#n2\) \|/);
    assert.match(md, /1\. <a id="n1"><\/a>rt fails b\.fail: step 2 \(kill\): expected an error \\\| with a pipe — \*\*Why:\*\* a known bug/);
    assert.match(md, /rt: 1 passed, 1 failed, 1 skipped/);
  });
});
