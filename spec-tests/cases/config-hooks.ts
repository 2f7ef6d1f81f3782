// config.md#posix-platform-hooks and the hook steps of runtime.md#lifecycle: where each hook runs, when, in
// which order, with what on stdin, and what happens when one fails.
import * as fs from "fs";
import type { Case, CaseContext, HookRecord, Level, State, Step } from "../harness/case";
import { eq, expect, fail, includes, oneOf } from "../harness/check";
import type { Config, HookName } from "../harness/config";
import { addHook, containerRecordHook, failingHook, hookTags, recordHook } from "../harness/dsl";
import { cgroupDirs, nsInode } from "../harness/host";

const KINDS: HookName[] = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];
const CREATE_KINDS: HookName[] = ["prestart", "createRuntime", "createContainer"];
const RUNTIME_NS_KINDS: HookName[] = ["prestart", "createRuntime", "poststart", "poststop"];
const NS_TYPES = ["mnt", "net", "pid", "uts", "ipc"];

// The user process reads /hooks.log first (so it shows which hooks ran before it), then sleeps.
const HOOKED_ARGS = ["multi", "read", "/hooks.log", "--", "sleep", "600"];

// Every hook kind twice (tags K-a, K-b). Runtime-namespace hooks and createContainer are the host probe; the
// startContainer ones are the rootfs probe (their path resolves in the container). Each records whether the
// host path of the rootfs and the container's cgroup directories exist when it runs.
function allHooks(c: Config, ctx: CaseContext): void {
  const exists = [ctx.rootfs, ...cgroupDirs(ctx.cgroupsPath)];
  for (const kind of KINDS) {
    for (const tag of ["a", "b"]) {
      addHook(c, kind, kind === "startContainer" ? containerRecordHook(`${kind}-${tag}`) : recordHook(ctx, `${kind}-${tag}`, exists));
    }
  }
}

function records(ctx: CaseContext, kind: HookName): HookRecord[] {
  return ctx.hookRecords().filter((r) => r.argv[0]?.startsWith(`${kind}-`));
}

function stateOf(r: HookRecord): State {
  try {
    return JSON.parse(r.stdin) as State;
  } catch {
    return fail(`${r.argv[0]}: stdin is not JSON: ${JSON.stringify(r.stdin.slice(0, 100))}`);
  }
}

interface HookChecks {
  afterCreate?: (ctx: CaseContext) => void;
  whenStartReturns?: (ctx: CaseContext) => void; // the records as they are the moment start returns
  afterStart?: (ctx: CaseContext) => void; // once the user program has printed what it saw
  afterDelete?: (ctx: CaseContext) => void;
}

// One container with every hook; the case's checks run after create, the moment start returns, once the
// user program has run, and after delete.
function hooked(id: string, spec: string, level: Level, title: string, checks: HookChecks): Case {
  const steps: Step[] = [{ op: "create" }];
  if (checks.afterCreate) steps.push({ op: "check", what: "after create", check: checks.afterCreate });
  steps.push({ op: "start" });
  if (checks.whenStartReturns) steps.push({ op: "check", what: "when start returns", check: checks.whenStartReturns });
  steps.push({ op: "waitOutput", pattern: /"path":"\/hooks\.log"/ });
  if (checks.afterStart) steps.push({ op: "check", what: "after start", check: checks.afterStart });
  steps.push({ op: "kill", signal: "SIGKILL" }, { op: "waitExit" }, { op: "delete" });
  if (checks.afterDelete) steps.push({ op: "check", what: "after delete", check: checks.afterDelete });
  steps.push({ op: "nothingLeft" });
  return { id, spec, level, title, args: HOOKED_ARGS, bundle: allHooks, steps };
}

const tagsOf = (kinds: HookName[]) => kinds.flatMap((k) => [`${k}-a`, `${k}-b`]);

function checkRuntimeNamespace(ctx: CaseContext, kind: HookName): void {
  const rs = records(ctx, kind);
  expect(rs.length === 2, `${kind}: ${rs.length} record(s), expected 2 (the hook's path is on the host, outside the rootfs)`);
  for (const r of rs) {
    for (const ns of ["net", "pid", "uts", "ipc"]) eq(r.namespaces[ns], nsInode("self", ns), `${r.argv[0]}: ${ns} namespace (the runtime's)`);
    if (r.target) {
      for (const ns of NS_TYPES) expect(r.namespaces[ns] !== r.target.namespaces[ns], `${r.argv[0]}: runs in the container's ${ns} namespace`);
    }
  }
}

// The hook's namespaces against the container process's, read from the host.
function checkContainerNamespace(ctx: CaseContext, kind: HookName): void {
  const rs = records(ctx, kind);
  expect(rs.length === 2, `${kind}: ${rs.length} record(s), expected 2`);
  const pid = ctx.pid?.pid;
  if (pid === undefined) fail("no container process");
  for (const r of rs) {
    for (const ns of NS_TYPES) eq(r.namespaces[ns], nsInode(pid, ns), `${r.argv[0]}: ${ns} namespace (the container's)`);
  }
}

// Before pivot_root and after the mounts: the container's mount table still shows the rootfs at its host path,
// with the configured mounts (here /dev/shm) under it. Runtime-namespace hooks read it through the container
// process; a createContainer hook, in the container's mount namespace, reads its own.
function checkBeforePivot(ctx: CaseContext, kind: HookName): void {
  const rs = records(ctx, kind);
  expect(rs.length === 2, `${kind}: ${rs.length} record(s), expected 2`);
  for (const r of rs) {
    const mps = kind === "createContainer" ? r.mountPoints : r.target?.mountPoints;
    if (!mps) fail(`${r.argv[0]}: cannot read the container's mount table`);
    includes(mps, `${ctx.rootfs}/dev/shm`, `${r.argv[0]}: container mount points (mounts done, root not yet pivoted)`);
  }
}

function hookFailsAtCreate(kind: HookName): Case {
  return {
    id: `runtime.lifecycle.${kind}-fails`,
    spec: "runtime.md#lifecycle",
    level: "MUST",
    title: `a failing ${kind} hook: create fails, the container is destroyed, poststop hooks run`,
    bundle: (c, ctx) => {
      addHook(c, kind, failingHook(ctx, `${kind}-fail`));
      addHook(c, "poststop", recordHook(ctx, "poststop-a"));
    },
    steps: [
      { op: "create", expect: "error" },
      { op: "check", what: "poststop hooks", check: (ctx) => includes(hookTags(ctx), "poststop-a", "hooks that ran") },
    ],
  };
}

export const configHooks: Case[] = [
  {
    id: "config.hooks.path-absolute",
    spec: "config.md#posix-platform-hooks",
    level: "MUST",
    title: "a hook path MUST be absolute: a relative one is an error",
    bundle: (c) => addHook(c, "prestart", { path: "probe", args: ["probe", "exit", "0"] }),
    steps: [{ op: "create", expect: "error" }],
  },
  {
    id: "config.hooks.timeout-positive",
    spec: "config.md#posix-platform-hooks",
    level: "MUST",
    title: "a hook timeout MUST be greater than zero: 0 is an error",
    bundle: (c, ctx) => addHook(c, "prestart", { path: ctx.hostProbe, args: ["probe", "exit", "0"], timeout: 0 }),
    steps: [{ op: "create", expect: "error" }],
  },
  {
    id: "config.hooks.args",
    spec: "config.md#posix-platform-hooks",
    level: "MUST",
    title: "hook args are the hook's argv, exactly (args[0] included)",
    bundle: (c, ctx) => addHook(c, "prestart", { path: ctx.hostProbe, args: ["spec-argv0", "record", ctx.hookLog, "/spec arg with spaces"] }),
    steps: [
      { op: "create" },
      { op: "check", what: "argv", check: (ctx) => eq(ctx.hookRecords()[0]?.argv, ["spec-argv0", "record", ctx.hookLog, "/spec arg with spaces"], "the hook's argv") },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "config.hooks.env",
    spec: "config.md#posix-platform-hooks",
    level: "MUST",
    title: "hook env is the hook's environment, exactly",
    bundle: (c, ctx) => addHook(c, "prestart", { ...recordHook(ctx, "prestart-env"), env: ["SPEC_HOOK=1", "PATH=/spec"] }),
    steps: [
      { op: "create" },
      { op: "check", what: "environment", check: (ctx) => eq(ctx.hookRecords()[0]?.env, ["SPEC_HOOK=1", "PATH=/spec"], "the hook's environment") },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "config.hooks.timeout",
    spec: "config.md#posix-platform-hooks",
    level: "MUST",
    title: "a hook that outlives its timeout is aborted: create fails within seconds",
    bundle: (c, ctx) => addHook(c, "prestart", { path: ctx.hostProbe, args: ["probe", "sleep", "60"], timeout: 1 }),
    steps: [{ op: "create", expect: "error", check: (r) => expect(r.ms < 20_000, `create took ${r.ms} ms with a 1 s hook timeout`) }],
  },
  hooked("config.hooks.order", "config.md#posix-platform-hooks", "MUST", "hooks of one kind run in the listed order", {
    afterDelete: (ctx) => {
      const tags = hookTags(ctx);
      for (const k of KINDS) {
        const a = tags.indexOf(`${k}-a`);
        const b = tags.indexOf(`${k}-b`);
        expect(a >= 0 && b >= 0, `${k}: both hooks should have run; ran: ${tags.join(", ")}`);
        expect(a < b, `${k}: ${k}-b ran before ${k}-a`);
      }
    },
  }),
  hooked("config.hooks.sequence", "runtime.md#lifecycle", "MUST", "prestart, createRuntime, createContainer during create; startContainer, poststart during start; poststop during delete", {
    afterCreate: (ctx) => eq(hookTags(ctx), tagsOf(CREATE_KINDS), "hooks run by create"),
    afterStart: (ctx) => eq(hookTags(ctx), tagsOf([...CREATE_KINDS, "startContainer", "poststart"]), "hooks run by create and start"),
    afterDelete: (ctx) => eq(hookTags(ctx), tagsOf(KINDS), "hooks run by create, start and delete"),
  }),
  hooked("config.hooks.state-stdin", "config.md#posix-platform-hooks", "MUST", "every hook gets the container's state on stdin", {
    afterDelete: (ctx) => {
      const rs = ctx.hookRecords();
      expect(rs.length === 12, `${rs.length} hook records, expected 12`);
      for (const r of rs) {
        const s = stateOf(r);
        eq(s.id, ctx.id, `${r.argv[0]}: state.id`);
        eq(s.bundle, ctx.bundle, `${r.argv[0]}: state.bundle`);
        expect(typeof s.ociVersion === "string" && s.ociVersion !== "", `${r.argv[0]}: state.ociVersion is missing`);
      }
    },
  }),
  hooked("config.hooks.state-status", "runtime.md#state", "MUST", "the state a hook gets has the status of its lifecycle step", {
    afterDelete: (ctx) => {
      const want: Record<HookName, string[]> = {
        prestart: ["creating", "created"],
        createRuntime: ["creating", "created"],
        createContainer: ["creating", "created"],
        startContainer: ["created"],
        poststart: ["running"],
        poststop: ["stopped"],
      };
      for (const k of KINDS) for (const r of records(ctx, k)) oneOf(stateOf(r).status, want[k], `${r.argv[0]}: state.status`);
    },
  }),
  hooked("config.hooks.state-pid.runtime-namespace", "runtime.md#state", "MUST", "hooks in the runtime namespace get the container process's pid as the runtime sees it", {
    afterStart: (ctx) => {
      for (const k of ["prestart", "createRuntime", "poststart"] as HookName[]) for (const r of records(ctx, k)) eq(stateOf(r).pid, ctx.pid?.pid, `${r.argv[0]}: state.pid`);
    },
  }),
  hooked("config.hooks.state-pid.container-namespace", "runtime.md#state", "MUST", "hooks in the container namespace get the container process's pid as the container sees it", {
    afterStart: (ctx) => {
      for (const k of ["createContainer", "startContainer"] as HookName[]) for (const r of records(ctx, k)) eq(stateOf(r).pid, 1, `${r.argv[0]}: state.pid (the container's pid 1)`);
    },
  }),
  ...RUNTIME_NS_KINDS.map((kind) =>
    hooked(`config.hooks.${kind}.namespace`, `config.md#${kind === "prestart" ? "prestart" : kind === "createRuntime" ? "createruntime-hooks" : kind}`, "MUST", `${kind} hooks: the path resolves and the hook runs in the runtime namespace`, {
      afterDelete: (ctx) => checkRuntimeNamespace(ctx, kind),
    }),
  ),
  hooked("config.hooks.createContainer.namespace", "config.md#createcontainer-hooks", "MUST", "createContainer hooks: the path resolves in the runtime namespace, the hook runs in the container namespace", {
    afterCreate: (ctx) => checkContainerNamespace(ctx, "createContainer"),
  }),
  hooked("config.hooks.startContainer.namespace", "config.md#startcontainer-hooks", "MUST", "startContainer hooks: the path resolves and the hook runs in the container namespace", {
    afterStart: (ctx) => {
      expect(!fs.existsSync("/probe"), "the host has a /probe: the hook path would not tell the namespaces apart");
      checkContainerNamespace(ctx, "startContainer");
    },
  }),
  hooked("config.hooks.create-hooks.before-pivot", "config.md#prestart", "MUST", "prestart, createRuntime and createContainer hooks run after the mounts are made, before pivot_root", {
    afterCreate: (ctx) => {
      for (const k of CREATE_KINDS) checkBeforePivot(ctx, k);
    },
  }),
  hooked("config.hooks.startContainer.before-process", "config.md#startcontainer-hooks", "MUST", "startContainer hooks run during start, before the user-specified program", {
    afterCreate: (ctx) => eq(records(ctx, "startContainer").length, 0, "startContainer hooks run by create"),
    afterStart: (ctx) => {
      const seen = ctx.json<{ content: string | null }>(0).content ?? "";
      expect(seen.includes("startContainer-b"), "the user program did not see the startContainer hooks' records in /hooks.log: they ran after it started");
    },
  }),
  hooked("config.hooks.poststart.after-process", "config.md#poststart", "MUST", "poststart hooks run after the user-specified program has been executed, before start returns", {
    whenStartReturns: (ctx) => {
      const rs = records(ctx, "poststart");
      eq(rs.length, 2, "poststart hooks run when start returned");
      for (const r of rs) eq(r.target?.cmdline, ["/probe", ...HOOKED_ARGS], `${r.argv[0]}: the container process's command line`);
    },
  }),
  hooked("config.hooks.poststop.after-delete", "config.md#poststop", "MUST", "poststop hooks run after the container is deleted, before delete returns", {
    afterStart: (ctx) => eq(records(ctx, "poststop").length, 0, "poststop hooks run before delete"),
    afterDelete: (ctx) => {
      const rs = records(ctx, "poststop");
      eq(rs.length, 2, "poststop hooks run when delete returned");
      for (const r of rs) {
        for (const d of cgroupDirs(ctx.cgroupsPath)) eq(r.exists[d], false, `${r.argv[0]}: cgroup ${d} still existed`);
      }
    },
  }),
  ...CREATE_KINDS.map(hookFailsAtCreate),
  {
    id: "runtime.lifecycle.startContainer-fails",
    spec: "runtime.md#lifecycle",
    level: "MUST",
    title: "a failing startContainer hook: start fails, the container is stopped and destroyed, poststop hooks run",
    args: ["write", "/spec-ran", "x"],
    bundle: (c, ctx) => {
      addHook(c, "startContainer", { path: "/probe", args: ["startContainer-fail", "exit", "3"] });
      addHook(c, "poststop", recordHook(ctx, "poststop-a"));
    },
    steps: [
      { op: "create" },
      { op: "start", expect: "error" },
      { op: "waitExit" },
      { op: "check", what: "the user program", check: (ctx) => expect(!fs.existsSync(ctx.hostPath("spec-ran")), "the user program ran") },
      { op: "nothingLeft" },
      { op: "check", what: "poststop hooks", check: (ctx) => includes(hookTags(ctx), "poststop-a", "hooks that ran") },
    ],
  },
  {
    id: "runtime.lifecycle.poststart-fails",
    spec: "runtime.md#lifecycle",
    level: "MUST",
    title: "a failing poststart hook is a warning: start succeeds, the next poststart hook runs, the container runs",
    args: ["sleep", "600"],
    bundle: (c, ctx) => {
      addHook(c, "poststart", failingHook(ctx, "poststart-fail"));
      addHook(c, "poststart", recordHook(ctx, "poststart-b"));
    },
    steps: [
      { op: "create" },
      { op: "start" },
      { op: "check", what: "hooks", check: (ctx) => includes(hookTags(ctx), "poststart-b", "hooks that ran") },
      { op: "state", status: "running" },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "runtime.lifecycle.poststop-fails",
    spec: "runtime.md#lifecycle",
    level: "MUST",
    title: "a failing poststop hook is a warning: delete succeeds, the next poststop hook runs",
    bundle: (c, ctx) => {
      addHook(c, "poststop", failingHook(ctx, "poststop-fail"));
      addHook(c, "poststop", recordHook(ctx, "poststop-b"));
    },
    steps: [
      { op: "create" },
      { op: "start" },
      { op: "waitExit" },
      { op: "delete" },
      { op: "check", what: "hooks", check: (ctx) => includes(hookTags(ctx), "poststop-b", "hooks that ran") },
      { op: "nothingLeft" },
    ],
  },
];
