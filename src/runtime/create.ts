// create: bundle -> validated spec -> plan -> tsrun-init, which becomes the container's init and waits.
// Anything that fails leaves nothing behind: the init is killed, cgroups and the state directory removed,
// and poststop hooks run (as runc's destroy does).
import * as fs from "fs";
import { detectLayout } from "../cgroups/layout";
import { CgroupManager } from "../cgroups/manager";
import { TsrunError, messageOf } from "../errors";
import { runHooks, runHooksWarning } from "../hooks";
import { native, sealedHelper } from "../native";
import { buildPlan, idMapText } from "../plan/build";
import { type HostFacts, hostFacts } from "../plan/host";
import { Msg } from "../plan/opcodes";
import type { Compiled } from "../seccomp/compile";
import { compileForProcess, containerProcessStateHead, describeCompiled } from "../seccomp/process";
import type { Spec } from "../spec/schema";
import { validateSpec } from "../spec/validate";
import { validateId, ContainerRecord, procStat, stateOf } from "../state/store";
import { Channel } from "./channel";
import type { Context } from "./context";
import { type Bundle, loadBundle } from "./bundle";
import { checkPassedFds, connectSocketPath } from "./caller";
import { encodeChecked } from "./setup-size";
import { writePidFile } from "./pidfile";
import { ShimClient } from "./shim";

export interface CreateOptions {
  id: string;
  bundle?: string; // default "."
  consoleSocket?: string; // path of a unix socket that receives the pty master
  pidFile?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  preserveFds?: number;
  // The fds >= 3 the caller really passes (library callers: list them to use preserveFds or LISTEN_FDS; the
  // CLI knows them from bin/tsrun). Any other fd in 3..3+LISTEN_FDS+preserveFds-1 is refused.
  passedFds?: number[];
  // For `run` with a terminal and no --console-socket: an fd of tsrun's own to send the master to.
  consoleFd?: number;
  // A bundle the caller has already read.
  loaded?: Bundle;
  // Supervise the container with a tsrun shim (its parent and subreaper; holds stdio, logs, the pty).
  shim?: boolean;
  // A tiny reaping PID 1 in front of the user process (docker run --init).
  init?: boolean;
}

export interface Created {
  record: ContainerRecord;
  pid: number;
}

export function create(ctx: Context, o: CreateOptions): Created {
  validateId(o.id);
  const { spec, bundle, rootfs } = o.loaded ?? loadBundle(o.bundle ?? ".");
  // The config's cross-field rules (sysctls, mounts on /proc, namespaces...) are checked before anything
  // exists on the host: no state directory, cgroup or socket is made for a config that will be refused.
  const host = hostFacts(spec, bundle, rootfs);
  validateSpec(spec, host, { socket: !!o.consoleSocket, receiver: o.consoleFd !== undefined || o.shim === true });
  const extra = extraFdCount(o); // fds the caller did not pass are refused here too
  const seccomp = compileSeccomp(ctx, spec); // and an invalid profile
  const lock = ctx.store.claim(o.id);
  const record: ContainerRecord = {
    id: o.id,
    pid: 0,
    startTime: "",
    bundle,
    rootfs,
    created: new Date().toISOString(),
    owner: "",
    annotations: spec.annotations ?? {},
    creating: true,
    cgroup: { dirs: {}, created: [] },
    config: spec,
  };
  const cleanup: (() => void)[] = [];
  try {
    ctx.store.write(record);
    createInit(ctx, o, spec, record, cleanup, seccomp, extra, host);
    if (o.pidFile) writePidFile(o.pidFile, record.pid);
    return { record, pid: record.pid };
  } catch (e) {
    abortCreate(ctx, record, cleanup);
    throw e instanceof TsrunError ? e : new TsrunError(messageOf(e));
  } finally {
    lock.release();
  }
}

function abortCreate(ctx: Context, record: ContainerRecord, cleanup: (() => void)[]): void {
  for (const f of cleanup.reverse()) {
    try {
      f();
    } catch (e) {
      ctx.logger.warn(`cleanup after failed create: ${messageOf(e)}`);
    }
  }
  try {
    CgroupManager.fromRecord(record.cgroup).remove();
  } catch (e) {
    ctx.logger.warn(messageOf(e));
  }
  if (record.pid > 0) runHooksWarning("poststop", record.config.hooks?.poststop, { ...stateOf(record, "stopped"), pid: 0 }, (m) => ctx.logger.warn(m));
  ctx.store.remove(record.id);
}

// linux.seccomp compiled, from the cache under the state root when it was compiled before.
function compileSeccomp(ctx: Context, spec: Spec): Compiled | undefined {
  if (!spec.linux?.seccomp) return undefined;
  ctx.store.ensureRoot();
  let compiled: Compiled | undefined;
  try {
    compiled = compileForProcess(spec, { stateRoot: ctx.store.root });
  } catch (e) {
    throw new TsrunError(messageOf(e));
  }
  if (compiled) for (const line of describeCompiled(compiled)) ctx.logger.debug(line);
  return compiled;
}

// fds handed to the helper: 0-2, then systemd's LISTEN_FDS and --preserve-fds as they are, then ours.
// Each must be one the caller passed (not one of tsrun's own).
function extraFdCount(o: CreateOptions): number {
  const env = Number(process.env.LISTEN_FDS ?? 0);
  const listen = Number.isInteger(env) && env > 0 ? env : 0;
  checkPassedFds(listen, o.preserveFds ?? 0, o.passedFds);
  return (o.preserveFds ?? 0) + listen;
}

function createInit(ctx: Context, o: CreateOptions, spec: Spec, record: ContainerRecord, cleanup: (() => void)[], seccomp: Compiled | undefined, extra: number, host: HostFacts): void {
  const n = native();
  const cgroups = CgroupManager.forContainer(spec.linux?.cgroupsPath, record.id, detectLayout(), { systemd: ctx.systemdCgroup === true });
  // Recorded before they are made: a create killed in between leaves nothing `delete` does not know of.
  record.cgroup = cgroups.planned();
  ctx.store.write(record);
  cgroups.create();
  record.cgroup = cgroups.record();
  ctx.store.write(record);
  // Limits and device rules are in place before the init joins the cgroups (create removes them on failure).
  cgroups.apply(spec.linux?.resources, { warn: (m) => ctx.logger.warn(m), ...(spec.linux?.devices ? { devices: spec.linux.devices } : {}) });

  const syncFd = 3 + extra;
  const stateDirFd = syncFd + 1;
  let consoleFd: number | undefined;
  let consoleSock: number | undefined;
  let ownConsole = false; // a socket tsrun opened (not the caller's consoleFd): closed once the helper has it
  cleanup.push(() => {
    if (ownConsole && consoleSock !== undefined) closeQuietly(consoleSock);
  });
  const shimConsole = o.shim === true && spec.process?.terminal === true && !o.consoleSocket;
  if (shimConsole) {
    // The shim swaps this placeholder for the socket it receives the pty master on.
    consoleSock = fs.openSync("/dev/null", "r");
    ownConsole = true;
    consoleFd = stateDirFd + 1;
  } else if (spec.process?.terminal) {
    if (o.consoleSocket) {
      consoleSock = connectSocketPath("--console-socket", o.consoleSocket);
      ownConsole = true;
    } else if (o.consoleFd !== undefined) {
      consoleSock = o.consoleFd;
    } else {
      throw new TsrunError("cannot allocate tty if runc will detach without setting console socket");
    }
    consoleFd = stateDirFd + 1;
  } else if (o.consoleSocket) {
    throw new TsrunError("cannot use console socket if runc will not detach or allocate tty");
  }
  // SCMP_ACT_NOTIFY: connected now, so a listener that is not there fails create; tsrun-init sends the
  // notify fd and the container process state on it once the filter is loaded (at start).
  let listenerSock: number | undefined;
  let listener: { fd: number; path: string; stateHead: string } | undefined;
  if (seccomp?.listener) {
    listenerSock = connectSocketPath("config.json: linux.seccomp.listenerPath", seccomp.listener.path);
    cleanup.push(() => {
      if (listenerSock !== undefined) closeQuietly(listenerSock);
      listenerSock = undefined;
    });
    listener = { fd: (consoleFd ?? stateDirFd) + 1, path: seccomp.listener.path, stateHead: containerProcessStateHead(seccomp.listener.metadata) };
  }

  const plan = buildPlan({
    id: record.id,
    spec,
    bundle: record.bundle,
    rootfs: record.rootfs,
    noPivot: o.noPivot === true,
    noNewKeyring: o.noNewKeyring === true,
    extraFds: extra,
    syncFd,
    stateDirFd,
    ...(consoleFd !== undefined ? { consoleFd } : {}),
    cgroupProcs: cgroups.joinFiles(),
    cgroupDirs: cgroups.directories(),
    cgroupMode: cgroups.mode,
    init: o.init === true,
    host,
    ...(seccomp ? { seccomp: { program: seccomp.program, flags: seccomp.flags, ...(listener ? { listener } : {}) } } : {}),
    warn: (m) => ctx.logger.warn(m),
  });
  if (ctx.logger.debugEnabled) for (const line of plan.describe()) ctx.logger.debug(`plan: ${line}`);
  const encoded = encodeChecked(plan); // an oversized config fails here, before anything is started

  const [ours, theirs] = n.socketpair();
  const chan = new Channel(ours);
  cleanup.push(() => chan.close());
  const dirFd = fs.openSync(ctx.store.dir(record.id), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  const fds = [0, 1, 2];
  for (let fd = 3; fd < 3 + extra; fd++) fds.push(fd);
  fds.push(theirs, dirFd);
  if (consoleSock !== undefined) fds.push(consoleSock);
  if (listenerSock !== undefined) fds.push(listenerSock);
  const argv = ["tsrun-init", String(syncFd), ...(ctx.logger.debugEnabled ? ["debug"] : [])];
  let helper: number;
  let shim: ShimClient | undefined;
  try {
    if (o.shim) {
      shim = ShimClient.start(ctx.store.dir(record.id));
      cleanup.push(() => shim!.close());
      record.shimPid = shim.pid;
      record.shimStartTime = procStat(shim.pid)?.startTime ?? "";
      helper = shim.spawn(argv, fds, { logs: !spec.process?.terminal, ...(shimConsole ? { consoleIndex: consoleFd! } : {}) });
    } else {
      helper = n.spawn(sealedHelper(), argv, [], fds);
    }
  } finally {
    fs.closeSync(theirs);
    fs.closeSync(dirFd);
    // Only the init may hold the console connection: a receiver may read it until it closes.
    if (ownConsole && consoleSock !== undefined) closeQuietly(consoleSock);
    ownConsole = false;
    // Only the init may hold the listener connection: the listener may read until it closes.
    if (listenerSock !== undefined) closeQuietly(listenerSock);
    listenerSock = undefined;
  }
  // The shim reaps its own children; tsrun reaps only what it started itself.
  let helperReaped = shim !== undefined;
  cleanup.push(() => {
    if (!helperReaped) {
      try {
        process.kill(helper, "SIGKILL");
      } catch {
        // gone
      }
      n.waitpid(helper);
    }
  });
  cleanup.push(() => {
    if (record.pid > 0) {
      try {
        process.kill(record.pid, "SIGKILL");
        n.waitpid(record.pid);
      } catch {
        // gone or not our child any more
      }
    }
  });

  chan.send(Msg.PLAN, encoded);
  for (;;) {
    const f = chan.recv();
    if (!f) {
      const why = !helperReaped ? n.waitpid(helper) : undefined;
      // (a helper under the shim is not ours to wait for)
      helperReaped = true;
      throw new TsrunError(`container init exited during set-up without reporting an error${why?.code !== undefined ? ` (status ${why.code})` : ""}`);
    }
    switch (f.type) {
      case Msg.LOG:
        ctx.logger.debug(`init: ${f.payload.toString()}`);
        break;
      case Msg.ERROR:
        throw new TsrunError(f.payload.toString());
      case Msg.USERMAP_REQ: {
        writeIdMaps(f.payload.readInt32LE(0), spec);
        chan.send(Msg.ACK);
        break;
      }
      case Msg.PID: {
        record.pid = f.payload.readInt32LE(0);
        record.startTime = procStat(record.pid)?.startTime ?? "";
        if (!helperReaped) n.waitpid(helper);
        helperReaped = true;
        ctx.store.write(record);
        break;
      }
      case Msg.HOOKS_REQ: {
        const state = stateOf(record, "creating");
        try {
          runHooks("prestart", spec.hooks?.prestart, state);
          runHooks("createRuntime", spec.hooks?.createRuntime, state);
        } catch (e) {
          chan.send(Msg.ABORT);
          throw e;
        }
        chan.send(Msg.ACK, Buffer.from(JSON.stringify(state)));
        break;
      }
      case Msg.READY:
        if (!(record.pid > 0)) throw new TsrunError("container init reported ready before its pid");
        // The commit point: the container is recorded as created, then the init is told (until the ack it
        // exits if tsrun dies, so a killed create never leaves an init the state does not show).
        record.creating = false;
        ctx.store.write(record);
        if (shim) {
          shim.setInit(record.pid);
          shim.close();
        }
        chan.send(Msg.ACK);
        // The init acks back once it has cleared its parent-death signal: tsrun must not exit before, or the
        // kernel would kill the init it has just recorded.
        {
          const done = chan.recv();
          if (!done || done.type !== Msg.ACK) throw new TsrunError(done?.type === Msg.ERROR ? done.payload.toString() : "container init exited before it was detached from tsrun");
        }
        chan.close();
        return;
      default:
        throw new TsrunError(`unexpected message ${f.type} from container init`);
    }
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}

// Written by tsrun (a process in the parent user namespace), as the kernel requires for full maps.
function writeIdMaps(pid: number, spec: Spec): void {
  const linux = spec.linux ?? {};
  try {
    if (process.getuid?.() !== 0) fs.writeFileSync(`/proc/${pid}/setgroups`, "deny");
    fs.writeFileSync(`/proc/${pid}/uid_map`, idMapText(linux.uidMappings ?? []));
    fs.writeFileSync(`/proc/${pid}/gid_map`, idMapText(linux.gidMappings ?? []));
  } catch (e) {
    throw new TsrunError(`write user namespace maps of pid ${pid}: ${messageOf(e)}`);
  }
}

