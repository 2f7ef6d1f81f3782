// Message types and op codes: declared in src/plan/protocol.ts (this module keeps the old import path).
export { Msg, Op, opName } from "./protocol";
export type { OpCode, OpName } from "./protocol";
