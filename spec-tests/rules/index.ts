// The MUST and SHOULD sentences of runtime-spec v1.2.1 that bind a Linux runtime (config.md, config-linux.md,
// runtime.md, runtime-linux.md, features.md, features-linux.md), each mapped to the cases that test it, and
// the check that keeps the mapping whole. Sentences that bind other platforms (Windows, Solaris, z/OS, VMs),
// or only the author of a config or a consumer of features, are listed in NOT_RUNTIME_RULES with the reason.
import type { Case } from "../harness/case";
import { configRules } from "./config";
import { configLinuxRules } from "./config-linux";
import { featuresRules } from "./features";
import type { Rule } from "./rule";
import { requiredRules } from "./required";
import { runtimeRules } from "./runtime";

export type { Rule } from "./rule";
export { NOT_RUNTIME_RULES } from "./not-runtime";

export const ALL_RULES: readonly Rule[] = [...configRules, ...configLinuxRules, ...requiredRules, ...runtimeRules, ...featuresRules];

// Problems with the table: a rule without a case, a case id that does not exist, a MUST or SHOULD case that no
// rule names, duplicate ids. Empty when all is well.
export function checkCoverage(cases: readonly Case[], rules: readonly Rule[] = ALL_RULES): string[] {
  const problems: string[] = [];
  const caseIds = new Set<string>();
  for (const c of cases) {
    if (caseIds.has(c.id)) problems.push(`case ${c.id} is defined twice`);
    caseIds.add(c.id);
  }
  const ruleIds = new Set<string>();
  const covered = new Set<string>();
  for (const r of rules) {
    if (ruleIds.has(r.id)) problems.push(`rule ${r.id} is defined twice`);
    ruleIds.add(r.id);
    if (r.cases.length === 0) problems.push(`rule ${r.id} (${r.level}, ${r.spec}) has no case`);
    for (const id of r.cases) {
      if (!caseIds.has(id)) problems.push(`rule ${r.id} names case ${id}, which does not exist`);
      covered.add(id);
    }
  }
  for (const c of cases) {
    if (c.level !== "MAY" && !covered.has(c.id)) problems.push(`case ${c.id} (${c.level}) is named by no rule`);
  }
  return problems;
}
