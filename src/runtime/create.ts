// create: bundle -> validated spec -> plan -> tsrun-init, which becomes the container's init and waits.
// Anything that fails leaves nothing behind: the init is killed, cgroups and the state directory removed,
// and poststop hooks run (as runc's destroy does).
import * as fs from "fs";
import { detectLayout } from "../cgroups/layout";
import { type ApplyOptions, CgroupManager } from "../cgroups/manager";
import { rootlessCgroups as rootlessSubset } from "../cgroups/rootless";
import { breathe } from "../async";
import { TsrunError, messageOf } from "../errors";
import { runHooks, runHooksWarning } from "../hooks";
import { buildPlan, idMapText } from "../plan/build";
import { type HostFacts, hostFacts } from "../plan/host";
import type { Compiled } from "../seccomp/compile";
import { checkListener } from "../seccomp/listener";
import { compileForProcess, describeCompiled } from "../seccomp/process";
import type { Spec } from "../spec/schema";
import { validateSpec } from "../spec/validate";
import { validateId, ContainerRecord, procStat, stateOf } from "../state/store";
import type { Context } from "./context";
import { type Bundle, loadBundle } from "./bundle";
import { checkPassedFds, connectSocketPath, PidfdSocket } from "./caller";
import { FdMap, Launch } from "./launch";
import { checkNotifySocket, makeNotifyDir, notifyFacts, notifySource, notifySpec } from "./notify";
import { moveNetDevices } from "./netdev";
import { encodeChecked } from "./setup-size";
import { writePidFile } from "./pidfile";
import { ShimClient } from "./shim";

export interface CreateOptions {
  id: string;
  bundle?: string; // default "."
  consoleSocket?: string; // path of a unix socket that receives the pty master
  pidfdSocket?: string; // path of a unix socket that receives a pidfd of the init (runc 1.2)
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
  // The container's stdin, stdout and stderr (default: tsrun's own).
  stdio?: readonly [number, number, number];
  // The caller's NOTIFY_SOCKET (the CLI passes its environment's): the container gets a socket of tsrun's
  // at /run/notify/notify.sock, relayed by start (src/runtime/notify.ts).
  notifySocket?: string;
}

export interface Created {
  record: ContainerRecord;
  pid: number;
}

export async function create(ctx: Context, o: CreateOptions): Promise<Created> {
  validateId(o.id);
  const { spec, bundle, rootfs } = o.loaded ?? loadBundle(o.bundle ?? ".");
  await breathe();
  // With NOTIFY_SOCKET the plan is built from the config plus runc's notify mount and variable; the state
  // records the bundle's config.
  if (o.notifySocket) checkNotifySocket(o.notifySocket);
  const notify = o.notifySocket ? notifySource(ctx.store.root, o.id) : undefined;
  const planned = notify ? notifySpec(spec, notify) : spec;
  // The config's cross-field rules (sysctls, mounts on /proc, namespaces...) are checked before anything
  // exists on the host: no state directory, cgroup or socket is made for a config that will be refused.
  const host = notify ? notifyFacts(hostFacts(planned, bundle, rootfs), notify) : hostFacts(planned, bundle, rootfs);
  validateSpec(planned, host, { socket: !!o.consoleSocket, receiver: o.consoleFd !== undefined || o.shim === true });
  const extra = extraFdCount(o); // fds the caller did not pass are refused here too
  await breathe();
  const seccomp = compileSeccomp(ctx, spec); // and an invalid profile
  await breathe();
  // The plan too is built and encoded first: a config whose plan the helper would not take (too large, a
  // NUL byte) is refused before anything exists either.
  // (as runc: an existing id is reported before the cgroup checks; claim() below is the atomic check)
  if (ctx.store.hasDir(o.id)) throw new TsrunError(`container with given ID already exists: ${o.id}`, "EXISTS");
  // Rootless with systemd: the user's systemd instance says where its units' cgroups are.
  const managerCgroup = ctx.systemdCgroup && ctx.rootlessCgroups ? await userManagerCgroup() : undefined;
  const prepared = prepare(ctx, o, planned, bundle, rootfs, seccomp, extra, host, managerCgroup);
  await breathe();
  const lock = await ctx.store.claim(o.id);
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
    ...(ctx.rootlessCgroups ? { rootlessCgroups: true } : {}),
  };
  const cleanup: (() => void | Promise<void>)[] = [];
  try {
    ctx.store.write(record);
    if (notify) makeNotifyDir(ctx.store.dir(o.id));
    await createInit(ctx, o, spec, record, cleanup, prepared);
    if (o.pidFile) writePidFile(o.pidFile, record.pid);
    return { record, pid: record.pid };
  } catch (e) {
    await abortCreate(ctx, record, cleanup);
    throw e instanceof TsrunError ? e : new TsrunError(messageOf(e));
  } finally {
    lock.release();
  }
}

async function abortCreate(ctx: Context, record: ContainerRecord, cleanup: (() => void | Promise<void>)[]): Promise<void> {
  for (const f of cleanup.reverse()) {
    try {
      await f();
    } catch (e) {
      ctx.logger.warn(`cleanup after failed create: ${messageOf(e)}`);
    }
  }
  try {
    await CgroupManager.fromRecord(record.cgroup).remove((m) => ctx.logger.warn(m));
  } catch (e) {
    ctx.logger.warn(messageOf(e));
  }
  if (record.pid > 0) await runHooksWarning("poststop", record.config.hooks?.poststop, { ...stateOf(record, "stopped"), pid: 0 }, (m) => ctx.logger.warn(m));
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
    throw new TsrunError(messageOf(e), "INVALID_CONFIG");
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

function applyOptions(ctx: Context, spec: Spec): ApplyOptions {
  return { warn: (m) => ctx.logger.warn(m), ...(spec.linux?.devices ? { devices: spec.linux.devices } : {}), ...(ctx.rootlessCgroups ? { rootless: true } : {}) };
}

interface Prepared {
  cgroups: CgroupManager;
  fdMap: FdMap;
  syncSlot: number;
  stateDirSlot: number;
  consoleSlot: number | undefined;
  shimConsole: boolean; // the shim receives the pty master
  encoded: Buffer;
}

// Everything decided before the host is touched: where the cgroups go (refused when they exist frozen or in
// use, as runc refuses them), the helper's fd numbers, and the encoded plan.
async function userManagerCgroup(): Promise<string> {
  const driver = require("../cgroups/systemd/driver") as typeof import("../cgroups/systemd/driver");
  try {
    return await driver.managerCgroup();
  } catch (e) {
    throw new TsrunError(messageOf(e));
  }
}

function prepare(ctx: Context, o: CreateOptions, spec: Spec, bundle: string, rootfs: string, seccomp: Compiled | undefined, extra: number, host: HostFacts, managerCgroup: string | undefined): Prepared {
  let cgroups = CgroupManager.forContainer(spec.linux?.cgroupsPath, o.id, detectLayout(), {
    systemd: ctx.systemdCgroup === true,
    ...(ctx.rootlessCgroups ? { rootless: true } : {}),
    ...(managerCgroup !== undefined ? { managerCgroup } : {}),
  });
  // Rootless (runc's rootless cgroup manager, cgroupfs only): without a cgroupsPath, hierarchies tsrun may
  // not use are left out. (The user's systemd instance delegates its units: nothing to leave out there.)
  if (ctx.rootlessCgroups && !ctx.systemdCgroup && !spec.linux?.cgroupsPath) cgroups = rootlessSubset(cgroups, spec.linux?.resources, applyOptions(ctx, spec));
  // As runc (1.2+): a cgroup that exists already must hold no process, and must not be frozen (the init would
  // block in it, and create with it).
  const present = cgroups.pids().length;
  if (present > 0) throw new TsrunError(`container's cgroup is not empty: ${present} process(es) found`, "INVALID_STATE");
  if (cgroups.isFrozen()) throw new TsrunError("container's cgroup unexpectedly frozen", "INVALID_STATE");
  // SCMP_ACT_NOTIFY: a listener that is not there fails create; `tsrun start` hands it the notify fd once
  // the filter is loaded (src/seccomp/listener.ts).
  if (seccomp?.listener) checkListener(seccomp.listener);
  // The helper's fds: passed-through, then the sync socket, the state directory and the console socket.
  const fdMap = new FdMap(extra, o.stdio);
  const syncSlot = fdMap.slot("sync socket");
  const stateDirSlot = fdMap.slot("state directory");
  const consoleSlot = spec.process?.terminal ? fdMap.slot("console socket") : undefined;
  const plan = buildPlan({
    id: o.id,
    spec,
    bundle,
    rootfs,
    noPivot: o.noPivot === true,
    noNewKeyring: o.noNewKeyring === true,
    extraFds: extra,
    syncFd: syncSlot,
    stateDirFd: stateDirSlot,
    ...(consoleSlot !== undefined ? { consoleFd: consoleSlot } : {}),
    cgroupProcs: cgroups.joinFiles(),
    cgroupDirs: cgroups.directories(),
    cgroupMode: cgroups.mode,
    init: o.init === true,
    host,
    ...(seccomp ? { seccomp: { program: seccomp.program, flags: seccomp.flags } } : {}),
    warn: (m) => ctx.logger.warn(m),
  });
  if (ctx.logger.debugEnabled) for (const line of plan.describe()) ctx.logger.debug(`plan: ${line}`);
  const encoded = encodeChecked(plan); // an oversized config fails here
  return { cgroups, fdMap, syncSlot, stateDirSlot, consoleSlot, shimConsole: o.shim === true && spec.process?.terminal === true && !o.consoleSocket, encoded };
}

async function createInit(ctx: Context, o: CreateOptions, spec: Spec, record: ContainerRecord, cleanup: (() => void | Promise<void>)[], p: Prepared): Promise<void> {
  const { cgroups, fdMap, syncSlot, stateDirSlot, consoleSlot, shimConsole, encoded } = p;
  // Recorded before they are made: a create killed in between leaves nothing `delete` does not know of.
  record.cgroup = cgroups.planned();
  ctx.store.write(record);
  // Limits and device rules are in place before the init joins the cgroups (create removes them on failure),
  // but for pids.max: written once set-up is done (runc sets its limits at procReady), as a limit of 0 or 1
  // (runtime-spec 1.3) would refuse the init's own clone. A systemd unit is started with the set-up helper
  // in it, once it exists and before it reads its plan.
  const { pids: pidsLimit, ...early } = spec.linux?.resources ?? {};
  const makeCgroups = async (pid?: number) => {
    await cgroups.create({ ...(pid !== undefined ? { pid } : {}), resources: spec.linux?.resources });
    record.cgroup = cgroups.record();
    ctx.store.write(record);
    await cgroups.set(early, applyOptions(ctx, spec));
  };
  if (!cgroups.createsWithPid) await makeCgroups();

  const owned: number[] = []; // tsrun's copies, closed once the helper holds them (Launch handOver)
  const closeOwned = () => {
    for (const fd of owned.splice(0)) closeQuietly(fd);
  };
  cleanup.push(closeOwned);
  if (consoleSlot !== undefined) {
    // (validateSpec made sure the pty master has a receiver)
    let sock: number;
    if (shimConsole) {
      sock = fs.openSync("/dev/null", "r"); // a placeholder the shim swaps for the socket it receives the master on
      owned.push(sock);
    } else if (o.consoleSocket) {
      sock = connectSocketPath("--console-socket", o.consoleSocket);
      owned.push(sock);
    } else if (o.consoleFd !== undefined) {
      sock = o.consoleFd;
    } else {
      throw new Error("create: a terminal without a receiver for its master passed validation");
    }
    fdMap.bind(consoleSlot, sock);
  }

  const dirFd = fs.openSync(ctx.store.dir(record.id), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  owned.push(dirFd);
  fdMap.bind(stateDirSlot, dirFd);
  let shim: ShimClient | undefined;
  if (o.shim) {
    shim = ShimClient.start(ctx.store.dir(record.id));
    const client = shim;
    cleanup.push(() => client.close());
    record.shimPid = shim.pid;
    record.shimStartTime = procStat(shim.pid)?.startTime ?? "";
  }
  const pidfdSocket = PidfdSocket.connect(o.pidfdSocket);
  cleanup.push(() => pidfdSocket.close());
  const launch = new Launch({
    fds: fdMap,
    syncSlot,
    plan: encoded,
    logger: ctx.logger,
    what: "init",
    handOver: owned,
    ...(cgroups.createsWithPid ? { onSpawn: makeCgroups } : {}),
    ...(shim ? { shim: { client: shim, logs: !spec.process?.terminal, ...(shimConsole ? { consoleIndex: consoleSlot! } : {}) } } : {}),
  });
  cleanup.push(() => launch.abort());
  await launch.run({
    onPid: (pid) => {
      pidfdSocket.send(pid, "standard");
      record.pid = pid;
      record.startTime = procStat(pid)?.startTime ?? "";
      ctx.store.write(record);
    },
    onUsermapRequest: (pid) => writeIdMaps(pid, spec),
    onHooksRequest: async () => {
      moveNetDevices(spec, record.pid, (m) => ctx.logger.debug(m)); // (linux.netDevices: the init waits here for them too)
      const state = stateOf(record, "creating");
      await runHooks("prestart", spec.hooks?.prestart, state);
      await runHooks("createRuntime", spec.hooks?.createRuntime, state);
      return Buffer.from(JSON.stringify(state));
    },
    onReady: async () => {
      if (pidsLimit) await cgroups.set({ pids: pidsLimit }, { ...applyOptions(ctx, spec), skipDevices: true });
      // The commit point: the container is recorded as created, then the init is told (until the ack it
      // exits if tsrun dies, so a killed create never leaves an init the state does not show).
      record.creating = false;
      ctx.store.write(record);
      if (shim) {
        shim.setInit(record.pid);
        shim.close();
      }
    },
  });
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

