// exec: a new process in a running container — its namespaces (joined through the init's pidfd), cgroup,
// root, and the identity, capabilities, limits and seccomp profile of its process spec. Never an fd of
// tsrun; non-dumpable until execve (tsrun-init is from start to exec).
import * as fs from "fs";
import * as path from "path";
import { CgroupManager } from "../cgroups/manager";
import { TsrunError, messageOf } from "../errors";
import { native } from "../native";
import { buildExecPlan } from "../plan/build";
import { processFacts } from "../plan/host";
import { NAMESPACES, type NamespaceKind } from "../plan/linux";
import type { Process } from "../spec/schema";
import { validateProcess } from "../spec/validate";
import { validateId, ContainerRecord, procStat } from "../state/store";
import type { Context } from "./context";
import { waitForeground } from "./foreground";
import { checkListener, handOverNotifyFd } from "../seccomp/listener";
import { compileForProcess } from "../seccomp/process";
import { checkPassedFds, connectSocketPath, PidfdSocket } from "./caller";
import { FdMap, Launch } from "./launch";
import { encodeChecked } from "./setup-size";
import { writePidFile } from "./pidfile";
import { ShimClient } from "./shim";

export interface ExecOptions {
  id: string;
  args?: string[]; // COMMAND [ARGS...] (ignored with processFile)
  processFile?: string; // -p process.json
  tty?: boolean;
  consoleSocket?: string;
  pidfdSocket?: string; // receives a pidfd of the process (runc 1.2)
  detach?: boolean;
  pidFile?: string;
  cwd?: string;
  env?: string[];
  user?: string; // uid[:gid]
  additionalGids?: number[];
  caps?: string[];
  noNewPrivs?: boolean;
  apparmor?: string; // --apparmor: the process's AppArmor profile
  processLabel?: string; // --process-label: the process's SELinux label
  preserveFds?: number;
  // The fds >= 3 the caller really passes (library callers: list them to use preserveFds; the CLI knows
  // them from bin/tsrun). Any other fd in 3..3+preserveFds-1 is refused.
  passedFds?: number[];
  // --cgroup, repeatable: "PATH" (every hierarchy), or "CTRL[,CTRL]:PATH" per v1 controller (runc's format)
  cgroups?: string[];
  ignorePaused?: boolean; // exec into a paused container (the process stays frozen until resume)
  // The process's stdin, stdout and stderr (default: tsrun's own).
  stdio?: readonly [number, number, number];
  // A process spec given as it is (the library's exec), instead of args/processFile.
  process?: Process;
}

// The process spec: process.json as given, or the container's process with runc's overrides.
export function execProcess(record: ContainerRecord, o: ExecOptions): Process {
  if (o.process) {
    const { parseProcess } = require("../spec/schema") as typeof import("../spec/schema");
    try {
      return parseProcess(o.process, "process");
    } catch (e) {
      throw new TsrunError(messageOf(e), "INVALID_CONFIG");
    }
  }
  if (o.processFile) {
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(o.processFile === "-" ? 0 : o.processFile, "utf8"));
    } catch (e) {
      throw new TsrunError(`${o.processFile}: ${messageOf(e)}`);
    }
    const { parseProcess } = require("../spec/schema") as typeof import("../spec/schema");
    try {
      return parseProcess(json, path.basename(o.processFile === "-" ? "process.json" : o.processFile));
    } catch (e) {
      throw new TsrunError(messageOf(e));
    }
  }
  const base = record.config.process;
  if (!o.args || o.args.length === 0) throw new TsrunError("exec: no command given (COMMAND or --process)");
  const p: Process = JSON.parse(JSON.stringify(base ?? { cwd: "/", args: ["sh"] })) as Process;
  p.args = o.args;
  p.terminal = o.tty === true;
  if (o.env) p.env = [...(p.env ?? []), ...o.env];
  if (o.cwd) p.cwd = o.cwd;
  if (o.user) {
    const m = /^(\d+)(?::(\d+))?$/.exec(o.user);
    if (!m) throw new TsrunError(`exec: --user must be uid[:gid] (numbers), got "${o.user}"`);
    p.user = { ...(p.user ?? { uid: 0, gid: 0 }), uid: Number(m[1]), gid: m[2] !== undefined ? Number(m[2]) : 0 };
  }
  if (o.additionalGids) p.user = { ...(p.user ?? { uid: 0, gid: 0 }), additionalGids: o.additionalGids };
  if (o.caps && o.caps.length) {
    // As runc since 1.1.2 (CVE-2022-29162): bounding, effective and permitted, never inheritable, so a
    // non-root process cannot gain the capability by executing a file carrying it as +ei file capabilities.
    // Ambient only when the process spec already has an inheritable set (the kernel raises an ambient
    // capability only when it is also inheritable; tsrun-init skips one that is not, as runc does).
    const c = { ...(p.capabilities ?? {}) };
    const sets = ["bounding", "effective", "permitted", ...(c.inheritable !== undefined ? (["ambient"] as const) : [])] as const;
    for (const set of sets) c[set] = [...new Set([...(c[set] ?? []), ...o.caps])];
    p.capabilities = c;
  }
  if (o.noNewPrivs) p.noNewPrivileges = true;
  if (o.apparmor) p.apparmorProfile = o.apparmor;
  if (o.processLabel) p.selinuxLabel = o.processLabel;
  // runc (RootlessEUID): setgroups is denied in the user namespace a non-root tsrun set up
  if (p.user?.additionalGids?.length && (process.geteuid?.() ?? 0) !== 0) throw new TsrunError("cannot set any additional groups in a rootless container", "INVALID_ARGUMENT");
  return p;
}

function nsInode(pid: number | "self", name: string): string {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/${name}`);
  } catch {
    return "";
  }
}

// runc's getSubCgroupPaths: the --cgroup arguments as {controller: path}, "" for a path without a prefix
// (which must then be the only one).
export function subCgroupPaths(args: readonly string[]): Record<string, string> {
  const paths: Record<string, string> = {};
  for (const arg of args) {
    const colon = arg.indexOf(":");
    if (colon < 0) {
      if (args.length !== 1) throw new TsrunError(`invalid --cgroup argument: ${arg} (missing <controller>: prefix)`, "INVALID_ARGUMENT");
      paths[""] = arg;
      continue;
    }
    const sub = arg.slice(colon + 1);
    for (const ctrl of arg.slice(0, colon).split(",")) {
      if (ctrl === "") throw new TsrunError(`invalid --cgroup argument: ${arg} (empty <controller> prefix)`, "INVALID_ARGUMENT");
      if (ctrl in paths) throw new TsrunError(`invalid --cgroup argument(s): controller ${ctrl} specified multiple times`, "INVALID_ARGUMENT");
      paths[ctrl] = sub;
    }
  }
  return paths;
}

function subCgroupProcs(record: ContainerRecord, args: readonly string[] | undefined): string[] {
  const sub = subCgroupPaths(args ?? []);
  try {
    return CgroupManager.fromRecord(record.cgroup).joinFiles(sub);
  } catch (e) {
    throw new TsrunError(`exec: ${messageOf(e)}`);
  }
}

// The CLI's exec: the process started, then (unless detached) waited for in tsrun's foreground; resolves to
// the exit code for tsrun (the process's, or 0 when detached).
export async function exec(ctx: Context, o: ExecOptions): Promise<number> {
  const { pid, master } = await startExec(ctx, o);
  if (o.detach) {
    if (master !== undefined) fs.closeSync(master);
    return 0;
  }
  return await waitForeground(pid, master);
}

export interface Started {
  pid: number; // in tsrun's pid namespace; tsrun's child unless a shim started it
  master?: number; // the pty master, when the process has a terminal and no console socket was given
}

// Starts the process and resolves once it runs (its execve closed the helper's socket).
export async function startExec(ctx: Context, o: ExecOptions): Promise<Started> {
  validateId(o.id);
  const n = native();
  const record = ctx.store.read(o.id);
  const status = ctx.store.status(record);
  if (status === "stopped") throw new TsrunError("cannot exec in a stopped container", "NOT_RUNNING");
  if (status === "paused" && !o.ignorePaused) throw new TsrunError("cannot exec in a paused container (use --ignore-paused to override)", "INVALID_STATE");
  if (status === "creating") throw new TsrunError("cannot exec in a container that is being created", "BUSY");
  const proc = execProcess(record, o);
  // a tty needs a receiver for its master: the caller of a foreground exec, or the library caller
  const facts = processFacts(record.rootfs, proc);
  validateProcess(proc, { socket: !!o.consoleSocket, receiver: !o.detach || o.process !== undefined }, facts.lsm);

  // Pin the init: a pidfd cannot follow a recycled pid; then check it is still our init.
  let pidfd: number;
  try {
    pidfd = n.pidfdOpen(record.pid);
  } catch {
    throw new TsrunError("cannot exec in a stopped container");
  }
  const closeLater: number[] = [pidfd];
  const cleanup = () => {
    for (const fd of closeLater) {
      try {
        fs.closeSync(fd);
      } catch {
        // closed
      }
    }
  };
  try {
    if (procStat(record.pid)?.startTime !== record.startTime) throw new TsrunError("cannot exec in a stopped container");
    const rootFd = fs.openSync(`/proc/${record.pid}/root`, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    closeLater.push(rootFd);
    let nsFlags = 0;
    for (const ns of record.config.linux?.namespaces ?? []) {
      const k = NAMESPACES[ns.type as NamespaceKind];
      if (nsInode(record.pid, k.proc) !== nsInode("self", k.proc)) nsFlags |= k.flag;
    }
    const extra = o.preserveFds ?? 0;
    checkPassedFds(0, extra, o.passedFds);
    let consoleSock: number | undefined;
    let ptyPair: [number, number] | undefined;
    if (proc.terminal) {
      if (o.consoleSocket) consoleSock = connectSocketPath("--console-socket", o.consoleSocket);
      else {
        ptyPair = n.socketpair();
        consoleSock = ptyPair[1];
      }
      closeLater.push(consoleSock);
      if (ptyPair) closeLater.push(ptyPair[0]);
    }
    // The container's seccomp profile (compiled, or from the cache create filled); with NOTIFY, the listener
    // gets this process's notify fd too, as runc does (handed over when tsrun-init sends it, below).
    const compiled = compileForProcess(record.config, { stateRoot: ctx.store.root });
    if (compiled?.listener) checkListener(compiled.listener);
    // The helper's fds: passed-through, the sync socket, the init's pidfd, the container's root, then the
    // console socket.
    const fdMap = new FdMap(extra, o.stdio);
    const syncSlot = fdMap.slot("sync socket");
    const pidSlot = fdMap.slot("init pidfd");
    fdMap.bind(pidSlot, pidfd);
    const rootSlot = fdMap.slot("container root");
    fdMap.bind(rootSlot, rootFd);
    let consoleSlot: number | undefined;
    if (consoleSock !== undefined) fdMap.bind((consoleSlot = fdMap.slot("console socket")), consoleSock);
    const plan = buildExecPlan({
      spec: record.config,
      proc,
      host: facts,
      extraFds: extra,
      syncFd: syncSlot,
      pidFd: pidSlot,
      rootFd: rootSlot,
      ...(consoleSlot !== undefined ? { consoleFd: consoleSlot } : {}),
      nsFlags,
      cgroupProcs: subCgroupProcs(record, o.cgroups),
      ...(compiled ? { seccomp: { program: compiled.program, flags: compiled.flags } } : {}),
      warn: (m) => ctx.logger.warn(m),
    });
    if (ctx.logger.debugEnabled) for (const line of plan.describe()) ctx.logger.debug(`exec plan: ${line}`);
    const encoded = encodeChecked(plan); // an oversized config fails here, before anything is started
    // A detached process of a shim-supervised container is started by the shim, which then reaps it.
    const shim = o.detach && record.shimPid ? ShimClient.connect(ctx.store.dir(o.id)) : undefined;
    const pidfdSocket = PidfdSocket.connect(o.pidfdSocket);
    const launch = new Launch({ fds: fdMap, syncSlot, plan: encoded, logger: ctx.logger, what: "exec", ...(shim ? { shim: { client: shim, logs: false } } : {}) });
    let pid: number;
    try {
      pid = await launch.run({
        onPid: (p) => pidfdSocket.send(p, "setns"),
        // SCMP_ACT_NOTIFY: the process's notify fd and the container's state to the listener
        onSeccompFd: (chan, frame) => handOverNotifyFd(chan, frame, compiled?.listener, launch.pid, ctx.store.state(record)),
      });
    } catch (e) {
      await launch.abort();
      throw e;
    } finally {
      launch.close();
      shim?.close();
      pidfdSocket.close();
    }
    if (o.pidFile) writePidFile(o.pidFile, pid);
    const master = ptyPair ? n.recvFd(ptyPair[0]) : undefined;
    cleanup();
    closeLater.length = 0;
    return { pid, ...(master !== undefined ? { master } : {}) };
  } finally {
    cleanup();
  }
}
