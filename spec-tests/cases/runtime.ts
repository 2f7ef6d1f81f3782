// runtime.md: the state, the lifecycle, errors, and the operations (query state, create, start, kill, delete)
// in every state, including the refusals. runtime-linux.md: file descriptors and /dev symlinks.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import type { Case, CaseContext, ProbeLs, State } from "../harness/case";
import { eq, expect, fail, firstLine } from "../harness/check";
import { addMount, holdNamespaces, LONG_RUNNING, lifecycle, linux, proc, refusedAtCreate, setNamespace } from "../harness/dsl";
import { cgroupDirs, cgroupHierarchies, existingCgroupDirs, isAlive, nsInode, processId, readOr } from "../harness/host";

const KNOWN_STATUS = ["creating", "created", "running", "stopped"];

// The state JSON against schema/state-schema.json, and the values this container must have.
function checkState(s: State, ctx: CaseContext, status: string): void {
  expect(typeof s.ociVersion === "string" && s.ociVersion !== "", "state.ociVersion is not a non-empty string");
  eq(s.id, ctx.id, "state.id");
  eq(s.status, status, "state.status");
  expect(KNOWN_STATUS.includes(s.status), `state.status ${JSON.stringify(s.status)} is not a status of runtime.md`);
  eq(s.bundle, ctx.bundle, "state.bundle (the absolute bundle path)");
  if (status === "created" || status === "running") eq(s.pid, ctx.pid?.pid, "state.pid (the container process)");
  if (s.pid !== undefined) expect(Number.isInteger(s.pid) && s.pid >= 0, `state.pid ${JSON.stringify(s.pid)} is not a non-negative integer`);
  if (s.annotations !== undefined) {
    expect(typeof s.annotations === "object" && s.annotations !== null && !Array.isArray(s.annotations), "state.annotations is not a map");
    for (const [k, v] of Object.entries(s.annotations)) expect(typeof v === "string", `state.annotations[${k}] is not a string`);
  }
}

// A CLI call that is missing the container id (or bundle) must fail.
function missingArgument(id: string, spec: string, args: (ctx: CaseContext) => string[], title: string): Case {
  return {
    id,
    spec,
    level: "MUST",
    title,
    steps: [
      {
        op: "check",
        what: "the call",
        check: async (ctx) => {
          const r = await ctx.invoke(args(ctx));
          expect(r.status !== 0, `\`${args(ctx).join(" ")}\` succeeded`);
          eq(fs.readdirSync(ctx.runtime.root).filter((e) => !e.startsWith(".")), [], "entries in the runtime's root");
        },
      },
    ],
  };
}

function alive(ctx: CaseContext): void {
  expect(ctx.pid !== undefined && isAlive(ctx.pid), "the container process is gone");
}

export const runtimeCases: Case[] = [
  {
    id: "runtime.scope",
    spec: "runtime.md#scope-of-a-container",
    level: "MUST",
    title: "the creator can use every operation on its container: create, state, start, kill, delete",
    args: ["wait-signal"],
    steps: [
      { op: "create" },
      { op: "state", status: "created" },
      { op: "start" },
      { op: "waitOutput", pattern: /ready/ },
      { op: "state", status: "running" },
      { op: "kill", signal: "SIGTERM" },
      { op: "waitExit" },
      { op: "state", status: "stopped" },
      { op: "delete" },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "runtime.state.created",
    spec: "runtime.md#state",
    level: "MUST",
    title: "state of a created container: ociVersion, id, status created, pid (the one in --pid-file), absolute bundle (state-schema.json)",
    args: LONG_RUNNING,
    steps: [
      { op: "create" },
      {
        op: "state",
        check: (s, ctx) => {
          checkState(s, ctx, "created");
          eq(Number(readOr(path.join(ctx.dir, "pid"), "").trim()), s.pid, "the pid in --pid-file");
        },
      },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "runtime.state.running",
    spec: "runtime.md#state",
    level: "MUST",
    title: "state of a running container: status running, the same pid",
    args: LONG_RUNNING,
    steps: [{ op: "create" }, { op: "start" }, { op: "state", check: (s, ctx) => checkState(s, ctx, "running") }, { op: "delete", force: true }, { op: "nothingLeft" }],
  },
  {
    id: "runtime.state.stopped",
    spec: "runtime.md#state",
    level: "MUST",
    title: "state of a container whose process exited: status stopped",
    steps: [{ op: "create" }, { op: "start" }, { op: "waitExit" }, { op: "state", check: (s, ctx) => checkState(s, ctx, "stopped") }, { op: "delete" }, { op: "nothingLeft" }],
  },
  {
    id: "runtime.state.bundle-absolute",
    spec: "runtime.md#state",
    level: "MUST",
    title: "state.bundle is absolute even when create was given a relative bundle path",
    args: LONG_RUNNING,
    steps: [
      {
        op: "check",
        what: "create --bundle bundle (relative to the working directory)",
        check: async (ctx) => {
          const pidFile = path.join(ctx.dir, "pid");
          const r = await ctx.invoke(["create", "--bundle", "bundle", "--pid-file", pidFile, ctx.id], { outputName: "container" });
          if (r.status !== 0) fail(`create failed: ${firstLine(r.stderr)}`);
          const p = processId(Number(readOr(pidFile, "0").trim()));
          if (p) ctx.pid = p;
          eq((await ctx.state()).bundle, ctx.bundle, "state.bundle");
        },
      },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  missingArgument("runtime.state.no-id", "runtime.md#query-state", () => ["state"], "state without a container id is an error"),
  {
    id: "runtime.state.nonexistent",
    spec: "runtime.md#query-state",
    level: "MUST",
    title: "state of a container that does not exist is an error",
    steps: [{ op: "state", expect: "error" }],
  },
  missingArgument("runtime.create.no-id", "runtime.md#create", (ctx) => ["create", "--bundle", ctx.bundle], "create without a container id is an error, and creates nothing"),
  {
    id: "runtime.create.no-bundle",
    spec: "runtime.md#create",
    level: "MUST",
    title: "create with a bundle path that holds no bundle is an error, and creates nothing",
    steps: [
      {
        op: "check",
        what: "create --bundle <missing>",
        check: async (ctx) => {
          const r = await ctx.invoke(["create", "--bundle", path.join(ctx.dir, "no-such-bundle"), ctx.id]);
          expect(r.status !== 0, "create succeeded");
        },
      },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "runtime.create.duplicate-id",
    spec: "runtime.md#create",
    level: "MUST",
    title: "create with the id of an existing container is an error; no new container; the existing one is untouched",
    args: LONG_RUNNING,
    steps: [
      { op: "create" },
      { op: "create", expect: "error" },
      {
        op: "check",
        what: "the first container",
        check: async (ctx) => {
          alive(ctx);
          const s = await ctx.state();
          eq({ status: s.status, pid: s.pid }, { status: "created", pid: ctx.pid?.pid }, "state of the first container");
          const procs = existingCgroupDirs(ctx.cgroupsPath).map((d) => readOr(path.join(d, "cgroup.procs"), "").split("\n").filter((l) => l !== ""));
          for (const p of procs) eq(p, [String(ctx.pid!.pid)], "processes in the container's cgroup");
        },
      },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "runtime.create.invalid-id",
    spec: "runtime.md#create",
    level: "MUST",
    title: "create with an id that is not valid (\"../<id>\") is an error, and creates nothing, inside or outside the root",
    steps: [
      {
        op: "check",
        what: "create ../ID",
        check: async (ctx) => {
          const bad = `../${ctx.id}-escape`;
          ctx.addCleanup(async () => {
            await ctx.invoke(["delete", "--force", bad]);
            fs.rmSync(path.join(path.dirname(ctx.runtime.root), `${ctx.id}-escape`), { recursive: true, force: true });
          });
          const r = await ctx.invoke(["create", "--bundle", ctx.bundle, bad]);
          expect(r.status !== 0, `create ${bad} succeeded`);
          expect(!fs.existsSync(path.join(path.dirname(ctx.runtime.root), `${ctx.id}-escape`)), `create ${bad} left ${path.join(path.dirname(ctx.runtime.root), `${ctx.id}-escape`)}`);
          eq(fs.readdirSync(ctx.runtime.root).filter((e) => !e.startsWith(".")), [], "entries in the runtime's root");
          eq(existingCgroupDirs(ctx.cgroupsPath), [], "cgroups of the container");
        },
      },
    ],
  },
  {
    id: "runtime.create.applies-config",
    spec: "runtime.md#create",
    level: "MUST",
    title: "create applies the config but the process: namespaces, hostname, mounts and cgroup are in place before start",
    args: LONG_RUNNING,
    bundle: (c) => {
      c.hostname = "spec-created";
      addMount(c, { destination: "/spec-created", type: "tmpfs", source: "tmpfs", options: ["size=1m"] });
    },
    steps: [
      { op: "create" },
      {
        op: "check",
        what: "the created container, from the host",
        check: (ctx) => {
          const pid = ctx.pid!.pid;
          for (const ns of ["net", "uts", "ipc", "mnt", "pid"]) expect(nsInode(pid, ns) !== nsInode("self", ns), `the container process is in the host's ${ns} namespace`);
          const uts = spawnSync("nsenter", ["--target", String(pid), "--uts", ctx.hostProbe, "facts"], { encoding: "utf8" });
          const hostname = (JSON.parse(uts.stdout || "{}") as { hostname?: string }).hostname;
          eq(hostname, "spec-created", "hostname in the container's uts namespace");
          expect(fs.readFileSync(`/proc/${pid}/mountinfo`, "utf8").includes(" /spec-created "), "/spec-created is not mounted");
          expect(cgroupDirs(ctx.cgroupsPath).some((d) => readOr(path.join(d, "cgroup.procs"), "").split("\n").includes(String(pid))), "the process is not in its cgroup");
        },
      },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "runtime.create.process-not-run",
    spec: "runtime.md#create",
    level: "MUST",
    title: "create does not run the user-specified program; start does",
    args: ["multi", "write", "/spec-ran", "x", "--", "sleep", "600"],
    steps: [
      { op: "create" },
      { op: "sleep", ms: 300 },
      {
        op: "check",
        what: "after create",
        check: (ctx) => {
          expect(!fs.existsSync(ctx.hostPath("spec-ran")), "the program ran at create");
          const cmdline = readOr(`/proc/${ctx.pid!.pid}/cmdline`, "").split("\0").filter((s) => s !== "");
          expect(cmdline.join(" ") !== ["/probe", "multi", "write", "/spec-ran", "x", "--", "sleep", "600"].join(" "), "the container process is already the user program");
        },
      },
      { op: "start" },
      { op: "waitOutput", pattern: /"ok":true/ },
      { op: "check", what: "after start", check: (ctx) => expect(fs.existsSync(ctx.hostPath("spec-ran")), "the program did not run at start") },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "runtime.create.config-changes-ignored",
    spec: "runtime.md#lifecycle",
    level: "MUST",
    title: "changes to config.json after create do not affect the container",
    steps: [
      { op: "create" },
      {
        op: "editConfig",
        patch: (c) => {
          c.hostname = "spec-changed";
          proc(c).args = ["/probe", "echo", "spec-changed"];
        },
      },
      { op: "start" },
      { op: "waitExit" },
      {
        op: "check",
        what: "the process",
        check: (ctx) => {
          expect(!ctx.stdout().includes("spec-changed"), "the changed args ran");
          eq(ctx.facts().hostname, "runc", "hostname");
        },
      },
      { op: "delete" },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "runtime.create.cannot-apply",
    spec: "runtime.md#create",
    level: "MUST",
    title: "a property that cannot be applied (a bind mount of a missing source) is an error, and nothing is created",
    bundle: (c, ctx) => addMount(c, { destination: "/spec-missing", type: "none", source: path.join(ctx.dir, "no-such-source"), options: ["bind"] }),
    steps: refusedAtCreate(),
  },
  missingArgument("runtime.start.no-id", "runtime.md#start", () => ["start"], "start without a container id is an error"),
  {
    id: "runtime.start.process",
    spec: "runtime.md#start",
    level: "MUST",
    title: "start runs the user-specified program as process specifies",
    bundle: (c) => {
      proc(c).args = ["/probe", "multi", "echo", "spec-started", "--", "facts"];
      proc(c).cwd = "/etc";
    },
    steps: lifecycle("the program's output", (ctx) => {
      expect(ctx.stdout().startsWith("spec-started\n"), `the program did not print its first line: ${JSON.stringify(ctx.stdout().slice(0, 80))}`);
      eq(ctx.facts().cwd, "/etc", "cwd");
    }),
  },
  {
    id: "runtime.start.running",
    spec: "runtime.md#start",
    level: "MUST",
    title: "start of a running container is an error and has no effect",
    args: LONG_RUNNING,
    steps: [
      { op: "create" },
      { op: "start" },
      { op: "start", expect: "error" },
      { op: "check", what: "the container", check: alive },
      { op: "state", check: (s, ctx) => eq({ status: s.status, pid: s.pid }, { status: "running", pid: ctx.pid?.pid }, "state") },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "runtime.start.stopped",
    spec: "runtime.md#start",
    level: "MUST",
    title: "start of a stopped container is an error and has no effect (the program does not run again)",
    args: ["echo", "spec-ran"],
    steps: [
      { op: "create" },
      { op: "start" },
      { op: "waitExit" },
      { op: "start", expect: "error" },
      { op: "sleep", ms: 200 },
      { op: "check", what: "the output", check: (ctx) => eq(ctx.stdout().split("\n").filter((l) => l === "spec-ran").length, 1, "times the program ran") },
      { op: "state", status: "stopped" },
      { op: "delete" },
      { op: "nothingLeft" },
    ],
  },
  missingArgument("runtime.kill.no-id", "runtime.md#kill", () => ["kill"], "kill without a container id is an error"),
  {
    id: "runtime.kill.running",
    spec: "runtime.md#kill",
    level: "MUST",
    title: "kill sends the signal to the container process (SIGUSR1 is caught and reported)",
    args: ["wait-signal"],
    steps: [
      { op: "create" },
      { op: "start" },
      { op: "waitOutput", pattern: /ready/ },
      { op: "kill", signal: "SIGUSR1" },
      { op: "waitExit" },
      { op: "check", what: "the signal", check: (ctx) => expect(ctx.stdout().includes("signal 10"), `the process did not get SIGUSR1: ${JSON.stringify(ctx.stdout())}`) },
      { op: "state", status: "stopped" },
      { op: "delete" },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "runtime.kill.created",
    spec: "runtime.md#kill",
    level: "MUST",
    title: "kill of a created container sends the signal (SIGKILL stops it)",
    args: LONG_RUNNING,
    steps: [{ op: "create" }, { op: "kill", signal: "SIGKILL" }, { op: "waitExit" }, { op: "state", status: "stopped" }, { op: "delete" }, { op: "nothingLeft" }],
  },
  {
    id: "runtime.kill.stopped",
    spec: "runtime.md#kill",
    level: "MUST",
    title: "kill of a stopped container is an error and has no effect",
    steps: [{ op: "create" }, { op: "start" }, { op: "waitExit" }, { op: "kill", signal: "SIGKILL", expect: "error" }, { op: "state", status: "stopped" }, { op: "delete" }, { op: "nothingLeft" }],
  },
  missingArgument("runtime.delete.no-id", "runtime.md#delete", () => ["delete"], "delete without a container id is an error"),
  {
    id: "runtime.delete.running",
    spec: "runtime.md#delete",
    level: "MUST",
    title: "delete of a running container is an error and has no effect",
    args: LONG_RUNNING,
    steps: [
      { op: "create" },
      { op: "start" },
      { op: "delete", expect: "error" },
      { op: "check", what: "the container", check: alive },
      { op: "state", status: "running" },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "runtime.delete.created",
    spec: "runtime.md#delete",
    level: "MUST",
    title: "delete of a created (not stopped) container is an error and has no effect",
    args: LONG_RUNNING,
    steps: [
      { op: "create" },
      { op: "delete", expect: "error" },
      { op: "check", what: "the container", check: alive },
      { op: "state", status: "created" },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "runtime.delete.resources",
    spec: "runtime.md#delete",
    level: "MUST",
    title: "delete removes what create made: state, cgroups, mounts, processes",
    bundle: (c) => addMount(c, { destination: "/spec-mnt", type: "tmpfs", source: "tmpfs", options: ["size=1m"] }),
    steps: [{ op: "create" }, { op: "start" }, { op: "waitExit" }, { op: "delete" }, { op: "nothingLeft" }],
  },
  {
    id: "runtime.delete.foreign",
    spec: "runtime.md#delete",
    level: "MUST",
    title: "delete keeps what the container did not create: a parent cgroup, a bind source, a joined namespace",
    setup: async (ctx) => {
      makeCgroup(ctx.cgroupsPath);
      fs.mkdirSync(path.join(ctx.dir, "data"));
      fs.writeFileSync(path.join(ctx.dir, "data", "keep"), "keep");
      ctx.values.set("holder", await holdNamespaces(ctx, ["network"]));
    },
    bundle: (c, ctx) => {
      linux(c).cgroupsPath = `${ctx.cgroupsPath}/leaf`;
      addMount(c, { destination: "/spec-data", type: "none", source: path.join(ctx.dir, "data"), options: ["rbind"] });
      setNamespace(c, "network", `/proc/${Number(ctx.values.get("holder"))}/ns/net`);
    },
    steps: [
      { op: "create" },
      { op: "start" },
      { op: "waitExit" },
      { op: "delete" },
      { op: "nothingLeft" },
      {
        op: "check",
        what: "what the container did not create",
        check: (ctx) => {
          for (const d of cgroupDirs(ctx.cgroupsPath)) expect(fs.existsSync(d), `the parent cgroup ${d} was removed`);
          eq(readOr(path.join(ctx.dir, "data", "keep"), ""), "keep", "the bind source's file");
          const holder = Number(ctx.values.get("holder"));
          expect(nsInode(holder, "net") !== undefined, "the joined network namespace's holder is gone");
        },
      },
    ],
  },
  {
    id: "runtime.delete.precreated-cgroup",
    spec: "runtime.md#delete",
    level: "MUST",
    title: "delete keeps a cgroup that existed before create (the container did not create it)",
    setup: (ctx) => makeCgroup(ctx.cgroupsPath),
    steps: [
      { op: "create" },
      { op: "start" },
      { op: "waitExit" },
      { op: "delete" },
      {
        op: "check",
        what: "the cgroup",
        check: async (ctx) => {
          expect(!fs.existsSync(path.join(ctx.runtime.root, ctx.id)), "the state entry is left");
          for (const d of cgroupDirs(ctx.cgroupsPath)) expect(fs.existsSync(d), `the pre-existing cgroup ${d} was removed`);
          const s = await ctx.invoke(["state", ctx.id]);
          expect(s.status !== 0, "state still succeeds");
        },
      },
    ],
  },
  {
    id: "runtime.delete.id-reuse",
    spec: "runtime.md#delete",
    level: "MAY",
    title: "once deleted, the id can be used by a new container",
    steps: [{ op: "create" }, { op: "start" }, { op: "waitExit" }, { op: "delete" }, { op: "create" }, { op: "start" }, { op: "waitExit" }, { op: "delete" }, { op: "nothingLeft" }],
  },
  {
    id: "runtime-linux.fds",
    spec: "runtime-linux.md#file-descriptors",
    level: "MUST",
    title: "only stdin, stdout and stderr are open in the process",
    steps: lifecycle("facts.fds", (ctx) =>
      eq(
        ctx.facts().fds.map((f) => f.fd),
        [0, 1, 2],
        "open file descriptors",
      ),
    ),
  },
  {
    id: "runtime-linux.preserve-fds",
    spec: "runtime-linux.md#file-descriptors",
    level: "MAY",
    title: "additional file descriptors may be passed (--preserve-fds 1: fd 3)",
    setup: (ctx) => fs.writeFileSync(path.join(ctx.dir, "extra"), ""),
    steps: lifecycle(
      "facts.fds",
      (ctx) => {
        const fd3 = ctx.facts().fds.find((f) => f.fd === 3);
        expect(fd3 !== undefined && (fd3.target ?? "").endsWith("/extra"), `fd 3 is not the passed file: ${JSON.stringify(ctx.facts().fds)}`);
      },
      { create: { preserveFds: ["extra"] } },
    ),
  },
  {
    id: "runtime-linux.dev-symlinks",
    spec: "runtime-linux.md#dev-symbolic-links",
    level: "MUST",
    title: "/dev/fd, /dev/stdin, /dev/stdout and /dev/stderr are symlinks to /proc/self/fd[/N]",
    args: ["ls", "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr"],
    steps: lifecycle("the symlinks", (ctx) => {
      const ls = ctx.json<ProbeLs[]>(0);
      const want: Record<string, string> = { "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2" };
      for (const [p, target] of Object.entries(want)) {
        const e = ls.find((x) => x.path === p);
        eq(e && { type: e.type, target: e.target }, { type: "symlink", target }, p);
      }
    }),
  },
];

// A cgroup the harness makes (in every hierarchy) before the container exists.
function makeCgroup(cgroupsPath: string): void {
  for (const h of cgroupHierarchies()) {
    const dir = path.join(h.mountPoint, cgroupsPath);
    fs.mkdirSync(dir, { recursive: true });
    if (h.version === 1 && h.controllers.includes("cpuset")) {
      for (const f of ["cpuset.cpus", "cpuset.mems"]) fs.writeFileSync(path.join(dir, f), readOr(path.join(path.dirname(dir), f), "").trim());
    }
  }
}

