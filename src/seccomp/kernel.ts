// The kernel ABI a seccomp filter is written against: classic BPF opcodes (linux/bpf_common.h,
// linux/filter.h), seccomp return values and flags (linux/seccomp.h), AUDIT_ARCH_* (linux/audit.h) and the
// layout of struct seccomp_data.

// ---- classic BPF (struct sock_filter: u16 code, u8 jt, u8 jf, u32 k)
export const BPF = {
  // instruction classes
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  STX: 0x03,
  ALU: 0x04,
  JMP: 0x05,
  RET: 0x06,
  MISC: 0x07,
  // ld/ldx sizes and modes
  W: 0x00,
  H: 0x08,
  B: 0x10,
  IMM: 0x00,
  ABS: 0x20,
  IND: 0x40,
  MEM: 0x60,
  LEN: 0x80,
  MSH: 0xa0,
  // alu operations
  ADD: 0x00,
  SUB: 0x10,
  MUL: 0x20,
  DIV: 0x30,
  OR: 0x40,
  AND: 0x50,
  LSH: 0x60,
  RSH: 0x70,
  NEG: 0x80,
  MOD: 0x90,
  XOR: 0xa0,
  // jumps
  JA: 0x00,
  JEQ: 0x10,
  JGT: 0x20,
  JGE: 0x30,
  JSET: 0x40,
  // operand source
  K: 0x00,
  X: 0x08,
  // ret source
  A: 0x10,
  // misc
  TAX: 0x00,
  TXA: 0x80,
} as const;

export const BPF_MAXINSNS = 4096;
export const BPF_MEMWORDS = 16;
export const SOCK_FILTER_SIZE = 8;

// ---- seccomp return values: action in the high 16 bits, data in the low 16
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;
export const SECCOMP_RET_DATA = 0x0000ffff;

// ---- seccomp(SECCOMP_SET_MODE_FILTER, flags, …)
export const SECCOMP_FILTER_FLAG = {
  TSYNC: 1 << 0,
  LOG: 1 << 1,
  SPEC_ALLOW: 1 << 2,
  NEW_LISTENER: 1 << 3,
  TSYNC_ESRCH: 1 << 4,
  WAIT_KILLABLE_RECV: 1 << 5,
} as const;

// ---- AUDIT_ARCH_*: EM_* | __AUDIT_ARCH_64BIT (0x80000000) | __AUDIT_ARCH_LE (0x40000000)
export const AUDIT_ARCH = {
  X86_64: 0xc000003e, // EM_X86_64 62, also x32's
  I386: 0x40000003, // EM_386 3
  AARCH64: 0xc00000b7, // EM_AARCH64 183
  ARM: 0x40000028, // EM_ARM 40
} as const;

// x32 system calls arrive with AUDIT_ARCH_X86_64 and this bit set in the number.
export const X32_SYSCALL_BIT = 0x40000000;

// ---- struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
export const SECCOMP_DATA = {
  NR: 0,
  ARCH: 4,
  IP: 8,
  ARGS: 16,
  SIZE: 64,
} as const;

export const ENOSYS = 38;
export const EPERM = 1;
