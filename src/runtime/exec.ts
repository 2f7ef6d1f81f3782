// exec: a new process in a running container — its namespaces (joined through the init's pidfd), cgroup,
// root, and the identity, capabilities, limits and seccomp profile of its process spec. Never an fd of
// tsrun; non-dumpable until execve (tsrun-init is from start to exec).
import * as fs from "fs";
import * as path from "path";
import { CgroupManager } from "../cgroups/manager";
import { TsrunError, messageOf } from "../errors";
import { native, sealedHelper } from "../native";
import { buildExecPlan } from "../plan/build";
import { processFacts } from "../plan/host";
import { NAMESPACES, type NamespaceKind } from "../plan/linux";
import { Msg } from "../plan/opcodes";
import type { Process } from "../spec/schema";
import { validateProcess } from "../spec/validate";
import { validateId, ContainerRecord, procStat } from "../state/store";
import { Channel } from "./channel";
import type { Context } from "./context";
import { waitForeground } from "./foreground";
import { compileForProcess, containerProcessStateHead } from "../seccomp/process";
import { checkPassedFds, connectSocketPath } from "./caller";
import { encodeChecked } from "./setup-size";
import { writePidFile } from "./pidfile";
import { ShimClient } from "./shim";

export interface ExecOptions {
  id: string;
  args?: string[]; // COMMAND [ARGS...] (ignored with processFile)
  processFile?: string; // -p process.json
  tty?: boolean;
  consoleSocket?: string;
  detach?: boolean;
  pidFile?: string;
  cwd?: string;
  env?: string[];
  user?: string; // uid[:gid]
  additionalGids?: number[];
  caps?: string[];
  noNewPrivs?: boolean;
  preserveFds?: number;
  // The fds >= 3 the caller really passes (library callers: list them to use preserveFds; the CLI knows
  // them from bin/tsrun). Any other fd in 3..3+preserveFds-1 is refused.
  passedFds?: number[];
  cgroup?: string; // [controller:]sub-cgroup
}

// The process spec: process.json as given, or the container's process with runc's overrides.
export function execProcess(record: ContainerRecord, o: ExecOptions): Process {
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
  return p;
}

function nsInode(pid: number | "self", name: string): string {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/${name}`);
  } catch {
    return "";
  }
}

function subCgroupProcs(record: ContainerRecord, sub: string | undefined): string[] {
  try {
    return CgroupManager.fromRecord(record.cgroup).joinFiles(sub);
  } catch (e) {
    throw new TsrunError(`exec: ${messageOf(e)}`);
  }
}

// Returns the exit code for tsrun (the process's, or 0 when detached).
export async function exec(ctx: Context, o: ExecOptions): Promise<number> {
  validateId(o.id);
  const n = native();
  const record = ctx.store.read(o.id);
  const status = ctx.store.status(record);
  if (status === "stopped") throw new TsrunError("cannot exec in a stopped container");
  if (status === "paused") throw new TsrunError("cannot exec in a paused container");
  if (status === "creating") throw new TsrunError("cannot exec in a container that is being created");
  const proc = execProcess(record, o);
  validateProcess(proc, { socket: !!o.consoleSocket, receiver: !o.detach });

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
    // gets this process's notify fd too, as runc does.
    const compiled = compileForProcess(record.config, { stateRoot: ctx.store.root });
    let listenerSock: number | undefined;
    if (compiled?.listener) {
      listenerSock = connectSocketPath("config.json: linux.seccomp.listenerPath", compiled.listener.path);
      closeLater.push(listenerSock);
    }
    const syncFd = 3 + extra;
    const listenerFd = syncFd + (consoleSock !== undefined ? 4 : 3);
    const plan = buildExecPlan({
      spec: record.config,
      proc,
      host: processFacts(record.rootfs, proc),
      extraFds: extra,
      syncFd,
      pidFd: syncFd + 1,
      rootFd: syncFd + 2,
      ...(consoleSock !== undefined ? { consoleFd: syncFd + 3 } : {}),
      nsFlags,
      cgroupProcs: subCgroupProcs(record, o.cgroup),
      ...(compiled
        ? {
            seccomp: {
              program: compiled.program,
              flags: compiled.flags,
              ...(compiled.listener && listenerSock !== undefined ? { listener: { fd: listenerFd, path: compiled.listener.path, stateHead: containerProcessStateHead(compiled.listener.metadata) } } : {}),
            },
            state: JSON.stringify(ctx.store.state(record)),
          }
        : {}),
      warn: (m) => ctx.logger.warn(m),
    });
    if (ctx.logger.debugEnabled) for (const line of plan.describe()) ctx.logger.debug(`exec plan: ${line}`);
    const encoded = encodeChecked(plan); // an oversized config fails here, before anything is started
    const [ours, theirs] = n.socketpair();
    const chan = new Channel(ours);
    const fds = [0, 1, 2];
    for (let fd = 3; fd < 3 + extra; fd++) fds.push(fd);
    fds.push(theirs, pidfd, rootFd);
    if (consoleSock !== undefined) fds.push(consoleSock);
    if (listenerSock !== undefined) fds.push(listenerSock);
    const argv = ["tsrun-init", String(syncFd), ...(ctx.logger.debugEnabled ? ["debug"] : [])];
    // A detached process of a shim-supervised container is started by the shim, which then reaps it.
    const shim = o.detach && record.shimPid ? ShimClient.connect(ctx.store.dir(o.id)) : undefined;
    let helper: number;
    try {
      if (shim) {
        try {
          helper = shim.spawn(argv, fds, { logs: false });
        } finally {
          shim.close();
        }
      } else {
        helper = n.spawn(sealedHelper(), argv, [], fds);
      }
    } finally {
      fs.closeSync(theirs);
    }
    if (shim) helper = 0; // not ours to reap
    let pid = 0;
    try {
      chan.send(Msg.PLAN, encoded);
      for (;;) {
        const f = chan.recv();
        if (!f) break; // the exec closed the socket (close-on-exec): the program is running
        if (f.type === Msg.LOG) ctx.logger.debug(`exec: ${f.payload.toString()}`);
        else if (f.type === Msg.PID) {
          pid = f.payload.readInt32LE(0);
          if (helper > 0) n.waitpid(helper);
          helper = 0;
        } else if (f.type === Msg.ERROR) throw new TsrunError(f.payload.toString());
        else throw new TsrunError(`unexpected message ${f.type} from tsrun-init`);
      }
    } catch (e) {
      if (pid > 0 && !shim) {
        try {
          n.waitpid(pid);
        } catch {
          // reaped
        }
      }
      throw e;
    } finally {
      chan.close();
      if (helper > 0) {
        try {
          n.waitpid(helper);
        } catch {
          // reaped
        }
      }
    }
    if (!(pid > 0)) throw new TsrunError("exec: tsrun-init exited without starting the process");
    if (o.pidFile) writePidFile(o.pidFile, pid);
    const master = ptyPair ? n.recvFd(ptyPair[0]) : undefined;
    cleanup();
    closeLater.length = 0;
    if (o.detach) return 0;
    return await waitForeground(pid, master);
  } finally {
    cleanup();
  }
}
