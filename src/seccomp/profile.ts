// An OCI `linux.seccomp` profile, checked and turned into what the compiler works from: kernel action
// values, 64-bit argument conditions, the architectures to cover and the seccomp(2) flags. Every error is
// one line naming the JSON path (`config.json: linux.seccomp.syscalls[3].args[0].op: …`).
//
// Semantics, as runc (libcontainer/seccomp) with libseccomp:
//  - SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD; errnoRet defaults to EPERM for ERRNO and for TRACE (runc
//    passes it as the tracer's data); only those two actions take an errno (runtime-spec: MUST fail).
//  - MASKED_EQ: `value` is the mask, `valueTwo` the expected (arg & value) == valueTwo; valueTwo defaults
//    to 0. Any other operator with a non-zero valueTwo is refused (Docker's profiles write valueTwo: 0).
//  - Conditions of one rule are ANDed; when one rule names the same argument twice, runc adds each
//    condition as a rule of its own (they are ORed), and so does tsrun.
//  - The native architecture is always covered (libseccomp's SCMP_ARCH_NATIVE). An architecture the spec
//    lists but tsrun has no table for is left out and reported: on this machine the kernel never reports it,
//    so its absence changes nothing but the bad-arch action it would get anyway.
//  - SCMP_ACT_NOTIFY needs listenerPath (the runtime hands the notify fd to it). It cannot be the default
//    action and cannot apply to write (runc's rules and words: runc's init writes the fd number with
//    write(2)) nor to sendmsg: after loading the filter, tsrun-init sends the notify fd with sendmsg(2), and
//    a notified sendmsg would wait for a listener that has not got the fd yet.
//  - Flags: SECCOMP_FILTER_FLAG_TSYNC is accepted and has no effect (tsrun-init is single-threaded; runc
//    ignores it too), LOG and SPEC_ALLOW are passed on, NEW_LISTENER is added when NOTIFY is used and
//    WAIT_KILLABLE_RECV is passed on only then (the kernel refuses it without a listener).
import {
  SECCOMP_ACTIONS,
  SECCOMP_ARCHES,
  SECCOMP_FLAGS,
  SECCOMP_OPERATORS,
  type LinuxSeccomp,
  type SeccompAction,
  type SeccompArch,
  type SeccompOperator,
} from "../spec/schema";
import { ARCHES, type ArchDef } from "./arch";
import { ENOSYS, EPERM, SECCOMP_FILTER_FLAG, SECCOMP_RET, SECCOMP_RET_DATA } from "./kernel";

export class SeccompProfileError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`);
    this.name = "SeccompProfileError";
  }
}

export interface Condition {
  index: number;
  op: SeccompOperator;
  value: bigint; // u64; the mask for MASKED_EQ
  valueTwo: bigint; // u64; the expected value for MASKED_EQ
}

// One rule: `action` when every condition holds (no condition: always).
export interface Rule {
  action: number;
  conditions: Condition[];
}

// One syscalls[] entry: its names, and its rules in the order they are tried.
export interface Entry {
  names: string[];
  rules: Rule[];
}

export interface Profile {
  defaultAction: number;
  entries: Entry[];
  arches: ArchDef[]; // native first, then the listed ones tsrun has tables for
  unsupportedArches: SeccompArch[];
  flags: number; // for seccomp(SECCOMP_SET_MODE_FILTER, flags, …)
  notify: boolean; // some action is SCMP_ACT_NOTIFY
  listener?: { path: string; metadata?: string };
  enosys: boolean; // syscalls newer than the profile get ENOSYS (runc's patch), see compile.ts
}

const U64_MAX = (1n << 64n) - 1n;

// JSON numbers are doubles: 2^64-1 is read as 2^64, the nearest double, and is taken back to 2^64-1.
export function toU64(v: number, where: string): bigint {
  if (!Number.isInteger(v) || v < 0) throw new SeccompProfileError(where, `expected a non-negative integer (uint64), got ${v}`);
  const b = BigInt(v);
  if (b > U64_MAX + 1n) throw new SeccompProfileError(where, `${v} does not fit in 64 bits`);
  return b > U64_MAX ? U64_MAX : b;
}

function actionValue(action: string, errnoRet: number | undefined, where: string, field: string): number {
  if (!(SECCOMP_ACTIONS as readonly string[]).includes(action)) {
    throw new SeccompProfileError(`${where}.${field === "errnoRet" ? "action" : "defaultAction"}`, `unknown action ${JSON.stringify(action)} (expected one of ${SECCOMP_ACTIONS.join(", ")})`);
  }
  const a = action as SeccompAction;
  if (errnoRet !== undefined) {
    if (a !== "SCMP_ACT_ERRNO" && a !== "SCMP_ACT_TRACE") throw new SeccompProfileError(`${where}.${field}`, `only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, the action is ${a}`);
    if (!Number.isInteger(errnoRet) || errnoRet < 0 || errnoRet > SECCOMP_RET_DATA) throw new SeccompProfileError(`${where}.${field}`, `${errnoRet} does not fit the 16 bits of seccomp's return data`);
  }
  const data = errnoRet ?? EPERM;
  switch (a) {
    case "SCMP_ACT_KILL":
    case "SCMP_ACT_KILL_THREAD":
      return SECCOMP_RET.KILL_THREAD;
    case "SCMP_ACT_KILL_PROCESS":
      return SECCOMP_RET.KILL_PROCESS;
    case "SCMP_ACT_TRAP":
      return SECCOMP_RET.TRAP;
    case "SCMP_ACT_ERRNO":
      return (SECCOMP_RET.ERRNO | data) >>> 0;
    case "SCMP_ACT_TRACE":
      return (SECCOMP_RET.TRACE | data) >>> 0;
    case "SCMP_ACT_ALLOW":
      return SECCOMP_RET.ALLOW;
    case "SCMP_ACT_LOG":
      return SECCOMP_RET.LOG;
    case "SCMP_ACT_NOTIFY":
      return SECCOMP_RET.USER_NOTIF;
  }
}

function conditionOf(arg: { index: number; value: number; valueTwo?: number | undefined; op: string }, where: string): Condition {
  if (!Number.isInteger(arg.index) || arg.index < 0 || arg.index > 5) throw new SeccompProfileError(`${where}.index`, `expected an integer from 0 to 5 (syscall argument index), got ${arg.index}`);
  if (!(SECCOMP_OPERATORS as readonly string[]).includes(arg.op)) throw new SeccompProfileError(`${where}.op`, `unknown operator ${JSON.stringify(arg.op)} (expected one of ${SECCOMP_OPERATORS.join(", ")})`);
  const op = arg.op as SeccompOperator;
  const value = toU64(arg.value, `${where}.value`);
  const valueTwo = arg.valueTwo === undefined ? 0n : toU64(arg.valueTwo, `${where}.valueTwo`);
  if (op !== "SCMP_CMP_MASKED_EQ" && valueTwo !== 0n) throw new SeccompProfileError(`${where}.valueTwo`, `only SCMP_CMP_MASKED_EQ uses valueTwo, the operator is ${op}`);
  return { index: arg.index, op, value, valueTwo };
}

function isNotify(action: number): boolean {
  return action === SECCOMP_RET.USER_NOTIF;
}

// runc: the -ENOSYS stub is skipped when the default action already lets calls through (ALLOW, LOG, and
// TRACE: a tracer should handle new syscalls itself), and it would change nothing for ERRNO(ENOSYS).
function wantsEnosys(defaultAction: number): boolean {
  if (defaultAction === SECCOMP_RET.ALLOW || defaultAction === SECCOMP_RET.LOG) return false;
  if (((defaultAction & 0xfff00000) >>> 0) === SECCOMP_RET.TRACE) return false;
  return defaultAction !== ((SECCOMP_RET.ERRNO | ENOSYS) >>> 0);
}

export function checkProfile(p: LinuxSeccomp, native: SeccompArch, where = "config.json: linux.seccomp"): Profile {
  const defaultAction = actionValue(p.defaultAction, p.defaultErrnoRet, where, "defaultErrnoRet");
  let notify = isNotify(defaultAction);
  if (notify) throw new SeccompProfileError(`${where}.defaultAction`, "SCMP_ACT_NOTIFY cannot be used as default action");

  const entries: Entry[] = [];
  (p.syscalls ?? []).forEach((s, i) => {
    const at = `${where}.syscalls[${i}]`;
    if (!Array.isArray(s.names) || s.names.length === 0) throw new SeccompProfileError(`${at}.names`, "must contain at least one entry");
    s.names.forEach((n, j) => {
      if (typeof n !== "string" || n === "") throw new SeccompProfileError(`${at}.names[${j}]`, "a syscall name cannot be empty");
    });
    const action = actionValue(s.action, s.errnoRet, at, "errnoRet");
    if (isNotify(action)) {
      notify = true;
      // runc's words (libcontainer/seccomp: InitSeccomp): its init writes the fd number with write(2)
      if (s.names.includes("write")) throw new SeccompProfileError(`${at}.action`, "SCMP_ACT_NOTIFY cannot be used for the write syscall");
      if (s.names.includes("sendmsg")) throw new SeccompProfileError(`${at}.action`, "SCMP_ACT_NOTIFY cannot be used for sendmsg: tsrun-init sends the notify fd to the listener with it");
    }
    const conds = (s.args ?? []).map((a, j) => conditionOf(a, `${at}.args[${j}]`));
    const counts = new Map<number, number>();
    for (const c of conds) counts.set(c.index, (counts.get(c.index) ?? 0) + 1);
    const repeated = [...counts.values()].some((n) => n > 1);
    const rules: Rule[] = repeated ? conds.map((c) => ({ action, conditions: [c] })) : [{ action, conditions: conds }];
    entries.push({ names: [...s.names], rules });
  });

  const arches: ArchDef[] = [ARCHES[native]!];
  const unsupportedArches: SeccompArch[] = [];
  (p.architectures ?? []).forEach((a, i) => {
    if (!(SECCOMP_ARCHES as readonly string[]).includes(a)) throw new SeccompProfileError(`${where}.architectures[${i}]`, `unknown architecture ${JSON.stringify(a)}`);
    const def = ARCHES[a];
    if (!def) {
      if (!unsupportedArches.includes(a)) unsupportedArches.push(a);
    } else if (!arches.includes(def)) arches.push(def);
  });

  let flags = 0;
  (p.flags ?? []).forEach((f, i) => {
    switch (f) {
      case "SECCOMP_FILTER_FLAG_TSYNC":
        break;
      case "SECCOMP_FILTER_FLAG_LOG":
        flags |= SECCOMP_FILTER_FLAG.LOG;
        break;
      case "SECCOMP_FILTER_FLAG_SPEC_ALLOW":
        flags |= SECCOMP_FILTER_FLAG.SPEC_ALLOW;
        break;
      case "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV":
        flags |= SECCOMP_FILTER_FLAG.WAIT_KILLABLE_RECV;
        break;
      default:
        throw new SeccompProfileError(`${where}.flags[${i}]`, `unknown flag ${JSON.stringify(f)} (expected one of ${SECCOMP_FLAGS.join(", ")})`);
    }
  });
  if (notify) flags |= SECCOMP_FILTER_FLAG.NEW_LISTENER;
  else flags &= ~SECCOMP_FILTER_FLAG.WAIT_KILLABLE_RECV;

  if (p.listenerMetadata && !p.listenerPath) throw new SeccompProfileError(`${where}.listenerMetadata`, "must not be set when listenerPath is not set");
  let listener: Profile["listener"];
  if (notify) {
    if (!p.listenerPath) throw new SeccompProfileError(`${where}.listenerPath`, "SCMP_ACT_NOTIFY is used but no listenerPath is set to receive the notify fd");
    listener = { path: p.listenerPath, ...(p.listenerMetadata ? { metadata: p.listenerMetadata } : {}) };
  }
  return { defaultAction, entries, arches, unsupportedArches, flags, notify, ...(listener ? { listener } : {}), enosys: wantsEnosys(defaultAction) };
}
