// One normative sentence of the runtime-spec (v1.2.1) and the cases that test it.
export interface Rule {
  id: string; // unique, e.g. "runtime.kill.not-running"
  spec: string; // file and anchor, e.g. "runtime.md#kill"
  level: "MUST" | "SHOULD";
  text: string; // the sentence, quoted or closely abridged
  cases: string[]; // case ids; at least one
  note?: string; // how the cases cover a rule that cannot be observed directly
}
