// REQUIRED properties (RFC 2119: the same as MUST) of config.md and config-linux.md. A config without one is
// invalid; config.md#valid-values: runtimes MUST generate an error when invalid values are encountered.
import { REQUIRED_FIELDS, requiredCaseId } from "../cases/config-required";
import type { Rule } from "./rule";

export const requiredRules: Rule[] = REQUIRED_FIELDS.map((f) => ({
  id: requiredCaseId(f.field),
  spec: f.spec,
  level: "MUST",
  text: `${f.field} (REQUIRED): a config without it is invalid, and invalid values MUST generate an error.`,
  cases: [requiredCaseId(f.field)],
}));
