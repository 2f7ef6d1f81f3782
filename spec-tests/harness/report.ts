// Output: TAP 14 on stdout (one subtest per runtime, then its closing count line), the side-by-side matrix
// as markdown, and the results as JSON for programs.
import type { Case, CaseResult } from "./case";

export const SPEC_BASE = "https://github.com/opencontainers/runtime-spec/blob/v1.2.1/";

export interface RuntimeReport {
  name: string;
  command: string;
  version: string; // first line of `--version`
  results: CaseResult[];
  known: Record<string, string>; // case id -> explanation of a known failure
}

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

export function counts(results: readonly CaseResult[]): Counts {
  return {
    passed: results.filter((r) => r.status === "pass").length,
    failed: results.filter((r) => r.status === "fail").length,
    skipped: results.filter((r) => r.status === "skip").length,
  };
}

// "tsrun: 120 passed, 3 failed, 5 skipped"
export function summaryLine(name: string, results: readonly CaseResult[]): string {
  const c = counts(results);
  return `${name}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

function tapEscape(s: string): string {
  return oneLine(s).replace(/#/g, "\\#");
}

// TAP for one runtime, as a TAP 14 subtest. Lines are produced as results arrive (in case order).
export class TapWriter {
  private n = 0;
  constructor(
    private readonly write: (line: string) => void,
    private readonly topIndex: number,
  ) {}

  begin(name: string, planned: number): void {
    if (this.topIndex === 1) this.write("TAP version 14");
    this.write(`# Subtest: ${name}`);
    this.write(`    1..${planned}`);
  }

  result(c: Case, r: CaseResult, known: string | undefined): void {
    this.n++;
    const desc = `${tapEscape(c.id)} [${c.level}] ${c.spec}`;
    if (r.status === "pass") {
      this.write(`    ok ${this.n} - ${desc}${known !== undefined ? ` # TODO listed as a known failure but passes: ${tapEscape(known)}` : ""}`);
    } else if (r.status === "skip") {
      this.write(`    ok ${this.n} - ${desc} # SKIP ${tapEscape(r.reason ?? "")}`);
    } else {
      this.write(`    not ok ${this.n} - ${desc}${known !== undefined ? ` # TODO known failure: ${tapEscape(known)}` : ""}`);
      this.write("      ---");
      this.write(`      message: ${JSON.stringify(oneLine(r.reason ?? ""))}`);
      this.write(`      level: ${c.level}`);
      this.write("      ...");
    }
  }

  diagnostic(text: string): void {
    for (const l of text.split("\n")) this.write(`    # ${l}`);
  }

  end(name: string, results: readonly CaseResult[], failedMust: boolean): void {
    this.write(`${failedMust ? "not ok" : "ok"} ${this.topIndex} - ${name}`);
    this.write(summaryLine(name, results));
  }
}

export function tapPlan(runtimes: number): string {
  return `1..${runtimes}`;
}

// --- the matrix -----------------------------------------------------------------------------------------------

export interface MatrixInput {
  command: string; // how to regenerate it
  generated: string; // date
  host: string; // one line about the host
  cases: readonly Case[];
  runtimes: readonly RuntimeReport[];
}

export function matrixMarkdown(m: MatrixInput): string {
  const out: string[] = [];
  out.push("## Summary", "");
  out.push("| runtime | version | passed | failed | skipped | MUST failed | SHOULD failed |", "|---|---|---|---|---|---|---|");
  for (const rt of m.runtimes) {
    const c = counts(rt.results);
    const failedAt = (lvl: string) => rt.results.filter((r) => r.status === "fail" && r.level === lvl).length;
    out.push(`| ${rt.name} | ${mdCell(rt.version)} | ${c.passed} | ${c.failed} | ${c.skipped} | ${failedAt("MUST")} | ${failedAt("SHOULD")} |`);
  }
  out.push("", "```", ...m.runtimes.map((rt) => summaryLine(rt.name, rt.results)), "```", "");
  out.push(`Generated ${m.generated} on ${m.host} by:`, "", "```sh", m.command, "```", "");

  const notes: string[] = [];
  const byRuntime = m.runtimes.map((rt) => new Map(rt.results.map((r) => [r.id, r])));
  out.push("## Matrix", "");
  out.push(`| case | level | spec | ${m.runtimes.map((r) => r.name).join(" | ")} |`);
  out.push(`|---|---|---|${m.runtimes.map(() => "---|").join("")}`);
  for (const c of m.cases) {
    const cells = m.runtimes.map((rt, i) => {
      const r = byRuntime[i]!.get(c.id);
      if (!r) return "";
      if (r.status === "pass") return "ok";
      const known = rt.known[c.id];
      const text = r.status === "fail" ? `${rt.name} fails ${c.id}: ${oneLine(r.reason ?? "")}${known ? ` — **Why:** ${oneLine(known)}` : ""}` : `${rt.name} skips ${c.id}: ${oneLine(r.reason ?? "")}`;
      notes.push(text);
      const ref = `[${notes.length}](#n${notes.length})`;
      return r.status === "fail" ? `**not ok** ${ref}` : `skip ${ref}`;
    });
    const [file, anchor] = c.spec.split("#");
    out.push(`| \`${c.id}\` | ${c.level} | [${c.spec}](${SPEC_BASE}${file ?? ""}${anchor ? `#${anchor}` : ""}) | ${cells.join(" | ")} |`);
  }
  out.push("", "## Notes", "");
  notes.forEach((n, i) => out.push(`${i + 1}. <a id="n${i + 1}"></a>${mdCell(n)}`));
  out.push("");
  return out.join("\n");
}

// The whole document: how to read it, then the matrix.
export function matrixDocument(m: MatrixInput, rules: number): string {
  const intro = [
    "# Conformance matrix",
    "",
    `Generated by \`spec-tests/\`: ${m.cases.length} cases for the ${rules} MUST and SHOULD sentences of runtime-spec v1.2.1 that bind a`,
    "Linux runtime (config.md, config-linux.md, runtime.md, runtime-linux.md, features.md; the table is `spec-tests/rules/`), run",
    "against each runtime through its command line only. See the README, \"Conformance (spec-tests)\", for what a case is.",
    "",
    "- **ok**: the case passed.",
    "- **not ok**: it failed; the note gives the step and what was seen. A **Why** is the reason recorded in",
    "  `spec-tests/known-failures.ts` (every tsrun failure has one).",
    "- **skip**: it cannot be observed on this host (the note says why), or the runtime refused a feature the spec lets it",
    "  leave out (\"refused\": create failed and left nothing behind — a runtime that accepts such a setting must apply it).",
    "",
  ];
  return [...intro, matrixMarkdown(m)].join("\n");
}

function mdCell(s: string): string {
  return oneLine(s).replace(/\|/g, "\\|").replace(/</g, "&lt;");
}

export function resultsJson(m: MatrixInput): string {
  return `${JSON.stringify(
    {
      generated: m.generated,
      host: m.host,
      command: m.command,
      cases: m.cases.map((c) => ({ id: c.id, level: c.level, spec: c.spec, title: c.title })),
      runtimes: m.runtimes.map((rt) => ({ name: rt.name, command: rt.command, version: rt.version, counts: counts(rt.results), results: rt.results, known: rt.known })),
    },
    null,
    2,
  )}\n`;
}
