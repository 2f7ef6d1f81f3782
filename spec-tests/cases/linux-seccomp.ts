// config-linux.md#seccomp and #the-container-process-state: the filter's default action and errno, actions,
// argument operators, architectures, flags, validation, and the listener (SCMP_ACT_NOTIFY).
import * as fs from "fs";
import type { Case, CaseContext, ProbeResult, Step } from "../harness/case";
import { eq, expect, fail } from "../harness/check";
import type { Config, Seccomp, SeccompSyscall } from "../harness/config";
import { lifecycle, linux, refusedAtCreate, refusedAtCreateOrStart, withSeccompAgent, needs } from "../harness/dsl";
import { jsonLinesOf } from "../harness/context";
import { EDOM, ENOSYS, EPERM, EXDEV } from "./errno";

const REFUSABLE = "seccomp is optional";
const SIGSYS_EXIT = 128 + 31;

// What a container needs after its filter is loaded (runtime and probe), without getppid: the syscall the
// cases deny or allow explicitly. Names unknown on an architecture are ignored by libseccomp-based runtimes.
const BASELINE = (
  "read write readv writev pread64 pwrite64 open openat openat2 close close_range stat fstat lstat newfstatat statx lseek mmap mprotect " +
  "munmap mremap madvise brk rt_sigaction rt_sigprocmask rt_sigreturn rt_sigsuspend rt_sigtimedwait sigaltstack ioctl access faccessat " +
  "faccessat2 pipe pipe2 poll ppoll select pselect6 sched_yield dup dup2 dup3 nanosleep clock_nanosleep clock_gettime clock_getres " +
  "gettimeofday getpid gettid getuid geteuid getgid getegid getresuid getresgid getgroups setgroups setuid setgid setresuid setresgid " +
  "setreuid setregid setfsuid setfsgid capget capset prctl arch_prctl set_tid_address set_robust_list get_robust_list futex rseq " +
  "clone clone3 fork vfork execve execveat exit exit_group wait4 waitid kill tgkill tkill uname fcntl flock fsync getdents getdents64 " +
  "getcwd chdir fchdir mkdir mkdirat rmdir unlink unlinkat readlink readlinkat chmod fchmod fchmodat chown fchown fchownat umask " +
  "getrlimit setrlimit prlimit64 getrusage sysinfo getpriority setpriority sched_getaffinity sched_setaffinity sched_getparam " +
  "sched_getscheduler sched_setscheduler getpgrp getpgid setpgid getsid setsid personality statfs fstatfs epoll_create1 epoll_ctl " +
  "epoll_wait epoll_pwait eventfd2 signalfd4 socket socketpair connect sendto recvfrom sendmsg recvmsg getrandom membarrier " +
  "restart_syscall ioprio_get ioprio_set mount umount2 pivot_root chroot sethostname setdomainname keyctl setns unshare seccomp"
).split(" ");

function withSeccomp(s: Seccomp): (c: Config) => void {
  return (c) => {
    linux(c).seccomp = s;
  };
}

function deny(names: string[], action: string, extra: Partial<SeccompSyscall> = {}): SeccompSyscall {
  return { names, action, ...extra };
}

// A filter that allows everything but one getppid rule; the probe calls getppid and reports.
function getppidCase(id: string, title: string, action: string, expected: { errno?: number; exit?: number }, extra: Partial<Case> & { rule?: Partial<SeccompSyscall> } = {}): Case {
  const { rule, ...rest } = extra;
  const seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [deny(["getppid"], action, rule ?? {})] };
  const steps: Step[] =
    expected.exit !== undefined
      ? [
          { op: "run", exitCode: expected.exit },
          { op: "check", what: "output", check: (ctx) => expect(ctx.stdout().includes("before") && !ctx.stdout().includes('"name":"getppid"'), `the probe was not stopped at getppid: ${JSON.stringify(ctx.stdout().slice(0, 200))}`) },
          { op: "delete", force: true, expect: "any" },
          { op: "nothingLeft" },
        ]
      : lifecycle("getppid's result", (ctx) => eq(ctx.json<ProbeResult>(0).errno, expected.errno, "getppid errno"));
  return {
    id,
    spec: "config-linux.md#seccomp",
    level: "MUST",
    title,
    refusable: REFUSABLE,
    args: ["multi", "echo", "before", "--", "syscall", "getppid"],
    bundle: withSeccomp(seccomp),
    steps,
    ...rest,
  };
}

// kill(0, 0) and kill(1, 0): which of the two an argument rule with the operator denies (EDOM).
function operatorCase(op: string, value: number, valueTwo: number | undefined, denied: [boolean, boolean]): Case {
  return {
    id: `config.linux.seccomp.operator.${op}`,
    spec: "config-linux.md#seccomp",
    level: "MUST",
    title: `the argument operator ${op} compares the syscall argument`,
    refusable: REFUSABLE,
    args: ["multi", "syscall", "kill", "0", "0", "--", "syscall", "kill", "1", "0"],
    bundle: withSeccomp({
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [deny(["kill"], "SCMP_ACT_ERRNO", { errnoRet: EDOM, args: [{ index: 0, value, ...(valueTwo !== undefined ? { valueTwo } : {}), op }] })],
    }),
    since: "1.1.0",
    steps: lifecycle("kill(0, 0) and kill(1, 0)", (ctx) => {
      eq(ctx.json<ProbeResult>(0).errno, denied[0] ? EDOM : 0, "kill(0, 0) errno");
      eq(ctx.json<ProbeResult>(1).errno, denied[1] ? EDOM : 0, "kill(1, 0) errno");
    }),
  };
}

function archs(ctx: CaseContext): string[] {
  return ctx.env.host.arch === "arm64" ? ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"] : ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
}

interface AgentRecord {
  payload: string;
  fds: number;
  fdsInFirstMessage: number;
  closed: boolean;
}

function agentRecord(ctx: CaseContext): AgentRecord {
  const file = String(ctx.values.get("agentLog"));
  const lines = fs.existsSync(file) ? jsonLinesOf(fs.readFileSync(file, "utf8")) : [];
  const r = lines.find((l): l is AgentRecord => typeof l === "object" && l !== null && "payload" in l);
  if (!r) fail("the seccomp listener received nothing");
  return r;
}

interface ProcessState {
  ociVersion?: unknown;
  fds?: unknown;
  pid?: unknown;
  metadata?: unknown;
  state?: { id?: unknown; pid?: unknown; bundle?: unknown };
}

function listenerCase(id: string, title: string, check: (ctx: CaseContext) => void): Case {
  return {
    id,
    spec: id.includes("process-state") ? "config-linux.md#the-container-process-state" : "config-linux.md#seccomp",
    level: "MUST",
    title,
    since: "1.1.0",
    refusable: REFUSABLE,
    args: ["multi", "echo", "before", "--", "syscall", "getppid"],
    setup: async (ctx) => {
      const a = await withSeccompAgent(ctx, EXDEV);
      ctx.values.set("agentSocket", a.socket);
      ctx.values.set("agentLog", a.log);
    },
    bundle: (c, ctx) => {
      linux(c).seccomp = {
        defaultAction: "SCMP_ACT_ALLOW",
        listenerPath: String(ctx.values.get("agentSocket")),
        listenerMetadata: "spec-tests-metadata",
        syscalls: [deny(["getppid"], "SCMP_ACT_NOTIFY")],
      };
    },
    steps: lifecycle(title, check),
  };
}

export const linuxSeccomp: Case[] = [
  getppidCase("config.linux.seccomp.filter", "a seccomp filter is installed for the process", "SCMP_ACT_ERRNO", { errno: EPERM }, {
    args: ["multi", "facts", "--", "syscall", "getppid"],
    steps: lifecycle("seccomp mode", (ctx) => eq(ctx.facts().seccomp, 2, "Seccomp (2: filter)")),
  }),
  {
    id: "config.linux.seccomp.defaultAction",
    spec: "config-linux.md#seccomp",
    level: "MUST",
    title: "defaultAction applies to syscalls no rule names (ERRNO: EPERM by default)",
    refusable: REFUSABLE,
    args: ["multi", "echo", "before", "--", "syscall", "getppid"],
    bundle: withSeccomp({ defaultAction: "SCMP_ACT_ERRNO", syscalls: [deny(BASELINE, "SCMP_ACT_ALLOW")] }),
    steps: lifecycle("getppid's result", (ctx) => eq(ctx.json<ProbeResult>(0).errno, EPERM, "getppid errno")),
  },
  {
    id: "config.linux.seccomp.defaultErrnoRet",
    spec: "config-linux.md#seccomp",
    level: "MUST",
    title: "defaultErrnoRet is the errno of the default ERRNO action",
    since: "1.1.0",
    refusable: REFUSABLE,
    args: ["multi", "echo", "before", "--", "syscall", "getppid"],
    bundle: withSeccomp({ defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: EDOM, syscalls: [deny(BASELINE, "SCMP_ACT_ALLOW")] }),
    steps: lifecycle("getppid's result", (ctx) => eq(ctx.json<ProbeResult>(0).errno, EDOM, "getppid errno")),
  },
  {
    id: "config.linux.seccomp.defaultErrnoRet.invalid-action",
    spec: "config-linux.md#seccomp",
    level: "MUST",
    title: "defaultErrnoRet with a default action that has no errno (ALLOW) is an error",
    since: "1.1.0",
    bundle: withSeccomp({ defaultAction: "SCMP_ACT_ALLOW", defaultErrnoRet: EDOM }),
    steps: refusedAtCreateOrStart("defaultErrnoRet with SCMP_ACT_ALLOW"),
  },
  getppidCase("config.linux.seccomp.errnoRet", "a rule's errnoRet is the errno its ERRNO action returns", "SCMP_ACT_ERRNO", { errno: EDOM }, { since: "1.1.0", rule: { errnoRet: EDOM } }),
  {
    id: "config.linux.seccomp.errnoRet.invalid-action",
    spec: "config-linux.md#seccomp",
    level: "MUST",
    title: "errnoRet on a rule whose action has no errno (ALLOW) is an error",
    since: "1.1.0",
    bundle: withSeccomp({ defaultAction: "SCMP_ACT_ERRNO", syscalls: [deny(BASELINE, "SCMP_ACT_ALLOW"), deny(["getppid"], "SCMP_ACT_ALLOW", { errnoRet: EDOM })] }),
    steps: refusedAtCreateOrStart("errnoRet with SCMP_ACT_ALLOW"),
  },
  {
    id: "config.linux.seccomp.names-empty",
    spec: "config-linux.md#seccomp",
    level: "MUST",
    title: "a rule with no syscall names is an error",
    bundle: withSeccomp({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [deny([], "SCMP_ACT_ERRNO")] }),
    steps: refusedAtCreateOrStart("empty names"),
  },
  getppidCase("config.linux.seccomp.action.KILL", "SCMP_ACT_KILL kills the process (SIGSYS)", "SCMP_ACT_KILL", { exit: SIGSYS_EXIT }),
  getppidCase("config.linux.seccomp.action.KILL_PROCESS", "SCMP_ACT_KILL_PROCESS kills the process (SIGSYS)", "SCMP_ACT_KILL_PROCESS", { exit: SIGSYS_EXIT }, { since: "1.1.0" }),
  getppidCase("config.linux.seccomp.action.KILL_THREAD", "SCMP_ACT_KILL_THREAD kills the (only) thread (SIGSYS)", "SCMP_ACT_KILL_THREAD", { exit: SIGSYS_EXIT }, { since: "1.1.0" }),
  getppidCase("config.linux.seccomp.action.TRAP", "SCMP_ACT_TRAP sends SIGSYS", "SCMP_ACT_TRAP", { exit: SIGSYS_EXIT }),
  getppidCase("config.linux.seccomp.action.ERRNO", "SCMP_ACT_ERRNO fails the syscall (EPERM by default)", "SCMP_ACT_ERRNO", { errno: EPERM }),
  getppidCase("config.linux.seccomp.action.TRACE", "SCMP_ACT_TRACE without a tracer fails the syscall with ENOSYS", "SCMP_ACT_TRACE", { errno: ENOSYS }),
  getppidCase("config.linux.seccomp.action.LOG", "SCMP_ACT_LOG lets the syscall run", "SCMP_ACT_LOG", { errno: 0 }),
  {
    id: "config.linux.seccomp.action.ALLOW",
    spec: "config-linux.md#seccomp",
    level: "MUST",
    title: "SCMP_ACT_ALLOW lets a syscall through a denying default",
    refusable: REFUSABLE,
    args: ["multi", "echo", "before", "--", "syscall", "getppid"],
    bundle: withSeccomp({ defaultAction: "SCMP_ACT_ERRNO", syscalls: [deny([...BASELINE, "getppid"], "SCMP_ACT_ALLOW")] }),
    steps: lifecycle("getppid's result", (ctx) => eq(ctx.json<ProbeResult>(0).errno, 0, "getppid errno")),
  },
  operatorCase("SCMP_CMP_NE", 0, undefined, [false, true]),
  operatorCase("SCMP_CMP_LT", 1, undefined, [true, false]),
  operatorCase("SCMP_CMP_LE", 0, undefined, [true, false]),
  operatorCase("SCMP_CMP_EQ", 1, undefined, [false, true]),
  operatorCase("SCMP_CMP_GE", 1, undefined, [false, true]),
  operatorCase("SCMP_CMP_GT", 0, undefined, [false, true]),
  operatorCase("SCMP_CMP_MASKED_EQ", 1, 1, [false, true]),
  {
    id: "config.linux.seccomp.architectures",
    spec: "config-linux.md#seccomp",
    level: "MUST",
    title: "architectures: the filter covers the native architecture and its compat ones",
    refusable: REFUSABLE,
    requires: [needs.knownArch],
    args: ["multi", "echo", "before", "--", "syscall", "getppid"],
    bundle: (c, ctx) => {
      linux(c).seccomp = { defaultAction: "SCMP_ACT_ALLOW", architectures: archs(ctx), syscalls: [deny(["getppid"], "SCMP_ACT_ERRNO", { errnoRet: EDOM })] };
    },
    since: "1.1.0",
    steps: lifecycle("getppid's result", (ctx) => eq(ctx.json<ProbeResult>(0).errno, EDOM, "getppid errno")),
  },
  {
    id: "config.linux.seccomp.flags",
    spec: "config-linux.md#seccomp",
    level: "MUST",
    title: "flags are passed to seccomp(2) (SECCOMP_FILTER_FLAG_LOG): the filter is installed",
    refusable: REFUSABLE,
    args: ["multi", "echo", "before", "--", "syscall", "getppid"],
    bundle: withSeccomp({ defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_LOG"], syscalls: [deny(["getppid"], "SCMP_ACT_ERRNO", { errnoRet: EDOM })] }),
    since: "1.1.0",
    steps: lifecycle("getppid's result", (ctx) => eq(ctx.json<ProbeResult>(0).errno, EDOM, "getppid errno")),
  },
  listenerCase("config.linux.seccomp.listener.notify", "SCMP_ACT_NOTIFY: the listener gets the seccomp fd and answers the syscall", (ctx) => {
    eq(ctx.json<ProbeResult>(0).errno, EXDEV, "getppid errno (the listener answers EXDEV)");
    eq(agentRecord(ctx).fds, 1, "file descriptors received");
  }),
  listenerCase("config.linux.seccomp.listener.connection", "the listener gets exactly one state per connection, the fd with the first message, and the connection closed", (ctx) => {
    const r = agentRecord(ctx);
    eq(r.closed, true, "the runtime closed the connection after sending");
    eq(r.fdsInFirstMessage, 1, "file descriptors with the first message");
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.payload);
    } catch {
      fail(`the payload is not one JSON value: ${JSON.stringify(r.payload.slice(0, 200))}`);
    }
    expect(typeof parsed === "object" && parsed !== null, "the payload is not a JSON object");
  }),
  listenerCase("config.linux.seccomp.process-state", "the container process state: ociVersion, fds [seccompFd], pid, metadata, state", (ctx) => {
    const payload = agentRecord(ctx).payload;
    let s: ProcessState;
    try {
      s = JSON.parse(payload) as ProcessState;
    } catch {
      return fail(`the payload is not JSON: ${JSON.stringify(payload.slice(0, 200))}`);
    }
    expect(typeof s.ociVersion === "string" && s.ociVersion !== "", "ociVersion is missing");
    eq(s.fds, ["seccompFd"], "fds");
    eq(s.pid, ctx.pid?.pid, "pid (the container process, as the runtime sees it)");
    eq(s.metadata, "spec-tests-metadata", "metadata");
    eq(s.state?.id, ctx.id, "state.id");
    eq(s.state?.bundle, ctx.bundle, "state.bundle");
  }),
  {
    id: "config.linux.seccomp.listener.metadata-without-path",
    spec: "config-linux.md#seccomp",
    level: "MUST",
    title: "listenerMetadata without listenerPath is an error",
    since: "1.1.0",
    bundle: withSeccomp({ defaultAction: "SCMP_ACT_ALLOW", listenerMetadata: "x", syscalls: [deny(["getppid"], "SCMP_ACT_ERRNO")] }),
    steps: refusedAtCreate(),
  },
  {
    id: "config.linux.seccomp.listener.unreachable",
    spec: "config-linux.md#seccomp",
    level: "MUST",
    title: "a listenerPath nobody listens on: sending fails, which is an error",
    since: "1.1.0",
    bundle: (c, ctx) => {
      linux(c).seccomp = { defaultAction: "SCMP_ACT_ALLOW", listenerPath: `${ctx.dir}/nobody.sock`, syscalls: [deny(["getppid"], "SCMP_ACT_NOTIFY")] };
    },
    steps: refusedAtCreateOrStart("an unreachable listener"),
  },
];

