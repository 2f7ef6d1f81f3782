// tsrun's seccomp compiler: an OCI `linux.seccomp` profile -> a classic BPF program for seccomp(2).
//
// The program:
//       ld [arch]
//       jeq AUDIT_ARCH_<native>, N, …      one test per covered arch token, native first
//       ret KILL_PROCESS                   an arch not covered (libseccomp's "bad arch" action)
//   N:  ld [nr]
//       binary search over the syscall numbers: jge tests down to one interval, then its body
//
// For each covered token, the numbers [0, 2^32) are cut into intervals that behave alike: a syscall with
// rules is an interval of its own; the numbers between listed syscalls take the default action; numbers
// above the highest syscall the profile names for that arch return ENOSYS (what runc patches into its
// filters so that programs fall back from syscalls newer than the profile, unless the default already lets
// them through); under AUDIT_ARCH_X86_64, [0, 2^30) is x86_64's and [2^30, 2^32) x32's (__X32_SYSCALL_BIT
// set), and the half of an ABI that is not covered gets the bad-arch action, so an x86_64 filter never lets
// x32 calls through. Adjacent intervals with the same unconditional action are merged, so Docker's default
// profile (about 350 names) becomes a few dozen intervals: a cheap syscall runs ~10 instructions, not a
// linear chain of hundreds.
//
// A syscall's rules are tried in profile order and the first whose conditions all hold gives the action;
// if none does, the default action. Arguments are compared as unsigned 64-bit values (high word, then low
// word); on 32-bit ABIs only the low word, as libseccomp does.
import type { LinuxSeccomp, SeccompArch } from "../spec/schema";
import { type ArchDef, nativeArch } from "./arch";
import { Assembler, type Label, encode } from "./bpf";
import { ENOSYS, SECCOMP_DATA, SECCOMP_RET } from "./kernel";
import { type Condition, type Profile, type Rule, checkProfile } from "./profile";
import { SYSCALL_TABLES, TABLES_ID } from "./syscalls";

// Part of the cache key: bump when the generated code changes for the same input.
export const COMPILER_VERSION = `tsrun-seccomp-1/${TABLES_ID}`;

export const BAD_ARCH_ACTION = SECCOMP_RET.KILL_PROCESS;
const ENOSYS_ACTION = (SECCOMP_RET.ERRNO | ENOSYS) >>> 0;

export interface Compiled {
  program: Buffer; // struct sock_filter[], little-endian
  flags: number; // SECCOMP_FILTER_FLAG_*
  skipped: { arch: SeccompArch; names: string[] }[]; // names unknown on an arch, left out
  unsupportedArches: SeccompArch[]; // listed, but tsrun has no table (the kernel here never reports them)
  listener?: { path: string; metadata?: string }; // where the notify fd goes (SCMP_ACT_NOTIFY)
}

export interface CompileOptions {
  native?: SeccompArch; // default: this machine's
  where?: string; // JSON path prefix for errors, default "config.json: linux.seccomp"
}

type Body = { kind: "ret"; action: number } | { kind: "rules"; rules: Rule[]; fallback: number };

interface Interval {
  lo: number; // [lo, hi)
  hi: number;
  body: Body;
}

export function compile(profile: LinuxSeccomp, o: CompileOptions = {}): Compiled {
  const native = o.native ?? nativeArch();
  const p = checkProfile(profile, native, o.where);
  const skipped: Compiled["skipped"] = [];
  const asm = new Assembler();

  // Arch tokens, native first; x86_64 and x32 share one.
  const tokens: { token: number; arches: ArchDef[] }[] = [];
  for (const a of p.arches) {
    const t = tokens.find((x) => x.token === a.token);
    if (t) t.arches.push(a);
    else tokens.push({ token: a.token, arches: [a] });
  }
  const entry = tokens.map((t) => ({ ...t, label: asm.label(`arch 0x${t.token.toString(16)}`) }));

  asm.load(SECCOMP_DATA.ARCH);
  for (const t of entry) {
    const next = asm.label();
    asm.jump("jeq", t.token, t.label, next).place(next);
  }
  asm.ret(BAD_ARCH_ACTION);

  for (const t of entry) {
    const intervals: Interval[] = [];
    for (const a of t.arches) {
      const unknown = new Set<string>();
      intervals.push(...archIntervals(a, p, unknown));
      if (unknown.size) skipped.push({ arch: a.name, names: [...unknown].sort() });
    }
    asm.place(t.label).load(SECCOMP_DATA.NR);
    emitTree(asm, mergeIntervals(fillGaps(intervals)), t.arches);
  }

  return {
    program: encode(asm.assemble()),
    flags: p.flags,
    skipped,
    unsupportedArches: p.unsupportedArches,
    ...(p.listener ? { listener: p.listener } : {}),
  };
}

function syscallNumber(arch: ArchDef, name: string): number | undefined {
  return SYSCALL_TABLES[arch.table].get(name);
}

// The intervals of one ABI, covering [arch.lo, arch.hi).
function archIntervals(arch: ArchDef, p: Profile, unknown: Set<string>): Interval[] {
  const rulesByNr = new Map<number, Rule[]>();
  for (const e of p.entries) {
    for (const name of e.names) {
      const nr = syscallNumber(arch, name);
      if (nr === undefined) {
        unknown.add(name);
        continue;
      }
      let list = rulesByNr.get(nr);
      if (!list) rulesByNr.set(nr, (list = []));
      if (list.some((r) => r.conditions.length === 0)) continue; // unreachable after an unconditional rule
      list.push(...e.rules);
    }
  }
  const out: Interval[] = [];
  const fill = (lo: number, hi: number, action: number) => {
    if (lo < hi) out.push({ lo, hi, body: { kind: "ret", action } });
  };
  let cursor = arch.lo;
  const nrs = [...rulesByNr.keys()].sort((a, b) => a - b);
  for (const nr of nrs) {
    fill(cursor, nr, p.defaultAction);
    out.push({ lo: nr, hi: nr + 1, body: bodyOf(rulesByNr.get(nr)!, p.defaultAction) });
    cursor = nr + 1;
  }
  // Above the highest syscall the profile names: ENOSYS (runc's patch), when there is one to name.
  fill(cursor, arch.hi, p.enosys && nrs.length > 0 ? ENOSYS_ACTION : p.defaultAction);
  return out;
}

function bodyOf(rules: Rule[], fallback: number): Body {
  const first = rules[0]!;
  if (first.conditions.length === 0) return { kind: "ret", action: first.action };
  const cut = rules.findIndex((r) => r.conditions.length === 0);
  const tried = cut < 0 ? rules : rules.slice(0, cut + 1);
  if (tried.every((r) => r.action === fallback)) return { kind: "ret", action: fallback };
  return { kind: "rules", rules: tried, fallback };
}

// Under a shared token, the half of the number space no covered ABI owns gets the bad-arch action.
function fillGaps(intervals: Interval[]): Interval[] {
  const sorted = [...intervals].sort((a, b) => a.lo - b.lo);
  const out: Interval[] = [];
  let cursor = 0;
  for (const iv of sorted) {
    if (iv.lo > cursor) out.push({ lo: cursor, hi: iv.lo, body: { kind: "ret", action: BAD_ARCH_ACTION } });
    out.push(iv);
    cursor = iv.hi;
  }
  if (cursor < 2 ** 32) out.push({ lo: cursor, hi: 2 ** 32, body: { kind: "ret", action: BAD_ARCH_ACTION } });
  return out;
}

function mergeIntervals(intervals: Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const iv of intervals) {
    const last = out[out.length - 1];
    if (last && last.body.kind === "ret" && iv.body.kind === "ret" && last.body.action === iv.body.action && last.hi === iv.lo) last.hi = iv.hi;
    else out.push({ ...iv });
  }
  return out;
}

// Binary search: each jge halves the intervals; the leaves are the bodies.
function emitTree(asm: Assembler, iv: Interval[], arches: ArchDef[]): void {
  const walk = (i: number, j: number) => {
    if (j - i === 1) {
      emitBody(asm, iv[i]!, arches);
      return;
    }
    const m = (i + j) >> 1;
    const left = asm.label();
    const right = asm.label();
    asm.jump("jge", iv[m]!.lo, right, left).place(left);
    walk(i, m);
    asm.place(right);
    walk(m, j);
  };
  walk(0, iv.length);
}

function emitBody(asm: Assembler, iv: Interval, arches: ArchDef[]): void {
  const b = iv.body;
  if (b.kind === "ret") {
    asm.ret(b.action);
    return;
  }
  const arch = arches.find((a) => iv.lo >= a.lo && iv.lo < a.hi)!;
  for (const r of b.rules) {
    const next = asm.label();
    for (const c of r.conditions) emitCondition(asm, c, arch.bits, next);
    asm.ret(r.action);
    asm.place(next);
  }
  asm.ret(b.fallback);
}

const lo32 = (v: bigint) => Number(v & 0xffffffffn);
const hi32 = (v: bigint) => Number((v >> 32n) & 0xffffffffn);

// Falls through when the condition holds, jumps to `fail` when it does not.
function emitCondition(asm: Assembler, c: Condition, bits: 32 | 64, fail: Label): void {
  const pass = asm.label();
  const loOff = SECCOMP_DATA.ARGS + 8 * c.index; // little-endian: low word first
  const hiOff = loOff + 4;
  const v = c.value;
  if (bits === 64) {
    const [vh, vl] = [hi32(v), lo32(v)];
    const lowWord = asm.label();
    switch (c.op) {
      case "SCMP_CMP_EQ":
        asm.load(hiOff).jump("jeq", vh, lowWord, fail).place(lowWord);
        asm.load(loOff).jump("jeq", vl, pass, fail);
        break;
      case "SCMP_CMP_NE":
        asm.load(hiOff).jump("jeq", vh, lowWord, pass).place(lowWord);
        asm.load(loOff).jump("jeq", vl, fail, pass);
        break;
      case "SCMP_CMP_GT":
      case "SCMP_CMP_GE": {
        const eq = asm.label();
        asm.load(hiOff).jump("jgt", vh, pass, eq).place(eq);
        // not above vh: equal to it, or below (a failure); with vh 0 it can only be equal
        if (vh !== 0) asm.jump("jeq", vh, lowWord, fail);
        asm.place(lowWord);
        asm.load(loOff).jump(c.op === "SCMP_CMP_GT" ? "jgt" : "jge", vl, pass, fail);
        break;
      }
      case "SCMP_CMP_LT":
      case "SCMP_CMP_LE": {
        const eq = asm.label();
        asm.load(hiOff).jump("jgt", vh, fail, eq).place(eq);
        if (vh !== 0) asm.jump("jeq", vh, lowWord, pass);
        asm.place(lowWord);
        // a < v  <=>  !(a >= v);  a <= v  <=>  !(a > v)
        asm.load(loOff).jump(c.op === "SCMP_CMP_LT" ? "jge" : "jgt", vl, fail, pass);
        break;
      }
      case "SCMP_CMP_MASKED_EQ": {
        const d = c.valueTwo;
        // (a_hi & 0) == 0 always holds: no high-word test
        if (vh !== 0 || hi32(d) !== 0) {
          asm.load(hiOff);
          if (vh !== 0xffffffff) asm.and(vh);
          asm.jump("jeq", hi32(d), lowWord, fail);
        }
        asm.place(lowWord);
        asm.load(loOff);
        if (vl !== 0xffffffff) asm.and(vl);
        asm.jump("jeq", lo32(d), pass, fail);
        break;
      }
    }
  } else {
    const vl = lo32(v);
    asm.load(loOff);
    switch (c.op) {
      case "SCMP_CMP_EQ":
        asm.jump("jeq", vl, pass, fail);
        break;
      case "SCMP_CMP_NE":
        asm.jump("jeq", vl, fail, pass);
        break;
      case "SCMP_CMP_GT":
        asm.jump("jgt", vl, pass, fail);
        break;
      case "SCMP_CMP_GE":
        asm.jump("jge", vl, pass, fail);
        break;
      case "SCMP_CMP_LT":
        asm.jump("jge", vl, fail, pass);
        break;
      case "SCMP_CMP_LE":
        asm.jump("jgt", vl, fail, pass);
        break;
      case "SCMP_CMP_MASKED_EQ":
        if (vl !== 0xffffffff) asm.and(vl);
        asm.jump("jeq", lo32(c.valueTwo), pass, fail);
        break;
    }
  }
  asm.place(pass);
}
