// What a conformance case is: a patch on the base bundle, the operations to perform with their expected
// outcomes, and what to check inside (the probe's JSON) and outside (state, exit codes, hooks, the host).
import type { Config, Process } from "./config";
import type { HostFacts, ProcessId } from "./host";
import type { CommandResult, Runtime } from "./runtime";

export type Level = "MUST" | "SHOULD" | "MAY";

// "ok": exit 0. "error": non-zero exit. "any": either; later steps decide.
export type Outcome = "ok" | "error" | "any";

export type Status = "creating" | "created" | "running" | "stopped";

// The state JSON of runtime.md (plus whatever a runtime adds).
export interface State {
  ociVersion: string;
  id: string;
  status: string;
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
  [extra: string]: unknown;
}

// The runtime's `features` document (features.md), when it has one.
export interface Features {
  ociVersionMin?: string;
  ociVersionMax?: string;
  hooks?: string[] | null;
  mountOptions?: string[] | null;
  linux?: {
    namespaces?: string[] | null;
    capabilities?: string[] | null;
    cgroup?: Record<string, unknown> | null;
    seccomp?: { enabled?: boolean | null; actions?: string[] | null; operators?: string[] | null; archs?: string[] | null; knownFlags?: string[] | null; supportedFlags?: string[] | null } | null;
    [k: string]: unknown;
  } | null;
  annotations?: Record<string, unknown> | null;
  [k: string]: unknown;
}

export interface RuntimeInfo {
  name: string;
  features?: Features; // undefined: `features` failed or printed no JSON object
  featuresError?: string;
}

export interface Env {
  host: HostFacts;
  runtime: RuntimeInfo;
  // The run's parent cgroup ("/spec-tests-…"), made by the harness in every hierarchy: its files show what a
  // fresh cgroup offers on this host.
  cgroupParent: string;
}

// A precondition; when it does not hold the case is skipped with `why`.
export interface Requirement {
  why: string;
  met(env: Env): boolean;
}

// --- what the probe prints ------------------------------------------------------------------------------

export interface Facts {
  pid: number;
  ppid: number;
  uid: number;
  euid: number;
  gid: number;
  egid: number;
  groups: number[];
  caps: { bounding: string[]; effective: string[]; inheritable: string[]; permitted: string[]; ambient: string[] };
  hostname: string;
  domainname: string;
  machine: string;
  cwd: string;
  umask: number;
  env: string[];
  noNewPrivs: boolean;
  seccomp: number;
  oomScoreAdj: number;
  personality: number;
  sched: { policy: number; resetOnFork: boolean; priority: number | null; nice: number | null; ioprioClass: number | null; ioprioLevel: number | null };
  cpusAllowed: string | null;
  rlimits: Record<string, { soft: number; hard: number } | null>;
  namespaces: Record<string, number | null>;
  fds: { fd: number; target: string | null }[];
  cgroup: string[] | null;
  uidMap: [number, number, number][] | null;
  gidMap: [number, number, number][] | null;
  stdio: { fd: number; tty: boolean; target: string | null }[];
  ctty: boolean;
  sid: number;
  pgid: number;
}

export interface ProbeMount {
  id: number;
  parent: number;
  root: string;
  mountPoint: string;
  options: string[];
  optional: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

export interface ProbeLs {
  path: string;
  exists: boolean;
  type?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  major?: number;
  minor?: number;
  target?: string | null;
  errno: number;
}

export interface ProbeResult {
  path?: string;
  name?: string;
  ok?: boolean;
  errno: number;
  content?: string | null;
  value?: string | null;
  ret?: number;
}

export interface HookRecord {
  argv: string[];
  env: string[];
  stdin: string;
  pid: number;
  cwd: string | null;
  root: string | null;
  hostname: string | null;
  namespaces: Record<string, number | null>;
  mountPoints: string[] | null; // the hook's own mount table, as it sees it
  target: { pid: number; root: string | null; exe: string | null; cmdline: string[] | null; namespaces: Record<string, number | null>; mountPoints: string[] | null } | null;
  exists: Record<string, boolean>;
}

// --- the case context: one case against one runtime ------------------------------------------------------

export interface CaseContext {
  readonly runtime: Runtime;
  readonly env: Env;
  readonly id: string; // the container id
  readonly dir: string; // the case's scratch directory on the host
  readonly bundle: string;
  readonly rootfs: string;
  readonly cgroupsPath: string;
  readonly hostProbe: string; // the probe on the host, for hooks that run in the runtime namespace
  readonly hookLog: string; // host path of the hook record file (inside the rootfs: /hooks.log in the container)
  config: Config; // as written to config.json
  pid?: ProcessId; // the container process, once created
  consoleSocket?: string; // set by withConsole(): a listening console socket
  consoleOutput?: string; // file the console receiver writes the terminal's output to
  readonly results: CommandResult[];
  readonly values: Map<string, unknown>; // data a setup passes to later steps

  invoke(args: string[], opts?: { timeoutMs?: number; umask?: number; oomScoreAdj?: number; outputName?: string; extraFiles?: string[] }): Promise<CommandResult>;
  state(): Promise<State>; // `state ID`, which must succeed and print a state object
  stdout(): string; // the container's stdout (from create or run)
  stderr(): string;
  jsonLines(): unknown[]; // every JSON line the container printed
  json<T>(index: number): T; // the index-th JSON line
  facts(): Facts; // the first `probe facts` object
  hookRecords(): HookRecord[];
  hostPath(containerPath: string): string; // the rootfs path of a path in the container
  addCleanup(fn: () => void | Promise<void>): void;
  skip(reason: string): never; // ends the case as skipped
}

// --- steps -------------------------------------------------------------------------------------------------

type Check<T> = (value: T, ctx: CaseContext) => void | Promise<void>;

export type Step =
  // `create --bundle B --pid-file F [--console-socket S] [--preserve-fds N] ID`; the container's stdio are the call's.
  // preserveFds: files (relative to the case directory) passed as fds 3, 4, … with --preserve-fds.
  | { op: "create"; expect?: Outcome; console?: boolean; umask?: number; oomScoreAdj?: number; preserveFds?: string[]; check?: Check<CommandResult> }
  | { op: "start"; expect?: Outcome; check?: Check<CommandResult> }
  | { op: "state"; expect?: Outcome; status?: Status; check?: Check<State> }
  | { op: "kill"; signal?: string; expect?: Outcome }
  | { op: "delete"; force?: boolean; expect?: Outcome; check?: Check<CommandResult> }
  // Foreground `run --bundle B ID`: exitCode is the container's expected exit status.
  | { op: "run"; expect?: Outcome; exitCode?: number; umask?: number; oomScoreAdj?: number; check?: Check<CommandResult> }
  // `exec ID ARGS…` or `exec --process FILE ID` when process is given.
  | { op: "exec"; args?: string[]; process?: (base: Process) => Process; expect?: Outcome; check?: Check<CommandResult> }
  // Waits until the container process has exited (it is not the runtime's child: its /proc entry goes away).
  | { op: "waitExit"; timeoutMs?: number }
  // Waits until a host file has content (e.g. a line the container prints once ready).
  | { op: "waitOutput"; pattern: RegExp; timeoutMs?: number }
  | { op: "check"; what: string; check: (ctx: CaseContext) => void | Promise<void> }
  | { op: "editConfig"; patch: (c: Config) => void }
  | { op: "sleep"; ms: number }
  // Nothing of the container is left: no state entry, `state` fails, no cgroup, no mounts, no process.
  | { op: "nothingLeft" };

export interface Case {
  id: string; // e.g. "config.hostname"
  spec: string; // spec file and anchor, e.g. "config.md#hostname"
  level: Level;
  title: string; // what is checked, one line
  since?: string; // the ociVersion the config declares (default: the base config's)
  args?: string[]; // the probe's arguments (default: ["facts"])
  // The feature is optional for runtimes ("MAY choose which subset of the valid values it will support"): a
  // create that fails cleanly (nothing left behind) skips the case with this explanation and the runtime's
  // error. A runtime that accepts the config must apply it.
  refusable?: string;
  requires?: Requirement[];
  setup?: (ctx: CaseContext) => void | Promise<void>; // before the bundle is written
  bundle?: (c: Config, ctx: CaseContext) => void; // the patch on the base config
  steps: Step[];
}

export type ResultStatus = "pass" | "fail" | "skip";

export interface CaseResult {
  id: string;
  level: Level;
  status: ResultStatus;
  reason?: string; // why it failed or was skipped
  ms: number;
}
