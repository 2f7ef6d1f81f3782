// config.md#process: terminal, console size, cwd, env, args, rlimits, capabilities, no_new_privs, oom score,
// scheduler, I/O priority, exec CPU affinity, user, AppArmor and SELinux.
import * as fs from "fs";
import type { Case, CaseContext, Facts, Step } from "../harness/case";
import { eq, expect, fail, firstLine, includes, sameSet } from "../harness/check";
import { consoleDrained, consoleText, LONG_RUNNING, lifecycle, proc, refusedAtCreate, refusedAtCreateOrStart, withConsole, needs } from "../harness/dsl";
import { jsonLinesOf } from "../harness/context";
import { missingCapability } from "./capabilities";
import { ENOTTY } from "./errno";

function consoleJson(ctx: CaseContext): unknown[] {
  return jsonLinesOf(consoleText(ctx));
}

// A terminal case: a console socket, create with it, start, wait for the exit, check what came through the pty.
function terminalSteps(what: string, check: (lines: unknown[], ctx: CaseContext) => void): Step[] {
  return [
    { op: "create", console: true },
    { op: "start" },
    { op: "waitExit" },
    consoleDrained,
    { op: "check", what, check: (ctx) => check(consoleJson(ctx), ctx) },
    { op: "delete" },
    { op: "nothingLeft" },
  ];
}

function hostCpusAllowed(pid: number): string {
  const m = /^Cpus_allowed_list:\s*(\S+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? m[1]! : "";
}

export const configProcess: Case[] = [
  {
    id: "config.process.terminal",
    spec: "config.md#process",
    level: "MUST",
    title: "terminal true: a pseudoterminal is the process's stdin, stdout and stderr (sent to --console-socket)",
    setup: withConsole,
    bundle: (c) => {
      proc(c).terminal = true;
    },
    steps: terminalSteps("facts through the pty", (lines) => {
      const f = lines.find((l): l is Facts => typeof l === "object" && l !== null && "stdio" in l);
      if (!f) fail("no facts came through the console");
      eq(
        f.stdio.map((s) => s.tty),
        [true, true, true],
        "isatty(0..2)",
      );
      expect(f.ctty, "the pty is not the controlling terminal (open /dev/tty failed)");
    }),
  },
  {
    id: "config.process.terminal.default",
    spec: "config.md#process",
    level: "MUST",
    title: "terminal defaults to false: no pseudoterminal when it is unset",
    bundle: (c) => {
      delete proc(c).terminal;
    },
    steps: lifecycle("stdio are not terminals", (ctx) => {
      eq(
        ctx.facts().stdio.map((s) => s.tty),
        [false, false, false],
        "isatty(0..2)",
      );
    }),
  },
  {
    id: "config.process.consoleSize",
    spec: "config.md#process",
    level: "MUST",
    title: "consoleSize sets the terminal's size",
    args: ["winsize"],
    setup: withConsole,
    bundle: (c) => {
      proc(c).terminal = true;
      proc(c).consoleSize = { height: 33, width: 101 };
    },
    steps: terminalSteps("the pty's window size", (lines) => {
      const w = lines[0] as { rows: number; cols: number } | undefined;
      if (!w) fail("nothing came through the console");
      eq({ rows: w.rows, cols: w.cols }, { rows: 33, cols: 101 }, "window size");
    }),
  },
  {
    id: "config.process.consoleSize.ignored",
    spec: "config.md#process",
    level: "MUST",
    title: "consoleSize is ignored when terminal is false",
    args: ["winsize"],
    bundle: (c) => {
      proc(c).terminal = false;
      proc(c).consoleSize = { height: 33, width: 101 };
    },
    steps: lifecycle("no terminal, no error", (ctx) => {
      eq(ctx.json<{ errno: number }>(0).errno, ENOTTY, "TIOCGWINSZ on stdin: errno");
    }),
  },
  {
    id: "config.process.cwd",
    spec: "config.md#process",
    level: "MUST",
    title: "cwd is the working directory of the process",
    bundle: (c) => {
      proc(c).cwd = "/tmp";
    },
    steps: lifecycle("facts.cwd", (ctx) => eq(ctx.facts().cwd, "/tmp", "cwd")),
  },
  {
    id: "config.process.cwd.relative",
    spec: "config.md#process",
    level: "MUST",
    title: "cwd MUST be an absolute path: a relative one is an error",
    bundle: (c) => {
      proc(c).cwd = "tmp";
    },
    steps: refusedAtCreateOrStart("a relative cwd"),
  },
  {
    id: "config.process.env",
    spec: "config.md#process",
    level: "MUST",
    title: "env is the process's environment",
    bundle: (c) => {
      proc(c).env = ["SPEC_A=1", "SPEC_B=two words", "SPEC_EMPTY=", "PATH=/bin:/usr/bin"];
    },
    steps: lifecycle("facts.env", (ctx) => {
      for (const e of ["SPEC_A=1", "SPEC_B=two words", "SPEC_EMPTY=", "PATH=/bin:/usr/bin"]) includes(ctx.facts().env, e, "env");
    }),
  },
  {
    id: "config.process.args",
    spec: "config.md#process",
    level: "MUST",
    title: "args is the process's argv, exactly",
    args: ["multi", "read", "/proc/self/cmdline", "--", "echo", "two words", ""],
    steps: lifecycle("/proc/self/cmdline", (ctx) => {
      const args = ["/probe", "multi", "read", "/proc/self/cmdline", "--", "echo", "two words", ""];
      eq(ctx.json<{ content: string }>(0).content, `${args.join("\0")}\0`, "cmdline");
    }),
  },
  {
    id: "config.process.args.path-lookup",
    spec: "config.md#process",
    level: "MUST",
    title: "args[0] has execvp's file semantics: a name without a slash is looked up in PATH",
    bundle: (c) => {
      proc(c).args = ["probe", "facts"];
      proc(c).env = ["PATH=/nonexistent:/"];
    },
    steps: lifecycle("the probe ran", (ctx) => eq(ctx.facts().pid, 1, "pid")),
  },
  {
    id: "config.process.args.empty",
    spec: "config.md#process",
    level: "MUST",
    title: "at least one args entry is REQUIRED: empty args are an error",
    bundle: (c) => {
      proc(c).args = [];
    },
    steps: refusedAtCreateOrStart("empty args"),
  },
  {
    id: "config.process.rlimits",
    spec: "config.md#posix-process",
    level: "MUST",
    title: "rlimits: getrlimit reports the configured soft and hard values",
    bundle: (c) => {
      proc(c).rlimits = [
        { type: "RLIMIT_NOFILE", soft: 256, hard: 512 },
        { type: "RLIMIT_CORE", soft: 1024, hard: 4096 },
        { type: "RLIMIT_MSGQUEUE", soft: 4096, hard: 8192 },
      ];
    },
    steps: lifecycle("facts.rlimits", (ctx) => {
      const r = ctx.facts().rlimits;
      eq(r.RLIMIT_NOFILE, { soft: 256, hard: 512 }, "RLIMIT_NOFILE");
      eq(r.RLIMIT_CORE, { soft: 1024, hard: 4096 }, "RLIMIT_CORE");
      eq(r.RLIMIT_MSGQUEUE, { soft: 4096, hard: 8192 }, "RLIMIT_MSGQUEUE");
    }),
  },
  {
    id: "config.process.rlimits.invalid-type",
    spec: "config.md#posix-process",
    level: "MUST",
    title: "an rlimit type that maps to no kernel resource is an error",
    bundle: (c) => {
      proc(c).rlimits = [{ type: "RLIMIT_SPEC_TESTS_BOGUS", soft: 1, hard: 1 }];
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.process.rlimits.duplicate",
    spec: "config.md#posix-process",
    level: "MUST",
    title: "two rlimits of the same type are an error",
    bundle: (c) => {
      proc(c).rlimits = [
        { type: "RLIMIT_NOFILE", soft: 256, hard: 512 },
        { type: "RLIMIT_NOFILE", soft: 128, hard: 128 },
      ];
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.process.capabilities.bounding",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "capabilities.bounding is the bounding set, exactly",
    bundle: (c) => {
      proc(c).capabilities = { bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"], effective: ["CAP_KILL"], permitted: ["CAP_KILL"] };
    },
    steps: lifecycle("facts.caps.bounding", (ctx) => sameSet(ctx.facts().caps.bounding, ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"], "bounding set")),
  },
  {
    id: "config.process.capabilities.effective-permitted",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "capabilities.effective and .permitted are kept (uid 0: the kernel also grants the bounding set at exec)",
    bundle: (c) => {
      proc(c).capabilities = { bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"], effective: ["CAP_KILL", "CAP_NET_RAW"], permitted: ["CAP_KILL", "CAP_NET_RAW"] };
    },
    steps: lifecycle("facts.caps.effective and .permitted", (ctx) => {
      const caps = ctx.facts().caps;
      for (const set of ["effective", "permitted"] as const) {
        for (const cap of ["CAP_KILL", "CAP_NET_RAW"]) includes(caps[set], cap, set);
        for (const cap of caps[set]) includes(["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"], cap, `${set} within the bounding set`);
      }
    }),
  },
  {
    id: "config.process.capabilities.inheritable",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "capabilities.inheritable is the inheritable set, exactly",
    bundle: (c) => {
      proc(c).capabilities = { bounding: ["CAP_KILL", "CAP_NET_RAW"], effective: ["CAP_KILL", "CAP_NET_RAW"], permitted: ["CAP_KILL", "CAP_NET_RAW"], inheritable: ["CAP_NET_RAW"] };
    },
    steps: lifecycle("facts.caps.inheritable", (ctx) => sameSet(ctx.facts().caps.inheritable, ["CAP_NET_RAW"], "inheritable set")),
  },
  {
    id: "config.process.capabilities.ambient",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "capabilities.ambient is the ambient set; a non-root process keeps exactly those after exec",
    bundle: (c) => {
      const p = proc(c);
      p.user = { uid: 1000, gid: 1000 };
      p.capabilities = {
        bounding: ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        effective: ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        permitted: ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        inheritable: ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        ambient: ["CAP_NET_BIND_SERVICE"],
      };
    },
    steps: lifecycle("facts.caps", (ctx) => {
      const caps = ctx.facts().caps;
      sameSet(caps.ambient, ["CAP_NET_BIND_SERVICE"], "ambient set");
      sameSet(caps.permitted, ["CAP_NET_BIND_SERVICE"], "permitted set (uid 1000 after exec: the ambient set)");
      sameSet(caps.effective, ["CAP_NET_BIND_SERVICE"], "effective set (uid 1000 after exec: the ambient set)");
    }),
  },
  {
    id: "config.process.capabilities.unknown",
    spec: "config.md#linux-process",
    level: "SHOULD",
    title: "a capability the kernel does not know is a warning, not a failure",
    bundle: (c) => {
      const caps = proc(c).capabilities!;
      caps.bounding = [...(caps.bounding ?? []), "CAP_SPEC_TESTS_UNKNOWN"];
      caps.permitted = [...(caps.permitted ?? []), "CAP_SPEC_TESTS_UNKNOWN"];
    },
    steps: lifecycle("the container runs with the known capabilities", (ctx) => includes(ctx.facts().caps.bounding, "CAP_KILL", "bounding set")),
  },
  {
    id: "config.process.capabilities.ungrantable",
    spec: "config.md#linux-process",
    level: "SHOULD",
    title: "a capability the runtime itself lacks is a warning, not a failure",
    setup: (ctx) => {
      const missing = missingCapability();
      if (!missing) ctx.skip("the harness holds every capability; none is ungrantable here");
      ctx.values.set("cap", missing);
    },
    bundle: (c, ctx) => {
      const caps = proc(c).capabilities!;
      const cap = String(ctx.values.get("cap"));
      caps.bounding = [...(caps.bounding ?? []), cap];
      caps.effective = [...(caps.effective ?? []), cap];
      caps.permitted = [...(caps.permitted ?? []), cap];
    },
    steps: lifecycle("the container runs with the grantable capabilities", (ctx) => includes(ctx.facts().caps.bounding, "CAP_KILL", "bounding set")),
  },
  {
    id: "config.process.noNewPrivileges.true",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "noNewPrivileges true sets no_new_privs",
    bundle: (c) => {
      proc(c).noNewPrivileges = true;
    },
    steps: lifecycle("facts.noNewPrivs", (ctx) => eq(ctx.facts().noNewPrivs, true, "no_new_privs")),
  },
  {
    id: "config.process.noNewPrivileges.false",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "noNewPrivileges false leaves no_new_privs unset",
    bundle: (c) => {
      proc(c).noNewPrivileges = false;
    },
    steps: lifecycle("facts.noNewPrivs", (ctx) => eq(ctx.facts().noNewPrivs, false, "no_new_privs")),
  },
  {
    id: "config.process.oomScoreAdj",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "oomScoreAdj set: oom_score_adj is the given value",
    bundle: (c) => {
      proc(c).oomScoreAdj = 123;
    },
    steps: lifecycle("facts.oomScoreAdj", (ctx) => eq(ctx.facts().oomScoreAdj, 123, "oom_score_adj"), { create: { oomScoreAdj: 5 } }),
  },
  {
    id: "config.process.oomScoreAdj.unset",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "oomScoreAdj unset: oom_score_adj is not changed (the runtime's own, 7 here)",
    steps: lifecycle("facts.oomScoreAdj", (ctx) => eq(ctx.facts().oomScoreAdj, 7, "oom_score_adj"), { create: { oomScoreAdj: 7 } }),
  },
  {
    id: "config.process.scheduler",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "scheduler sets the policy and nice value; unset priority is 0",
    since: "1.1.0",
    refusable: "process.scheduler is optional",
    bundle: (c) => {
      proc(c).scheduler = { policy: "SCHED_BATCH", nice: 7 };
    },
    steps: lifecycle("facts.sched", (ctx) => {
      const s = ctx.facts().sched;
      eq(s.policy, 3, "policy (SCHED_BATCH is 3)");
      eq(s.nice, 7, "nice");
      eq(s.priority, 0, "priority");
    }),
  },
  {
    id: "config.process.ioPriority",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "ioPriority sets the I/O scheduling class and level",
    since: "1.1.0",
    refusable: "process.ioPriority is optional",
    bundle: (c) => {
      proc(c).ioPriority = { class: "IOPRIO_CLASS_BE", priority: 6 };
    },
    steps: lifecycle("facts.sched.ioprio", (ctx) => {
      const s = ctx.facts().sched;
      eq({ cls: s.ioprioClass, level: s.ioprioLevel }, { cls: 2, level: 6 }, "ioprio (IOPRIO_CLASS_BE is 2)");
    }),
  },
  {
    id: "config.process.execCPUAffinity.final",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "execCPUAffinity.final: an exec'd process runs on those CPUs",
    args: LONG_RUNNING,
    requires: [needs.cpus],
    steps: [
      { op: "create" },
      { op: "start" },
      {
        op: "exec",
        expect: "any",
        process: (p) => ({ ...p, args: ["/probe", "facts"], execCPUAffinity: { final: "1" } }),
        check: (r, ctx) => {
          if (r.status !== 0) ctx.skip(`refused (process.execCPUAffinity is optional): ${firstLine(r.stderr)}`);
          const f = jsonLinesOf(r.stdout)[0] as Facts | undefined;
          if (!f) fail(`exec printed no facts: ${firstLine(r.stderr)}`);
          eq(f.cpusAllowed, "1", "Cpus_allowed_list of the exec'd process");
        },
      },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "config.process.execCPUAffinity.unset",
    spec: "config.md#linux-process",
    level: "SHOULD",
    title: "without execCPUAffinity an exec'd process keeps the affinity it gets in the container's cgroup",
    args: LONG_RUNNING,
    steps: [
      { op: "create" },
      { op: "start" },
      {
        op: "exec",
        args: ["/probe", "facts"],
        check: (r, ctx) => {
          const f = jsonLinesOf(r.stdout)[0] as Facts | undefined;
          if (!f) fail(`exec printed no facts: ${firstLine(r.stderr)}`);
          eq(f.cpusAllowed, hostCpusAllowed(ctx.pid!.pid), "Cpus_allowed_list of the exec'd process (the container process's)");
        },
      },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "config.process.user",
    spec: "config.md#posix-platform-user",
    level: "MUST",
    title: "user: uid, gid, additionalGids and umask of the process",
    bundle: (c) => {
      proc(c).user = { uid: 1000, gid: 1001, additionalGids: [5, 1002], umask: 0o077 };
    },
    steps: lifecycle("facts", (ctx) => {
      const f = ctx.facts();
      eq({ uid: f.uid, euid: f.euid }, { uid: 1000, euid: 1000 }, "uid");
      eq({ gid: f.gid, egid: f.egid }, { gid: 1001, egid: 1001 }, "gid");
      sameSet(f.groups.filter((g) => g !== 1001), [5, 1002], "supplementary groups");
      eq(f.umask, 0o077, "umask");
    }),
  },
  {
    id: "config.process.user.umask-unset",
    spec: "config.md#posix-platform-user",
    level: "SHOULD",
    title: "umask unset: the umask of the calling process is kept (0027 here)",
    steps: lifecycle("facts.umask", (ctx) => eq(ctx.facts().umask.toString(8), "27", "umask (octal)"), { create: { umask: 0o027 } }),
  },
  {
    id: "config.process.apparmorProfile.unavailable",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "an AppArmor profile on a host without AppArmor cannot be applied: an error",
    requires: [needs.noApparmor],
    bundle: (c) => {
      proc(c).apparmorProfile = "spec-tests-profile";
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.process.selinuxLabel.unavailable",
    spec: "config.md#linux-process",
    level: "MUST",
    title: "an SELinux label on a host without SELinux cannot be applied: an error",
    requires: [needs.noSelinux],
    bundle: (c) => {
      proc(c).selinuxLabel = "system_u:system_r:container_t:s0:c1,c2";
    },
    steps: refusedAtCreate(),
  },
];

