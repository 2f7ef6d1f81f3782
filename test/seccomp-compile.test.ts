// The seccomp compiler, checked by running its programs in the BPF interpreter: actions, 64-bit argument
// comparisons, rule order, architectures, x32, ENOSYS for new syscalls, long jumps, Docker's profile,
// validation errors, flags and the cache.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { Assembler, decode, disassemble, encode } from "../src/seccomp/bpf";
import { cacheKey, compileCached } from "../src/seccomp/cache";
import { type Compiled, compile } from "../src/seccomp/compile";
import { checkProgram, run } from "../src/seccomp/interpret";
import { AUDIT_ARCH, BPF, SECCOMP_RET, X32_SYSCALL_BIT } from "../src/seccomp/kernel";
import { SYSCALL_TABLES } from "../src/seccomp/syscalls";
import { type LinuxSeccomp, parseSpec } from "../src/spec/schema";
import { defaultSpec } from "../src/spec/default";

const X86_64 = AUDIT_ARCH.X86_64;
const nr = (name: string, table: "x86_64" | "x86" | "x32" | "aarch64" | "arm" = "x86_64") => {
  const n = SYSCALL_TABLES[table].get(name);
  if (n === undefined) throw new Error(`no ${name} on ${table}`);
  return n;
};
const errno = (e: number) => (SECCOMP_RET.ERRNO | e) >>> 0;
const EPERM = errno(1);
const ENOSYS = errno(38);

function exec(c: Compiled, name: string | number, args: bigint[] = [], arch: number = X86_64, table: "x86_64" | "x86" | "x32" | "aarch64" | "arm" = "x86_64") {
  return run(c.program, { nr: typeof name === "number" ? name : nr(name, table), arch, args });
}
const action = (c: Compiled, name: string | number, args: bigint[] = [], arch: number = X86_64) => exec(c, name, args, arch).action;
const hex = (n: number) => `0x${n.toString(16)}`;

const fixture = JSON.parse(fs.readFileSync(path.resolve(__dirname, "..", "..", "test", "fixtures", "docker-default-seccomp.json"), "utf8")) as LinuxSeccomp;

describe("seccomp compiler", () => {
  test("every action, as a rule and as the default; errnoRet and its defaults", () => {
    const rules: [string, LinuxSeccomp["defaultAction"], number | undefined, number][] = [
      ["getpid", "SCMP_ACT_KILL", undefined, SECCOMP_RET.KILL_THREAD],
      ["getppid", "SCMP_ACT_KILL_THREAD", undefined, SECCOMP_RET.KILL_THREAD],
      ["getuid", "SCMP_ACT_KILL_PROCESS", undefined, SECCOMP_RET.KILL_PROCESS],
      ["getgid", "SCMP_ACT_TRAP", undefined, SECCOMP_RET.TRAP],
      ["geteuid", "SCMP_ACT_ERRNO", undefined, EPERM],
      ["getegid", "SCMP_ACT_ERRNO", 99, errno(99)],
      ["getpgrp", "SCMP_ACT_TRACE", undefined, (SECCOMP_RET.TRACE | 1) >>> 0],
      ["getsid", "SCMP_ACT_TRACE", 7, (SECCOMP_RET.TRACE | 7) >>> 0],
      ["gettid", "SCMP_ACT_LOG", undefined, SECCOMP_RET.LOG],
      ["uname", "SCMP_ACT_NOTIFY", undefined, SECCOMP_RET.USER_NOTIF],
      ["sync", "SCMP_ACT_ALLOW", undefined, SECCOMP_RET.ALLOW],
    ];
    const c = compile(
      {
        defaultAction: "SCMP_ACT_ERRNO",
        defaultErrnoRet: 5,
        listenerPath: "/run/agent.sock",
        syscalls: rules.map(([name, a, e]) => ({ names: [name], action: a, ...(e !== undefined ? { errnoRet: e } : {}) })),
      },
      { native: "SCMP_ARCH_X86_64" },
    );
    for (const [name, , , want] of rules) assert.equal(hex(action(c, name)), hex(want), name);
    assert.equal(hex(action(c, "read")), hex(errno(5)), "the default, with defaultErrnoRet");
    for (const [def, want] of [
      ["SCMP_ACT_ALLOW", SECCOMP_RET.ALLOW],
      ["SCMP_ACT_KILL", SECCOMP_RET.KILL_THREAD],
      ["SCMP_ACT_KILL_PROCESS", SECCOMP_RET.KILL_PROCESS],
      ["SCMP_ACT_TRAP", SECCOMP_RET.TRAP],
      ["SCMP_ACT_ERRNO", EPERM],
      ["SCMP_ACT_TRACE", (SECCOMP_RET.TRACE | 1) >>> 0],
      ["SCMP_ACT_LOG", SECCOMP_RET.LOG],
    ] as const) {
      const d = compile({ defaultAction: def, syscalls: [{ names: ["getppid"], action: def === "SCMP_ACT_ALLOW" ? "SCMP_ACT_LOG" : "SCMP_ACT_ALLOW" }] }, { native: "SCMP_ARCH_X86_64" });
      assert.equal(hex(action(d, "write")), hex(want), def);
    }
  });

  test("argument operators compare unsigned 64-bit values (above 2^32 and 2^63 too)", () => {
    const thresholds = [0n, 1n, 5n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 32n + 1n, 3n * 2n ** 32n + 7n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];
    const probes = new Set<bigint>([0n, 2n ** 64n - 1n, 2n ** 63n - 1n, 2n ** 63n + 1n, 0xffffffffn, 0x1_0000_0005n, 5n << 32n]);
    for (const t of thresholds) for (const d of [-1n, 0n, 1n, 1n << 32n, -(1n << 32n)]) if (t + d >= 0n && t + d < 2n ** 64n) probes.add(t + d);
    const ops = {
      SCMP_CMP_EQ: (a: bigint, v: bigint) => a === v,
      SCMP_CMP_NE: (a: bigint, v: bigint) => a !== v,
      SCMP_CMP_LT: (a: bigint, v: bigint) => a < v,
      SCMP_CMP_LE: (a: bigint, v: bigint) => a <= v,
      SCMP_CMP_GT: (a: bigint, v: bigint) => a > v,
      SCMP_CMP_GE: (a: bigint, v: bigint) => a >= v,
    } as const;
    let checked = 0;
    for (const t of thresholds) {
      // as a JSON number: 2^64-1 is read as 2^64 and taken back to 2^64-1
      const value = t === 2n ** 64n - 1n ? JSON.parse("18446744073709551615") as number : Number(t);
      assert.equal(BigInt(value) === t || t === 2n ** 64n - 1n, true, `${t} is exact as a double`);
      for (const [op, ref] of Object.entries(ops)) {
        for (const index of [0, 3, 5]) {
          const c = compile({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["personality"], action: "SCMP_ACT_ERRNO", args: [{ index, value, op: op as keyof typeof ops }] }] }, { native: "SCMP_ARCH_X86_64" });
          for (const a of probes) {
            const args = [0n, 0n, 0n, 0n, 0n, 0n];
            args[index] = a;
            const want = ref(a, t) ? EPERM : SECCOMP_RET.ALLOW;
            assert.equal(hex(action(c, "personality", args)), hex(want), `arg${index}=${a} ${op} ${t}`);
            checked++;
          }
        }
      }
    }
    assert.ok(checked > 3000);
  });

  test("MASKED_EQ: (arg & value) == valueTwo, over both words; valueTwo defaults to 0", () => {
    const cases: [bigint, bigint][] = [
      [0xffff00000000ffffn, 0x1234000000005678n],
      [0x8000000000000000n, 0x8000000000000000n],
      [0xffffffffn, 0x7n],
      [0x700000000n, 0x100000000n],
      [2n ** 64n - 1n, 0x0123456789abcdefn],
    ];
    const probes = [0n, 0x1234000000005678n, 0x1234ffffffff5678n, 0x1235000000005678n, 0x8000000000000000n, 0xffffffffffffffffn, 0x7n, 0x100000007n, 0x100000000n, 0x300000000n, 0x0123456789abcdefn];
    for (const [mask, want] of cases) {
      const c = compile({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["ioctl"], action: "SCMP_ACT_ERRNO", args: [{ index: 1, value: Number(mask), valueTwo: Number(want), op: "SCMP_CMP_MASKED_EQ" }] }] }, { native: "SCMP_ARCH_X86_64" });
      const m = mask === 2n ** 64n - 1n ? mask : BigInt(Number(mask));
      const w = BigInt(Number(want));
      for (const a of probes) assert.equal(hex(action(c, "ioctl", [0n, a])), hex((a & m) === w ? EPERM : SECCOMP_RET.ALLOW), `${a.toString(16)} & ${m.toString(16)} == ${w.toString(16)}`);
    }
    // Docker's clone rule: no valueTwo, so (flags & CLONE_NEW*) == 0
    const c = compile({ defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 2114060288, op: "SCMP_CMP_MASKED_EQ" }] }] }, { native: "SCMP_ARCH_X86_64" });
    assert.equal(action(c, "clone", [0x11n]), SECCOMP_RET.ALLOW);
    assert.equal(action(c, "clone", [0x10000000n | 0x11n]), EPERM, "CLONE_NEWUSER");
  });

  test("conditions of a rule are ANDed; the same index twice is ORed (as runc); rules are tried in order", () => {
    const c = compile(
      {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [
          { names: ["kill"], action: "SCMP_ACT_ERRNO", errnoRet: 10, args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ" }, { index: 1, value: 9, op: "SCMP_CMP_EQ" }] },
          { names: ["kill"], action: "SCMP_ACT_ERRNO", errnoRet: 11, args: [{ index: 1, value: 9, op: "SCMP_CMP_EQ" }] },
          { names: ["kill"], action: "SCMP_ACT_ERRNO", errnoRet: 12 },
          { names: ["kill"], action: "SCMP_ACT_ERRNO", errnoRet: 13, args: [{ index: 1, value: 15, op: "SCMP_CMP_EQ" }] },
          { names: ["tgkill"], action: "SCMP_ACT_ERRNO", errnoRet: 20, args: [{ index: 2, value: 9, op: "SCMP_CMP_EQ" }, { index: 2, value: 15, op: "SCMP_CMP_EQ" }] },
        ],
      },
      { native: "SCMP_ARCH_X86_64" },
    );
    assert.equal(action(c, "kill", [1n, 9n]), errno(10), "both conditions of the first rule");
    assert.equal(action(c, "kill", [2n, 9n]), errno(11), "first rule fails on arg0: the second matches");
    assert.equal(action(c, "kill", [1n, 15n]), errno(12), "the unconditional third rule wins over the later fourth");
    assert.equal(action(c, "tgkill", [0n, 0n, 9n]), errno(20));
    assert.equal(action(c, "tgkill", [0n, 0n, 15n]), errno(20));
    assert.equal(action(c, "tgkill", [0n, 0n, 2n]), SECCOMP_RET.ALLOW);
    assert.equal(action(c, "getpid"), SECCOMP_RET.ALLOW);
  });

  test("names unknown on an arch are skipped and reported, never an error", () => {
    const c = compile(
      { defaultAction: "SCMP_ACT_ERRNO", architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], syscalls: [{ names: ["no_such_call", "chown32", "getppid", "newfstatat"], action: "SCMP_ACT_ALLOW" }] },
      { native: "SCMP_ARCH_X86_64" },
    );
    assert.deepEqual(c.skipped, [
      { arch: "SCMP_ARCH_X86_64", names: ["chown32", "no_such_call"] },
      { arch: "SCMP_ARCH_X86", names: ["newfstatat", "no_such_call"] },
    ]);
    assert.equal(action(c, "getppid"), SECCOMP_RET.ALLOW);
    assert.equal(exec(c, "chown32", [], AUDIT_ARCH.I386, "x86").action, SECCOMP_RET.ALLOW);
    const none = compile({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["no_such_call"], action: "SCMP_ACT_KILL" }] }, { native: "SCMP_ARCH_X86_64" });
    assert.equal(action(none, "read"), SECCOMP_RET.ALLOW);
  });

  test("architectures: the native one always, listed compat ones, bad arch kills the process", () => {
    const p: LinuxSeccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["getppid"], action: "SCMP_ACT_ERRNO" }] };
    const only = compile(p, { native: "SCMP_ARCH_X86_64" });
    assert.equal(action(only, "getppid"), EPERM);
    assert.equal(exec(only, "getppid", [], AUDIT_ARCH.I386, "x86").action, SECCOMP_RET.KILL_PROCESS, "i386 not listed");
    assert.equal(action(only, 0, [], AUDIT_ARCH.AARCH64), SECCOMP_RET.KILL_PROCESS);
    const compat = compile({ ...p, architectures: ["SCMP_ARCH_X86", "SCMP_ARCH_PPC64LE"] }, { native: "SCMP_ARCH_X86_64" });
    assert.deepEqual(compat.unsupportedArches, ["SCMP_ARCH_PPC64LE"]);
    assert.equal(exec(compat, "getppid", [], AUDIT_ARCH.I386, "x86").action, EPERM, "i386 getppid is 64");
    assert.equal(exec(compat, "getpid", [], AUDIT_ARCH.I386, "x86").action, SECCOMP_RET.ALLOW);
    assert.equal(action(compat, 0, [], 0xdeadbeef), SECCOMP_RET.KILL_PROCESS);
    const arm = compile({ ...p, architectures: ["SCMP_ARCH_ARM"] }, { native: "SCMP_ARCH_AARCH64" });
    assert.equal(exec(arm, "getppid", [], AUDIT_ARCH.AARCH64, "aarch64").action, EPERM, "aarch64 getppid is 173");
    assert.equal(exec(arm, "getppid", [], AUDIT_ARCH.ARM, "arm").action, EPERM, "arm getppid is 64");
    assert.equal(exec(arm, nr("getppid"), [], X86_64).action, SECCOMP_RET.KILL_PROCESS);
  });

  test("x32: its calls carry __X32_SYSCALL_BIT under AUDIT_ARCH_X86_64; without SCMP_ARCH_X32 they are killed", () => {
    const p: LinuxSeccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read", "execve"], action: "SCMP_ACT_ERRNO" }] };
    const plain = compile(p, { native: "SCMP_ARCH_X86_64" });
    assert.equal(action(plain, "read"), EPERM);
    assert.equal(action(plain, "write"), SECCOMP_RET.ALLOW);
    for (const n of [X32_SYSCALL_BIT, X32_SYSCALL_BIT + 1, X32_SYSCALL_BIT + 520, 0xffffffff]) assert.equal(action(plain, n), SECCOMP_RET.KILL_PROCESS, hex(n));
    const withX32 = compile({ ...p, architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"] }, { native: "SCMP_ARCH_X86_64" });
    assert.equal(nr("read", "x32"), X32_SYSCALL_BIT);
    assert.equal(action(withX32, nr("read", "x32")), EPERM);
    assert.equal(action(withX32, nr("write", "x32")), SECCOMP_RET.ALLOW);
    assert.equal(action(withX32, nr("execve", "x32")), EPERM, "x32 execve is 520|bit, not x86_64's 59");
    assert.equal(action(withX32, X32_SYSCALL_BIT + 59), SECCOMP_RET.ALLOW, "x86_64's execve number with the bit is not x32's execve");
    assert.equal(action(withX32, "execve"), EPERM);
    // x32 alone still leaves native x86_64 calls covered (the native arch is always in)
    const x32only = compile({ ...p, architectures: ["SCMP_ARCH_X32"] }, { native: "SCMP_ARCH_X86_64" });
    assert.equal(action(x32only, "read"), EPERM);
    assert.equal(action(x32only, nr("read", "x32")), EPERM);
  });

  test("32-bit ABIs compare only the low word of an argument, as libseccomp", () => {
    const c = compile(
      { defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86"], syscalls: [{ names: ["personality"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 2 ** 32 + 8, op: "SCMP_CMP_EQ" }] }] },
      { native: "SCMP_ARCH_X86_64" },
    );
    assert.equal(exec(c, "personality", [8n], AUDIT_ARCH.I386, "x86").action, EPERM);
    assert.equal(exec(c, "personality", [8n]).action, SECCOMP_RET.ALLOW, "x86_64 compares all 64 bits");
    assert.equal(exec(c, "personality", [2n ** 32n + 8n]).action, EPERM);
  });

  test("syscalls above the highest one the profile names get ENOSYS, unless the default lets them through", () => {
    const p = (def: LinuxSeccomp["defaultAction"], extra: Partial<LinuxSeccomp> = {}): LinuxSeccomp => ({ defaultAction: def, syscalls: [{ names: ["read", "getppid", "mkdir"], action: def === "SCMP_ACT_ALLOW" ? "SCMP_ACT_ERRNO" : "SCMP_ACT_ALLOW" }], ...extra });
    const c = compile(p("SCMP_ACT_ERRNO"), { native: "SCMP_ARCH_X86_64" });
    const top = nr("getppid"); // 110, above mkdir's 83
    assert.equal(action(c, "getppid"), SECCOMP_RET.ALLOW);
    assert.equal(action(c, "getpid"), EPERM, "below the highest: the default");
    assert.equal(action(c, top + 1), ENOSYS);
    assert.equal(action(c, 460), ENOSYS);
    assert.equal(action(c, X32_SYSCALL_BIT - 1), ENOSYS);
    for (const def of ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_KILL"] as const) assert.equal(action(compile(p(def), { native: "SCMP_ARCH_X86_64" }), 460), ENOSYS, def);
    for (const [def, want] of [["SCMP_ACT_ALLOW", SECCOMP_RET.ALLOW], ["SCMP_ACT_LOG", SECCOMP_RET.LOG], ["SCMP_ACT_TRACE", (SECCOMP_RET.TRACE | 1) >>> 0]] as const) {
      assert.equal(hex(action(compile(p(def), { native: "SCMP_ARCH_X86_64" }), 460)), hex(want), def);
    }
    const withX32 = compile(p("SCMP_ACT_ERRNO", { architectures: ["SCMP_ARCH_X32"] }), { native: "SCMP_ARCH_X86_64" });
    assert.equal(action(withX32, nr("getppid", "x32")), SECCOMP_RET.ALLOW);
    assert.equal(action(withX32, nr("getppid", "x32") + 1), ENOSYS);
    assert.equal(action(withX32, nr("getpid", "x32")), EPERM);
    const noNames = compile({ defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["nope"], action: "SCMP_ACT_ALLOW" }] }, { native: "SCMP_ARCH_X86_64" });
    assert.equal(action(noNames, 460), EPERM, "no syscall named: nothing to be newer than (runc)");
  });

  test("long jumps: a large profile needs BPF_JA trampolines and still decides every syscall right", () => {
    const names = [...SYSCALL_TABLES.x86_64.keys()].filter((n) => n !== "sendmsg").slice(0, 300);
    const c = compile(
      {
        defaultAction: "SCMP_ACT_KILL_PROCESS",
        syscalls: names.map((n, i) => ({ names: [n], action: "SCMP_ACT_ERRNO" as const, errnoRet: 100 + (i % 50), args: [{ index: i % 6, value: i * 2 ** 33 + i, op: "SCMP_CMP_EQ" as const }] })),
      },
      { native: "SCMP_ARCH_X86_64" },
    );
    const insns = decode(c.program);
    assert.ok(insns.length > 1000, `${insns.length} instructions`);
    assert.ok(insns.some((x) => x.code === (BPF.JMP | BPF.JA)), "some BPF_JA trampoline");
    checkProgram(insns);
    names.forEach((n, i) => {
      const args = [0n, 0n, 0n, 0n, 0n, 0n];
      args[i % 6] = BigInt(i) * 2n ** 33n + BigInt(i);
      assert.equal(action(c, n, args), errno(100 + (i % 50)), n);
      args[i % 6] = args[i % 6]! + 2n ** 32n;
      assert.equal(action(c, n, args), SECCOMP_RET.KILL_PROCESS, `${n}, high word off by one`);
    });
  });

  test("the assembler routes a far conditional branch through a trampoline", () => {
    const asm = new Assembler();
    const far = asm.label();
    const near = asm.label();
    asm.load(0).jump("jeq", 7, far, near).place(near);
    for (let i = 0; i < 300; i++) asm.ret(i);
    asm.place(far).load(4).ret(0x7fff0000);
    const insns = asm.assemble();
    checkProgram(insns);
    assert.equal(run(insns, { nr: 7, arch: 0 }).action, 0x7fff0000);
    assert.equal(run(insns, { nr: 8, arch: 0 }).action, 0);
    assert.match(disassemble(insns)[1]!, /jeq #0x7 2 3/);
    assert.match(disassemble(insns)[2]!, /ja 303/);
    // a far branch to a ret becomes a copy of the ret
    const b = new Assembler();
    const r = b.label();
    const n = b.label();
    b.load(0).jump("jeq", 1, r, n).place(n);
    for (let i = 0; i < 300; i++) b.ret(5);
    b.place(r).ret(9);
    const bi = b.assemble();
    assert.equal(bi[2]!.code, BPF.RET | BPF.K);
    assert.deepEqual(run(bi, { nr: 1, arch: 0 }), { action: 9, steps: 3 });
  });

  test("Docker's default profile: a few hundred instructions, a logarithmic dispatch, the right answers", () => {
    const t0 = process.hrtime.bigint();
    const c = compile(fixture, { native: "SCMP_ARCH_X86_64" });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const insns = decode(c.program);
    checkProgram(insns);
    const named = new Set(fixture.syscalls!.flatMap((s) => s.names)).size;
    assert.ok(named > 300, `${named} names in the profile`);
    assert.ok(insns.length < 1200, `${insns.length} instructions`);
    assert.ok(ms < 500, `compiled in ${ms} ms`);
    // Every x86_64 syscall is decided in a number of steps logarithmic in the profile, far from a chain.
    const steps = [...SYSCALL_TABLES.x86_64.values()].map((n) => run(c.program, { nr: n, arch: X86_64, args: [0n, 0n, 0n, 0n, 0n, 0n] }).steps);
    const cheap = exec(c, "getppid").steps;
    assert.ok(cheap <= 14, `getppid in ${cheap} instructions`);
    const plain = steps.filter((s) => s <= 16).length;
    assert.ok(plain > steps.length * 0.95, `${plain}/${steps.length} syscalls decided in at most 16 instructions`);
    assert.ok(Math.max(...steps) < 40, `worst case ${Math.max(...steps)} (argument rules)`);

    assert.equal(action(c, "getppid"), SECCOMP_RET.ALLOW);
    assert.equal(action(c, "mount"), EPERM);
    assert.equal(action(c, "clone3"), ENOSYS, "clone3: errnoRet 38 so glibc falls back to clone");
    assert.equal(action(c, 460), ENOSYS, "newer than the profile");
    assert.equal(action(c, "clone", [0x1200011n]), SECCOMP_RET.ALLOW);
    assert.equal(action(c, "clone", [0x1200011n | 0x10000000n]), EPERM, "CLONE_NEWUSER");
    assert.equal(action(c, "personality", [0n]), SECCOMP_RET.ALLOW);
    assert.equal(action(c, "personality", [0xffffffffn]), SECCOMP_RET.ALLOW);
    assert.equal(action(c, "personality", [1n]), EPERM);
    assert.equal(action(c, "socket", [2n]), SECCOMP_RET.ALLOW);
    assert.equal(action(c, "socket", [40n]), EPERM, "AF_VSOCK");
    assert.equal(action(c, "socket", [41n]), SECCOMP_RET.ALLOW);
    assert.equal(exec(c, "getppid", [], AUDIT_ARCH.I386, "x86").action, SECCOMP_RET.ALLOW);
    assert.equal(exec(c, "mount", [], AUDIT_ARCH.I386, "x86").action, EPERM);
    assert.equal(action(c, nr("getppid", "x32")), SECCOMP_RET.ALLOW);
    assert.equal(action(c, 0, [], AUDIT_ARCH.AARCH64), SECCOMP_RET.KILL_PROCESS);
  });

  test("invalid profiles: one line naming the JSON path", () => {
    const bad = (p: unknown, re: RegExp) => assert.throws(() => compile(p as LinuxSeccomp, { native: "SCMP_ARCH_X86_64" }), (e: Error) => re.test(e.message) && !e.message.includes("\n"));
    const sc = (extra: object, more: object[] = []) => ({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["a"], action: "SCMP_ACT_ERRNO" }, { names: ["b"], action: "SCMP_ACT_ERRNO" }, { names: ["c"], action: "SCMP_ACT_ERRNO" }, { names: ["getpid"], action: "SCMP_ACT_ERRNO", ...extra }, ...more] });
    bad(sc({ args: [{ index: 0, value: 1, op: "SCMP_CMP_BOGUS" }] }), /^config\.json: linux\.seccomp\.syscalls\[3\]\.args\[0\]\.op: unknown operator "SCMP_CMP_BOGUS"/);
    bad(sc({ args: [{ index: 6, value: 1, op: "SCMP_CMP_EQ" }] }), /syscalls\[3\]\.args\[0\]\.index: expected an integer from 0 to 5/);
    bad(sc({ args: [{ index: 0, value: 1, valueTwo: 2, op: "SCMP_CMP_EQ" }] }), /syscalls\[3\]\.args\[0\]\.valueTwo: only SCMP_CMP_MASKED_EQ uses valueTwo/);
    bad(sc({ args: [{ index: 0, value: -1, op: "SCMP_CMP_EQ" }] }), /syscalls\[3\]\.args\[0\]\.value: expected a non-negative integer/);
    bad(sc({ action: "SCMP_ACT_BOGUS" }), /syscalls\[3\]\.action: unknown action "SCMP_ACT_BOGUS"/);
    bad(sc({ action: "SCMP_ACT_ALLOW", errnoRet: 3 }), /syscalls\[3\]\.errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno/);
    bad(sc({ errnoRet: 70000 }), /syscalls\[3\]\.errnoRet: 70000 does not fit/);
    bad(sc({ names: [""] }), /syscalls\[3\]\.names\[0\]: a syscall name cannot be empty/);
    bad({ defaultAction: "SCMP_ACT_KILL", defaultErrnoRet: 1 }, /linux\.seccomp\.defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE/);
    bad({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_NOTIFY" }] }, /linux\.seccomp\.listenerPath: SCMP_ACT_NOTIFY is used but no listenerPath/);
    bad({ defaultAction: "SCMP_ACT_NOTIFY", listenerPath: "/x" }, /defaultAction: SCMP_ACT_NOTIFY cannot be used as default action$/);
    bad({ defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/x", syscalls: [{ names: ["read", "write"], action: "SCMP_ACT_NOTIFY" }] }, /syscalls\[0\]\.action: SCMP_ACT_NOTIFY cannot be used for the write syscall$/);
    bad({ defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/x", syscalls: [{ names: ["sendmsg"], action: "SCMP_ACT_NOTIFY" }] }, /syscalls\[0\]\.action: SCMP_ACT_NOTIFY cannot be used for sendmsg/);
    bad({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_Z80"] }, /architectures\[0\]: unknown architecture/);
    bad({ defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_BOGUS"] }, /flags\[0\]: unknown flag/);
    assert.throws(() => compile({ defaultAction: "SCMP_ACT_ALLOW", flags: ["X" as "SECCOMP_FILTER_FLAG_LOG"] }, { where: "exec: seccomp" }), (e: Error) => /^exec: seccomp\.flags\[0\]: unknown flag "X"/.test(e.message));
    // the schema catches the structural ones first, with the same kind of path
    const spec = JSON.parse(JSON.stringify(defaultSpec({}))) as Record<string, Record<string, unknown>>;
    spec.linux!.seccomp = sc({ args: [{ index: 0, value: 1, op: "SCMP_CMP_BOGUS" }] });
    assert.throws(() => parseSpec(spec), (e: Error) => /^config\.json: linux\.seccomp\.syscalls\[3\]\.args\[0\]\.op: invalid value "SCMP_CMP_BOGUS"/.test(e.message));
  });

  test("flags: LOG, SPEC_ALLOW, TSYNC (no effect), NEW_LISTENER with NOTIFY, WAIT_KILLABLE_RECV only then", () => {
    const f = (p: Partial<LinuxSeccomp>) => compile({ defaultAction: "SCMP_ACT_ALLOW", ...p }, { native: "SCMP_ARCH_X86_64" }).flags;
    assert.equal(f({}), 0);
    assert.equal(f({ flags: ["SECCOMP_FILTER_FLAG_LOG"] }), 2);
    assert.equal(f({ flags: ["SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"] }), 4);
    assert.equal(f({ flags: ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"] }), 0);
    const notify = { listenerPath: "/run/agent.sock", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_NOTIFY" as const }] };
    assert.equal(f(notify), 8);
    assert.equal(f({ ...notify, flags: ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_LOG"] }), 8 | 32 | 2);
    const c = compile({ defaultAction: "SCMP_ACT_ALLOW", ...notify, listenerMetadata: "m" }, { native: "SCMP_ARCH_X86_64" });
    assert.deepEqual(c.listener, { path: "/run/agent.sock", metadata: "m" });
  });

  test("cache: keyed by content; a hit skips compilation; a broken entry is replaced; no cache is no error", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-seccomp-cache-"));
    try {
      const cacheDir = path.join(dir, ".seccomp-cache");
      const a = compileCached(fixture, cacheDir, { native: "SCMP_ARCH_X86_64" });
      assert.equal(a.cache, "miss");
      assert.equal(path.basename(a.cacheFile), `${cacheKey(fixture, "SCMP_ARCH_X86_64")}.bpf`);
      assert.match(path.basename(a.cacheFile), /^[0-9a-f]{64}\.bpf$/);
      const t0 = process.hrtime.bigint();
      const b = compileCached(JSON.parse(JSON.stringify(fixture)) as LinuxSeccomp, cacheDir, { native: "SCMP_ARCH_X86_64" });
      const hitMs = Number(process.hrtime.bigint() - t0) / 1e6;
      assert.equal(b.cache, "hit");
      assert.ok(b.program.equals(a.program));
      assert.deepEqual([b.flags, b.skipped], [a.flags, a.skipped]);
      assert.ok(hitMs < 50, `hit in ${hitMs} ms`);
      // key order does not matter; content does
      const reordered = Object.fromEntries(Object.entries(fixture).reverse()) as LinuxSeccomp;
      assert.equal(cacheKey(reordered, "SCMP_ARCH_X86_64"), cacheKey(fixture, "SCMP_ARCH_X86_64"));
      assert.notEqual(cacheKey({ ...fixture, defaultErrnoRet: 2 }, "SCMP_ARCH_X86_64"), cacheKey(fixture, "SCMP_ARCH_X86_64"));
      assert.notEqual(cacheKey(fixture, "SCMP_ARCH_AARCH64"), cacheKey(fixture, "SCMP_ARCH_X86_64"));
      fs.writeFileSync(a.cacheFile, "garbage");
      const c = compileCached(fixture, cacheDir, { native: "SCMP_ARCH_X86_64" });
      assert.equal(c.cache, "miss");
      assert.ok(c.program.equals(a.program));
      assert.equal(compileCached(fixture, cacheDir, { native: "SCMP_ARCH_X86_64" }).cache, "hit");
      // an invalid profile leaves nothing in the cache
      assert.throws(() => compileCached({ defaultAction: "SCMP_ACT_KILL", defaultErrnoRet: 1 }, cacheDir, { native: "SCMP_ARCH_X86_64" }));
      assert.equal(fs.readdirSync(cacheDir).length, 1);
      // a cache that cannot be written
      const blocked = path.join(dir, "file");
      fs.writeFileSync(blocked, "");
      const d = compileCached(fixture, path.join(blocked, "cache"), { native: "SCMP_ARCH_X86_64" });
      assert.equal(d.cache, "unavailable");
      assert.ok(d.program.equals(a.program));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("BPF interpreter", () => {
  test("refuses what the kernel refuses", () => {
    const ok = [{ code: BPF.RET | BPF.K, jt: 0, jf: 0, k: 0 }];
    checkProgram(ok);
    assert.throws(() => checkProgram([]), /length 0/);
    assert.throws(() => checkProgram([{ code: BPF.LD | BPF.W | BPF.ABS, jt: 0, jf: 0, k: 0 }]), /does not end with ret/);
    assert.throws(() => checkProgram([{ code: BPF.LD | BPF.H | BPF.ABS, jt: 0, jf: 0, k: 0 }, ...ok]), /32-bit words/);
    assert.throws(() => checkProgram([{ code: BPF.LD | BPF.W | BPF.ABS, jt: 0, jf: 0, k: 64 }, ...ok]), /aligned word/);
    assert.throws(() => checkProgram([{ code: BPF.LD | BPF.H | BPF.IMM, jt: 0, jf: 0, k: 0 }, ...ok]), /not allowed in a seccomp filter/);
    assert.throws(() => checkProgram([{ code: BPF.LDX | BPF.B | BPF.MSH, jt: 0, jf: 0, k: 0 }, ...ok]), /not allowed in a seccomp filter/);
    assert.throws(() => checkProgram([{ code: BPF.LD | BPF.MEM, jt: 0, jf: 0, k: 16 }, ...ok]), /scratch memory/);
    assert.throws(() => checkProgram([{ code: BPF.LD | BPF.W | BPF.ABS, jt: 0, jf: 0, k: 2 }, ...ok]), /aligned word/);
    assert.throws(() => checkProgram([{ code: BPF.JMP | BPF.JEQ | BPF.K, jt: 1, jf: 0, k: 0 }, ...ok]), /out of the program/);
    assert.throws(() => checkProgram([{ code: BPF.JMP | BPF.JA, jt: 0, jf: 0, k: 5 }, ...ok]), /out of the program/);
    assert.throws(() => checkProgram([{ code: BPF.ALU | BPF.DIV | BPF.K, jt: 0, jf: 0, k: 0 }, ...ok]), /division/);
    assert.throws(() => checkProgram(new Array(4097).fill(ok[0])), /length 4097/);
    assert.throws(() => encode([]), /1 to 4096/);
  });

  test("loads, ALU, scratch memory, X register and jumps behave as classic BPF", () => {
    const I = (code: number, k = 0, jt = 0, jf = 0) => ({ code, jt, jf, k });
    const prog = [
      I(BPF.LD | BPF.W | BPF.ABS, 20), // A = args[0] high word
      I(BPF.ST, 3),
      I(BPF.LD | BPF.W | BPF.ABS, 16), // A = args[0] low word
      I(BPF.ALU | BPF.ADD | BPF.K, 10),
      I(BPF.ALU | BPF.MUL | BPF.K, 3),
      I(BPF.MISC | BPF.TAX),
      I(BPF.LD | BPF.MEM, 3),
      I(BPF.ALU | BPF.ADD | BPF.X),
      I(BPF.ALU | BPF.XOR | BPF.K, 1),
      I(BPF.JMP | BPF.JSET | BPF.K, 0x80000000, 0, 1),
      I(BPF.RET | BPF.K, 1),
      I(BPF.RET | BPF.A),
    ];
    // (lo + 10) * 3 + hi, ^ 1
    assert.equal(run(prog, { nr: 0, arch: 0, args: [(2n << 32n) | 4n] }).action, ((4 + 10) * 3 + 2) ^ 1);
    assert.equal(run(prog, { nr: 0, arch: 0, args: [0x80000000n << 32n] }).action, 1);
    assert.equal(run([I(BPF.LD | BPF.W | BPF.LEN), I(BPF.RET | BPF.A)], { nr: 0, arch: 0 }).action, 64);
    assert.equal(run([I(BPF.LDX | BPF.IMM, 0), I(BPF.ALU | BPF.DIV | BPF.X), I(BPF.RET | BPF.K, 7)], { nr: 0, arch: 0 }).action, 0, "division by zero returns 0");
    assert.equal(run([I(BPF.LD | BPF.W | BPF.ABS, 8), I(BPF.RET | BPF.A)], { nr: 0, arch: 0, instructionPointer: 0x1234n }).action, 0x1234);
    assert.equal(run([I(BPF.LD | BPF.W | BPF.ABS, 0), I(BPF.RET | BPF.A)], { nr: -1, arch: 0 }).action, 0xffffffff, "nr as the kernel stores it");
  });
});
