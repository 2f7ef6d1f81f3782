// A classic-BPF assembler with labels, and the struct sock_filter encoding.
//
// Classic BPF jumps only forward, and a conditional jump reaches at most 255 instructions (jt/jf are u8).
// The assembler takes symbolic labels and, where a conditional target lies farther, routes that branch
// through a trampoline placed right after the jump: a BPF_JA (32-bit offset) to the target, or a copy of
// the target's `ret` when the target is one. Fixing one jump can push others out of range, so it repeats
// until every jump fits; each jump is fixed at most once per branch, so it terminates.
import { BPF, BPF_MAXINSNS, SOCK_FILTER_SIZE } from "./kernel";

export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export class Label {
  pos = -1;
  constructor(readonly name = "") {}
}

export type JumpOp = "jeq" | "jgt" | "jge" | "jset";

const JUMP_CODE: Record<JumpOp, number> = {
  jeq: BPF.JMP | BPF.JEQ | BPF.K,
  jgt: BPF.JMP | BPF.JGT | BPF.K,
  jge: BPF.JMP | BPF.JGE | BPF.K,
  jset: BPF.JMP | BPF.JSET | BPF.K,
};

type Item =
  | { kind: "stmt"; code: number; k: number }
  | { kind: "jmp"; code: number; k: number; t: Label; f: Label }
  | { kind: "ja"; target: Label }
  | { kind: "label"; label: Label };

const RET_K = BPF.RET | BPF.K;

export class Assembler {
  private items: Item[] = [];

  label(name = ""): Label {
    return new Label(name);
  }

  place(l: Label): this {
    this.items.push({ kind: "label", label: l });
    return this;
  }

  // A = seccomp_data word at `offset`
  load(offset: number): this {
    return this.stmt(BPF.LD | BPF.W | BPF.ABS, offset);
  }

  and(k: number): this {
    return this.stmt(BPF.ALU | BPF.AND | BPF.K, k);
  }

  ret(k: number): this {
    return this.stmt(RET_K, k);
  }

  jump(op: JumpOp, k: number, t: Label, f: Label): this {
    this.items.push({ kind: "jmp", code: JUMP_CODE[op], k: k >>> 0, t, f });
    return this;
  }

  ja(target: Label): this {
    this.items.push({ kind: "ja", target });
    return this;
  }

  private stmt(code: number, k: number): this {
    this.items.push({ kind: "stmt", code, k: k >>> 0 });
    return this;
  }

  // Resolves every label and returns the instructions.
  assemble(): Insn[] {
    for (;;) {
      this.layout();
      const far = new Set<number>();
      let pos = 0;
      this.items.forEach((it, idx) => {
        if (it.kind === "label") return;
        if (it.kind === "jmp") {
          const dt = distance(it.t, pos);
          const df = distance(it.f, pos);
          if (dt > 255 || df > 255) far.add(idx);
        } else if (it.kind === "ja") {
          distance(it.target, pos);
        }
        pos++;
      });
      if (far.size === 0) break;
      const next: Item[] = [];
      let at = 0;
      this.items.forEach((it, idx) => {
        if (it.kind !== "label") at++;
        if (!far.has(idx) || it.kind !== "jmp") {
          next.push(it);
          return;
        }
        const jt = distance(it.t, at - 1) > 255;
        const jf = distance(it.f, at - 1) > 255;
        const t = jt ? new Label("trampoline") : it.t;
        const f = jf ? new Label("trampoline") : it.f;
        next.push({ ...it, t, f });
        if (jt) next.push({ kind: "label", label: t }, this.trampoline(it.t));
        if (jf) next.push({ kind: "label", label: f }, this.trampoline(it.f));
      });
      this.items = next;
    }
    const out: Insn[] = [];
    for (const it of this.items) {
      const here = out.length;
      switch (it.kind) {
        case "label":
          break;
        case "stmt":
          out.push({ code: it.code, jt: 0, jf: 0, k: it.k });
          break;
        case "jmp":
          out.push({ code: it.code, jt: distance(it.t, here), jf: distance(it.f, here), k: it.k });
          break;
        case "ja":
          out.push({ code: BPF.JMP | BPF.JA, jt: 0, jf: 0, k: distance(it.target, here) });
          break;
      }
    }
    return out;
  }

  private layout(): void {
    let pos = 0;
    for (const it of this.items) {
      if (it.kind === "label") it.label.pos = pos;
      else pos++;
    }
  }

  // A jump to a `ret` becomes a copy of that ret (one instruction fewer on the path); otherwise a BPF_JA.
  private trampoline(target: Label): Item {
    const i = this.items.findIndex((it) => it.kind === "label" && it.label === target);
    for (let j = i + 1; j < this.items.length; j++) {
      const it = this.items[j]!;
      if (it.kind === "label") continue;
      if (it.kind === "stmt" && it.code === RET_K) return { kind: "stmt", code: RET_K, k: it.k };
      break;
    }
    return { kind: "ja", target };
  }
}

// Instructions to skip from the one at `pos` to reach `l`.
function distance(l: Label, pos: number): number {
  if (l.pos < 0) throw new Error(`seccomp: internal error: label ${l.name || "(unnamed)"} was never placed`);
  const d = l.pos - (pos + 1);
  if (d < 0) throw new Error(`seccomp: internal error: backward jump to ${l.name || "(unnamed)"}`);
  return d;
}

export function encode(insns: readonly Insn[]): Buffer {
  if (insns.length === 0 || insns.length > BPF_MAXINSNS) {
    throw new Error(`seccomp: the compiled filter has ${insns.length} instructions; the kernel accepts 1 to ${BPF_MAXINSNS}`);
  }
  const b = Buffer.alloc(insns.length * SOCK_FILTER_SIZE);
  insns.forEach((x, i) => {
    const o = i * SOCK_FILTER_SIZE;
    b.writeUInt16LE(x.code, o);
    b.writeUInt8(x.jt, o + 2);
    b.writeUInt8(x.jf, o + 3);
    b.writeUInt32LE(x.k >>> 0, o + 4);
  });
  return b;
}

export function decode(program: Buffer): Insn[] {
  if (program.length % SOCK_FILTER_SIZE !== 0) throw new Error(`seccomp: a program of ${program.length} bytes is not a whole number of instructions`);
  const out: Insn[] = [];
  for (let o = 0; o < program.length; o += SOCK_FILTER_SIZE) {
    out.push({ code: program.readUInt16LE(o), jt: program.readUInt8(o + 2), jf: program.readUInt8(o + 3), k: program.readUInt32LE(o + 4) });
  }
  return out;
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

// One line per instruction, for --debug and test failures.
export function disassemble(insns: readonly Insn[]): string[] {
  return insns.map((x, i) => {
    const cls = x.code & 0x07;
    let text: string;
    if (x.code === (BPF.LD | BPF.W | BPF.ABS)) text = `ld [${x.k}]`;
    else if (x.code === (BPF.ALU | BPF.AND | BPF.K)) text = `and #${hex(x.k)}`;
    else if (x.code === RET_K) text = `ret #${hex(x.k)}`;
    else if (x.code === (BPF.JMP | BPF.JA)) text = `ja ${i + 1 + x.k}`;
    else if (cls === BPF.JMP) {
      const op = ({ [BPF.JEQ]: "jeq", [BPF.JGT]: "jgt", [BPF.JGE]: "jge", [BPF.JSET]: "jset" } as Record<number, string>)[x.code & 0xf0] ?? `jmp?${hex(x.code)}`;
      text = `${op} #${hex(x.k)} ${i + 1 + x.jt} ${i + 1 + x.jf}`;
    } else text = `code=${hex(x.code)} jt=${x.jt} jf=${x.jf} k=${hex(x.k)}`;
    return `${String(i).padStart(4)}: ${text}`;
  });
}
