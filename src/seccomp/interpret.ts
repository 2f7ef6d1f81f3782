// A classic-BPF interpreter for seccomp programs, for tests: checks a program as the kernel does when it is
// loaded (bpf_check_classic + seccomp_check_filter) and runs it on a struct seccomp_data, returning the
// 32-bit action and how many instructions ran.
import { type Insn, decode } from "./bpf";
import { BPF, BPF_MAXINSNS, BPF_MEMWORDS, SECCOMP_DATA } from "./kernel";

export interface SeccompData {
  nr: number; // as the kernel stores it: a u32 view of the int
  arch: number;
  instructionPointer?: bigint;
  args?: readonly bigint[]; // up to 6 u64 values
}

export interface RunResult {
  action: number; // u32
  steps: number; // instructions executed
}

const cls = (code: number) => code & 0x07;

// The instructions seccomp_check_filter() lets through (after bpf_check_classic), by code.
const ALLOWED = new Set<number>([
  BPF.LD | BPF.W | BPF.ABS, // checked below: an aligned word of seccomp_data
  BPF.LD | BPF.W | BPF.LEN,
  BPF.LDX | BPF.W | BPF.LEN,
  BPF.LD | BPF.IMM,
  BPF.LDX | BPF.IMM,
  BPF.LD | BPF.MEM,
  BPF.LDX | BPF.MEM,
  BPF.ST,
  BPF.STX,
  BPF.RET | BPF.K,
  BPF.RET | BPF.A,
  BPF.MISC | BPF.TAX,
  BPF.MISC | BPF.TXA,
  BPF.ALU | BPF.NEG,
  BPF.JMP | BPF.JA,
  ...[BPF.ADD, BPF.SUB, BPF.MUL, BPF.DIV, BPF.OR, BPF.AND, BPF.LSH, BPF.RSH, BPF.MOD, BPF.XOR].flatMap((op) => [BPF.ALU | op | BPF.K, BPF.ALU | op | BPF.X]),
  ...[BPF.JEQ, BPF.JGT, BPF.JGE, BPF.JSET].flatMap((op) => [BPF.JMP | op | BPF.K, BPF.JMP | op | BPF.X]),
]);

// Throws the reason the kernel would refuse the program with, if any.
export function checkProgram(insns: readonly Insn[]): void {
  if (insns.length === 0 || insns.length > BPF_MAXINSNS) throw new Error(`program length ${insns.length} is not in 1..${BPF_MAXINSNS}`);
  insns.forEach((x, pc) => {
    const bad = (why: string) => new Error(`instruction ${pc} (code 0x${x.code.toString(16)}): ${why}`);
    if (!ALLOWED.has(x.code)) {
      throw bad(cls(x.code) === BPF.LD && (x.code & 0xe0) === BPF.ABS ? "seccomp loads only 32-bit words" : "instruction not allowed in a seccomp filter");
    }
    const op = x.code & 0xf0;
    switch (cls(x.code)) {
      case BPF.LD:
        if ((x.code & 0xe0) === BPF.ABS && (x.k % 4 !== 0 || x.k >= SECCOMP_DATA.SIZE)) throw bad(`offset ${x.k} is not an aligned word of seccomp_data`);
        if ((x.code & 0xe0) === BPF.MEM && x.k >= BPF_MEMWORDS) throw bad("scratch memory index out of range");
        break;
      case BPF.LDX:
        if ((x.code & 0xe0) === BPF.MEM && x.k >= BPF_MEMWORDS) throw bad("scratch memory index out of range");
        break;
      case BPF.ST:
      case BPF.STX:
        if (x.k >= BPF_MEMWORDS) throw bad("scratch memory index out of range");
        break;
      case BPF.ALU:
        if ((op === BPF.DIV || op === BPF.MOD) && (x.code & BPF.X) === 0 && x.k === 0) throw bad("division by constant zero");
        if ((op === BPF.LSH || op === BPF.RSH) && (x.code & BPF.X) === 0 && x.k >= 32) throw bad("shift by 32 or more");
        break;
      case BPF.JMP:
        if (op === BPF.JA ? pc + 1 + x.k >= insns.length : pc + 1 + x.jt >= insns.length || pc + 1 + x.jf >= insns.length) throw bad("jump out of the program");
        break;
    }
  });
  if (cls(insns[insns.length - 1]!.code) !== BPF.RET) throw new Error("the program does not end with ret");
}

function dataWord(d: SeccompData, off: number): number {
  if (off === SECCOMP_DATA.NR) return d.nr >>> 0;
  if (off === SECCOMP_DATA.ARCH) return d.arch >>> 0;
  const u64 = off < SECCOMP_DATA.ARGS ? (d.instructionPointer ?? 0n) : (d.args?.[(off - SECCOMP_DATA.ARGS) >> 3] ?? 0n);
  const word = (off & 4) === 0 ? u64 : u64 >> 32n; // little-endian
  return Number(word & 0xffffffffn);
}

export function run(program: Buffer | readonly Insn[], d: SeccompData): RunResult {
  const insns = Buffer.isBuffer(program) ? decode(program) : program;
  checkProgram(insns);
  let A = 0;
  let X = 0;
  const M = new Array<number>(BPF_MEMWORDS).fill(0);
  let steps = 0;
  for (let pc = 0; pc < insns.length; pc++) {
    const x = insns[pc]!;
    steps++;
    const src = (x.code & BPF.X) !== 0 ? X : x.k;
    switch (cls(x.code)) {
      case BPF.LD:
        switch (x.code & 0xe0) {
          case BPF.ABS:
            A = dataWord(d, x.k);
            break;
          case BPF.IMM:
            A = x.k >>> 0;
            break;
          case BPF.MEM:
            A = M[x.k]!;
            break;
          case BPF.LEN:
            A = SECCOMP_DATA.SIZE;
            break;
        }
        break;
      case BPF.LDX:
        switch (x.code & 0xe0) {
          case BPF.IMM:
            X = x.k >>> 0;
            break;
          case BPF.MEM:
            X = M[x.k]!;
            break;
          case BPF.LEN:
            X = SECCOMP_DATA.SIZE;
            break;
        }
        break;
      case BPF.ST:
        M[x.k] = A;
        break;
      case BPF.STX:
        M[x.k] = X;
        break;
      case BPF.ALU:
        switch (x.code & 0xf0) {
          case BPF.ADD:
            A = (A + src) >>> 0;
            break;
          case BPF.SUB:
            A = (A - src) >>> 0;
            break;
          case BPF.MUL:
            A = Math.imul(A, src) >>> 0;
            break;
          case BPF.DIV:
            if (src === 0) return { action: 0, steps };
            A = Math.floor(A / src) >>> 0;
            break;
          case BPF.MOD:
            if (src === 0) return { action: 0, steps };
            A = A % src >>> 0;
            break;
          case BPF.OR:
            A = (A | src) >>> 0;
            break;
          case BPF.AND:
            A = (A & src) >>> 0;
            break;
          case BPF.XOR:
            A = (A ^ src) >>> 0;
            break;
          case BPF.LSH:
            A = src >= 32 ? 0 : (A << src) >>> 0;
            break;
          case BPF.RSH:
            A = src >= 32 ? 0 : A >>> src;
            break;
          case BPF.NEG:
            A = -A >>> 0;
            break;
        }
        break;
      case BPF.JMP: {
        const op = x.code & 0xf0;
        if (op === BPF.JA) {
          pc += x.k;
          break;
        }
        let taken: boolean;
        if (op === BPF.JEQ) taken = A === src >>> 0;
        else if (op === BPF.JGT) taken = A > src >>> 0;
        else if (op === BPF.JGE) taken = A >= src >>> 0;
        else taken = (A & src) !== 0;
        pc += taken ? x.jt : x.jf;
        break;
      }
      case BPF.RET:
        return { action: ((x.code & 0x18) === BPF.A ? A : x.k) >>> 0, steps };
      case BPF.MISC:
        if ((x.code & 0xf8) === BPF.TXA) A = X;
        else X = A;
        break;
    }
  }
  throw new Error("the program ran off its end");
}
