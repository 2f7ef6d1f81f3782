// Encodes a plan in the wire format declared in src/plan/protocol.ts (native/helper/protocol.h).
import { type OpArgs, type OpCode, type PlanArg, opName } from "./protocol";

export type { PlanArg };

export interface PlanOp {
  code: OpCode;
  args: PlanArg[];
}

export class Plan {
  readonly ops: PlanOp[] = [];

  // Typed per op from its declared signature (the helper checks the same signature before it runs the op).
  add<C extends OpCode>(code: C, ...args: OpArgs<C>): this {
    this.ops.push({ code, args });
    return this;
  }

  // A counted list: the count, then the items.
  static list(items: readonly PlanArg[]): PlanArg[] {
    return [items.length, ...items];
  }

  encode(): Buffer {
    const parts: Buffer[] = [];
    const head = Buffer.alloc(4);
    head.writeUInt32LE(this.ops.length);
    parts.push(head);
    for (const op of this.ops) {
      const h = Buffer.alloc(4);
      h.writeUInt16LE(op.code, 0);
      h.writeUInt16LE(op.args.length, 2);
      parts.push(h);
      for (const a of op.args) {
        if (typeof a === "number" || typeof a === "bigint") {
          if (typeof a === "number" && !Number.isInteger(a)) throw new Error(`plan: ${opName(op.code)}: non-integer argument ${a}`);
          const b = Buffer.alloc(9);
          b.writeUInt8(0, 0);
          b.writeBigInt64LE(BigInt.asIntN(64, BigInt(a)), 1);
          parts.push(b);
        } else {
          const data = typeof a === "string" ? Buffer.from(a, "utf8") : a;
          if (typeof a === "string" && a.includes("\0")) throw new Error(`plan: ${opName(op.code)}: string argument contains a NUL byte`);
          const b = Buffer.alloc(5);
          b.writeUInt8(1, 0);
          b.writeUInt32LE(data.length, 1);
          parts.push(b, data);
        }
      }
    }
    return Buffer.concat(parts);
  }

  // For --debug: one line per op.
  describe(): string[] {
    return this.ops.map((op) => `${opName(op.code)}(${op.args.map((a) => (Buffer.isBuffer(a) ? `<${a.length} bytes>` : JSON.stringify(typeof a === "bigint" ? a.toString() : a))).join(", ")})`);
  }
}
