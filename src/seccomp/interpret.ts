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
const ALU_OPS: readonly number[] = [BPF.ADD, BPF.SUB, BPF.MUL, BPF.DIV, BPF.OR, BPF.AND, BPF.LSH, BPF.RSH, BPF.NEG, BPF.MOD, BPF.XOR];
const COND_JUMPS: readonly number[] = [BPF.JEQ, BPF.JGT, BPF.JGE, BPF.JSET];
const RET_SOURCES: readonly number[] = [BPF.K, BPF.A];
const MISC_OPS: readonly number[] = [BPF.TAX, BPF.TXA];

// Throws the reason the kernel would refuse the program with, if any.
export function checkProgram(insns: readonly Insn[]): void {
  if (insns.length === 0 || insns.length > BPF_MAXINSNS) throw new Error(`program length ${insns.length} is not in 1..${BPF_MAXINSNS}`);
  insns.forEach((x, pc) => {
    const bad = (why: string) => new Error(`instruction ${pc} (code 0x${x.code.toString(16)}): ${why}`);
    switch (cls(x.code)) {
      case BPF.LD:
      case BPF.LDX: {
        const mode = x.code & 0xe0;
        const size = x.code & 0x18;
        if (cls(x.code) === BPF.LD && mode === BPF.ABS) {
          if (size !== BPF.W) throw bad("seccomp loads only 32-bit words");
          if (x.k % 4 !== 0 || x.k >= SECCOMP_DATA.SIZE) throw bad(`offset ${x.k} is not an aligned word of seccomp_data`);
        } else if (mode === BPF.MEM) {
          if (x.k >= BPF_MEMWORDS) throw bad("scratch memory index out of range");
        } else if (!(mode === BPF.IMM || (mode === BPF.LEN && size === BPF.W))) {
          throw bad("load mode not allowed in seccomp");
        }
        break;
      }
      case BPF.ST:
      case BPF.STX:
        if (x.k >= BPF_MEMWORDS) throw bad("scratch memory index out of range");
        break;
      case BPF.ALU: {
        const op = x.code & 0xf0;
        if (!ALU_OPS.includes(op)) throw bad("unknown alu op");
        if ((op === BPF.DIV || op === BPF.MOD) && (x.code & BPF.X) === 0 && x.k === 0) throw bad("division by constant zero");
        if ((op === BPF.LSH || op === BPF.RSH) && (x.code & BPF.X) === 0 && x.k >= 32) throw bad("shift by 32 or more");
        break;
      }
      case BPF.JMP: {
        const op = x.code & 0xf0;
        if (op === BPF.JA) {
          if (pc + 1 + x.k >= insns.length) throw bad("jump out of the program");
        } else if (COND_JUMPS.includes(op)) {
          if (pc + 1 + x.jt >= insns.length || pc + 1 + x.jf >= insns.length) throw bad("jump out of the program");
        } else throw bad("unknown jump");
        break;
      }
      case BPF.RET:
        if (!RET_SOURCES.includes(x.code & 0x18)) throw bad("unknown ret source");
        break;
      case BPF.MISC:
        if (!MISC_OPS.includes(x.code & 0xf8)) throw bad("unknown misc op");
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
