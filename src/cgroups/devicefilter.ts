// The cgroup v2 device filter: a BPF_PROG_TYPE_CGROUP_DEVICE program generated from device rules, as
// runc's devices/devicefilter.go (after crun's ebpf.c), emitted as raw struct bpf_insn bytes for
// BPF_PROG_LOAD. The program reads struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }:
//   r2 = device type (low 16 bits of access_type), r3 = access (high 16 bits), r4 = major, r5 = minor,
// then one block per rule: if everything matches, return the rule's verdict, else fall to the next block;
// the last block returns the default.
import { DeviceEmulator, type DeviceRule, ruleString, WILDCARD } from "./devicerules";

export const LICENSE = "Apache";

// <linux/bpf.h>
const BPF_DEVCG_ACC_MKNOD = 1;
const BPF_DEVCG_ACC_READ = 2;
const BPF_DEVCG_ACC_WRITE = 4;
const BPF_DEVCG_DEV_BLOCK = 1;
const BPF_DEVCG_DEV_CHAR = 2;

// Opcodes: class | op | source.
const LDX_MEM_W = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JNE_K = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_EXIT = 0x95; // BPF_JMP | BPF_EXIT

export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number | "next"; // "next": the first instruction of the following block
  imm: number;
}

const insn = (code: number, dst: number, src: number, off: Insn["off"], imm: number): Insn => ({ code, dst, src, off, imm });

function ruleBlock(r: DeviceRule): Insn[] {
  if (r.type !== "b" && r.type !== "c") throw new Error(`device filter: invalid rule type ${JSON.stringify(r.type)}`);
  if (r.major > 0xffffffff) throw new Error(`device filter: invalid major ${r.major}`);
  if (r.minor > 0xffffffff) throw new Error(`device filter: invalid minor ${r.minor}`);
  let access = 0;
  for (const c of r.access) access |= c === "r" ? BPF_DEVCG_ACC_READ : c === "w" ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
  const out: Insn[] = [insn(JMP_JNE_K, 2, 0, "next", r.type === "b" ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR)];
  if (access !== (BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD)) {
    // r1 = r3 & access (r1 is scratch). An allow rule covers the request only if it grants all of it,
    // (r3 & access) == r3, as runc's program. A deny rule matches any overlap, (r3 & access) != 0: that
    // is v1's rule (match_exception_partial), where runc's program would let an O_RDWR open of a device
    // denied only "w" through.
    out.push(insn(ALU32_MOV_X, 1, 3, 0, 0), insn(ALU32_AND_K, 1, 0, 0, access));
    out.push(r.allow ? insn(JMP_JNE_X, 1, 3, "next", 0) : insn(JMP_JEQ_K, 1, 0, "next", 0));
  }
  if (r.major !== WILDCARD) out.push(insn(JMP_JNE_K, 4, 0, "next", r.major | 0));
  if (r.minor !== WILDCARD) out.push(insn(JMP_JNE_K, 5, 0, "next", r.minor | 0));
  out.push(insn(ALU32_MOV_K, 0, 0, 0, r.allow ? 1 : 0), insn(JMP_EXIT, 0, 0, 0, 0));
  return out;
}

// The program for a rule list, as instructions (for tests and debugging) and as bytes.
export function deviceFilter(rules: readonly DeviceRule[]): { insns: Insn[]; bytes: Buffer; defaultAllow: boolean } {
  // The emulator gives the same semantics as v1 (including its refusal of holes in wildcard rules).
  const emu = DeviceEmulator.fromRules(rules);
  const clean = emu.cleanRules();
  const blocks: Insn[][] = [
    [
      insn(LDX_MEM_W, 2, 1, 0, 0),
      insn(ALU32_AND_K, 2, 0, 0, 0xffff),
      insn(LDX_MEM_W, 3, 1, 0, 0),
      insn(ALU32_RSH_K, 3, 0, 0, 16),
      insn(LDX_MEM_W, 4, 1, 4, 0),
      insn(LDX_MEM_W, 5, 1, 8, 0),
    ],
  ];
  clean.forEach((r, i) => {
    if (r.type === "a") {
      // at most one, first, putting the cgroup in allow-list mode: it is the default below
      if (i !== 0 || r.allow !== emu.isBlacklist()) throw new Error(`device filter: internal error: bad wildcard rule at ${i} (${ruleString(r)})`);
      return;
    }
    if (r.allow === emu.isBlacklist()) throw new Error(`device filter: internal error: no-op rule at ${i} (${ruleString(r)})`);
    blocks.push(ruleBlock(r));
  });
  blocks.push([insn(ALU32_MOV_K, 0, 0, 0, emu.isBlacklist() ? 1 : 0), insn(JMP_EXIT, 0, 0, 0, 0)]);

  const insns: Insn[] = [];
  for (let b = 0; b < blocks.length; b++) {
    const nextStart = blocks.slice(0, b + 1).reduce((n, bl) => n + bl.length, 0);
    for (const i of blocks[b]!) insns.push(i.off === "next" ? { ...i, off: nextStart - (insns.length + 1) } : i);
  }
  const bytes = Buffer.alloc(insns.length * 8);
  insns.forEach((i, n) => {
    bytes.writeUInt8(i.code, n * 8);
    bytes.writeUInt8((i.dst & 0xf) | ((i.src & 0xf) << 4), n * 8 + 1);
    bytes.writeInt16LE(i.off as number, n * 8 + 2);
    bytes.writeInt32LE(i.imm | 0, n * 8 + 4);
  });
  return { insns, bytes, defaultAllow: emu.isBlacklist() };
}
