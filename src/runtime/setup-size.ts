// What one set-up message to tsrun-init can carry (wire format: src/plan/writer.ts, native/helper/io.cc): an
// op has at most 65535 arguments (a u16 count), a frame at most 64 MiB. A config or process.json beyond
// either is refused here, before anything is started, with one line naming the field, instead of Node's
// RangeError from the encoder or a frame the helper rejects.
import { TsrunError } from "../errors";
import { Op, opName } from "../plan/opcodes";
import type { Plan, PlanArg } from "../plan/writer";
import { MAX_FRAME } from "./channel";

const MAX_ARGS = 0xffff;

// The count that follows `at` in a counted list (Plan.list), and where the list ends.
function listAt(args: readonly PlanArg[], at: number): [count: number, end: number] {
  const n = args[at];
  const count = typeof n === "number" ? n : 0;
  return [count, at + 1 + count];
}

function tooManyArgs(code: number, args: readonly PlanArg[]): string {
  switch (code) {
    case Op.EXEC: {
      const [nargs, end] = listAt(args, 0);
      const [nenv] = listAt(args, end);
      return `too many process.args and process.env entries: ${nargs} args and ${nenv} env entries (at most ${MAX_ARGS - 2} in all)`;
    }
    case Op.SET_USER: {
      const [n] = listAt(args, 2);
      return `process.user.additionalGids: too many entries: ${n} (at most ${MAX_ARGS - 3})`;
    }
    case Op.HOOK: {
      const [nargs, end] = listAt(args, 2);
      const [nenv] = listAt(args, end);
      return `hooks: ${String(args[1])}: too many args and env entries: ${nargs} args and ${nenv} env entries (at most ${MAX_ARGS - 5} in all)`;
    }
    default:
      return `${opName(code)}: too many arguments: ${args.length} (at most ${MAX_ARGS})`;
  }
}

function argBytes(a: PlanArg): number {
  if (typeof a === "number" || typeof a === "bigint") return 9;
  return 5 + (typeof a === "string" ? Buffer.byteLength(a) : a.length);
}

const FIELD: Partial<Record<number, string>> = {
  [Op.EXEC]: "process.args and process.env",
  [Op.HOOK]: "hooks",
  [Op.HOSTNAME]: "hostname",
  [Op.DOMAINNAME]: "domainname",
};

// sethostname(2)/setdomainname(2) take at most 64 bytes (__NEW_UTS_LEN): refused here with the length,
// rather than as the helper's EINVAL line carrying the whole name.
const UTS_MAX = 64;

// The plan encoded, or a TsrunError naming what makes it too large.
export function encodeChecked(plan: Plan): Buffer {
  let total = 4;
  let largest = { code: -1, bytes: 0 };
  for (const op of plan.ops) {
    if (op.args.length > MAX_ARGS) throw new TsrunError(tooManyArgs(op.code, op.args));
    if (op.code === Op.HOSTNAME || op.code === Op.DOMAINNAME) {
      const n = typeof op.args[0] === "string" ? Buffer.byteLength(op.args[0]) : 0;
      if (n > UTS_MAX) throw new TsrunError(`config.json: ${FIELD[op.code]}: ${n} bytes, longer than the kernel takes (${UTS_MAX})`);
    }
    let bytes = 4;
    for (const a of op.args) bytes += argBytes(a);
    total += bytes;
    if (bytes > largest.bytes) largest = { code: op.code, bytes };
  }
  if (total + 4 > MAX_FRAME) {
    const what = FIELD[largest.code] ?? opName(largest.code);
    throw new TsrunError(`the container's set-up is too large: ${total} bytes, more than tsrun-init takes in one message (${MAX_FRAME}); the largest part is ${what} (${largest.bytes} bytes)`);
  }
  return plan.encode();
}
