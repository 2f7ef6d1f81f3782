// The Task service of containerd's shim API v2 (containerd.task.v2.Task), on tsrun's async API: every
// container of this shim lives in this one Node process, which is the parent of each init and exec'd
// process, reaps them, and keeps their exit status until Delete.
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { type Any, AnySchema, EmptySchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { promisify } from "util";
import { type Container, type ExecProcess, Runtime, type Stats } from "../../api";
import { TsrunError } from "../../errors";
import { native } from "../../native";
import { MS } from "../../plan/linux";
import { mountFlagOption } from "../../plan/mounts";
import type { Process, UpdateResources } from "../../spec/schema";
import * as ev from "./gen/events/task_pb";
import { MetricsSchema } from "./gen/cgroups/v1/metrics_pb";
import { MetricsSchema as MetricsV2Schema } from "./gen/cgroups/v2/metrics_pb";
import * as t from "./gen/runtime/task/v2/shim_pb";
import { type Mount } from "./gen/types/mount_pb";
import { OptionsSchema, ProcessDetailsSchema } from "./gen/types/runc/options/oci_pb";
import { Status } from "./gen/types/task/task_pb";
import { BUNDLE_STATE, DEFAULT_ROOT, shared, unmountAll } from "./main";
import { Publisher } from "./publish";
import { watchOom } from "./oom";
import { reaper } from "./reaper";
import { metricsFromStats, metricsV2FromDir, V1_TYPE, V2_TYPE, v2CgroupDir } from "./stats";
import { openStdio, type Stdio } from "./stdio";
import { Code, type Handler, RpcError } from "./ttrpc";

const run = promisify(execFile);
export const SERVICE = "containerd.task.v2.Task";

interface Proc {
  execId: string; // "" for the init
  pid: number;
  started: boolean;
  exit?: { status: number; at: Date };
  exited: Promise<void>;
  onExit: () => void;
  stdio: Stdio | undefined;
  io: { stdin: string; stdout: string; stderr: string; terminal: boolean };
  spec?: Process; // an exec's process, until it is started
  handle?: ExecProcess;
}

interface Task {
  id: string;
  bundle: string;
  container: Container;
  init: Proc;
  execs: Map<string, Proc>;
  rootfsMounted: boolean;
  cgroupV2?: string; // the container's cgroup directory on a unified (cgroup v2) host
  stopOom?: () => void;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function rpcError(e: unknown): RpcError {
  if (e instanceof RpcError) return e;
  if (e instanceof TsrunError) {
    const code = { NOT_FOUND: Code.NOT_FOUND, EXISTS: Code.ALREADY_EXISTS, NOT_RUNNING: Code.NOT_FOUND, INVALID_STATE: Code.FAILED_PRECONDITION, INVALID_ARGUMENT: Code.INVALID_ARGUMENT, INVALID_CONFIG: Code.INVALID_ARGUMENT }[e.code as string];
    return new RpcError(code ?? Code.UNKNOWN, e.message);
  }
  return new RpcError(Code.UNKNOWN, e instanceof Error ? e.message : String(e));
}

export class TaskService {
  private readonly tasks = new Map<string, Task>();
  private readonly runtimes = new Map<string, Runtime>();
  readonly events: Publisher;

  constructor(
    private readonly namespace: string,
    ttrpcAddress: string | undefined,
    private readonly shutdown: () => void,
    private readonly debug = false,
  ) {
    this.events = new Publisher(namespace, ttrpcAddress);
  }

  get size(): number {
    return this.tasks.size;
  }

  handlers(): Map<string, Handler> {
    const m = new Map<string, Handler>();
    const add = <I extends DescMessage, O extends DescMessage>(method: string, inS: I, outS: O, fn: (req: MessageShape<I>) => Promise<MessageShape<O>>) => {
      m.set(`${SERVICE}/${method}`, async (payload) => {
        if (this.debug) process.stderr.write(`${new Date().toISOString()} ${method}\n`);
        // (the API may wait for processes it spawns during a request: the reaper waits for its end; Wait
        // spawns nothing and lasts as long as the process)
        const release = method === "Wait" ? undefined : reaper.hold();
        try {
          return toBinary(outS, await fn(fromBinary(inS, payload)));
        } catch (e) {
          throw rpcError(e);
        } finally {
          release?.();
        }
      });
    };
    const empty = create(EmptySchema);
    add("Create", t.CreateTaskRequestSchema, t.CreateTaskResponseSchema, (r) => this.create(r));
    add("Start", t.StartRequestSchema, t.StartResponseSchema, (r) => this.start(r));
    add("State", t.StateRequestSchema, t.StateResponseSchema, (r) => this.state(r));
    add("Delete", t.DeleteRequestSchema, t.DeleteResponseSchema, (r) => this.delete(r));
    add("Pids", t.PidsRequestSchema, t.PidsResponseSchema, (r) => this.pids(r));
    add("Pause", t.PauseRequestSchema, EmptySchema, async (r) => {
      await this.task(r.id).container.pause();
      this.events.publish("/tasks/paused", ev.TaskPausedSchema, { containerId: r.id });
      return empty;
    });
    add("Resume", t.ResumeRequestSchema, EmptySchema, async (r) => {
      await this.task(r.id).container.resume();
      this.events.publish("/tasks/resumed", ev.TaskResumedSchema, { containerId: r.id });
      return empty;
    });
    add("Checkpoint", t.CheckpointTaskRequestSchema, EmptySchema, async () => {
      throw new RpcError(Code.UNIMPLEMENTED, "tsrun shim: checkpoint is not implemented (tsrun has no CRIU support)");
    });
    add("Kill", t.KillRequestSchema, EmptySchema, async (r) => {
      await this.kill(r);
      return empty;
    });
    add("Exec", t.ExecProcessRequestSchema, EmptySchema, async (r) => {
      this.exec(r);
      return empty;
    });
    add("ResizePty", t.ResizePtyRequestSchema, EmptySchema, async (r) => {
      this.proc(r.id, r.execId).stdio?.resize(r.height, r.width);
      return empty;
    });
    add("CloseIO", t.CloseIORequestSchema, EmptySchema, async (r) => {
      if (r.stdin) this.proc(r.id, r.execId).stdio?.closeStdin();
      return empty;
    });
    add("Update", t.UpdateTaskRequestSchema, EmptySchema, async (r) => {
      await this.update(r);
      return empty;
    });
    add("Wait", t.WaitRequestSchema, t.WaitResponseSchema, async (r) => {
      const p = this.proc(r.id, r.execId);
      await p.exited;
      return create(t.WaitResponseSchema, { exitStatus: p.exit!.status, exitedAt: timestampFromDate(p.exit!.at) });
    });
    add("Stats", t.StatsRequestSchema, t.StatsResponseSchema, async (r) => {
      const task = this.task(r.id);
      if (task.cgroupV2 !== undefined) {
        if (task.init.exit) throw new RpcError(Code.NOT_FOUND, `container with id ${r.id} is not running`);
        return create(t.StatsResponseSchema, { stats: anyOf(V2_TYPE, toBinary(MetricsV2Schema, metricsV2FromDir(task.cgroupV2))) });
      }
      const stats: Stats = await task.container.stats();
      return create(t.StatsResponseSchema, { stats: anyOf(V1_TYPE, toBinary(MetricsSchema, metricsFromStats(stats))) });
    });
    add("Connect", t.ConnectRequestSchema, t.ConnectResponseSchema, async (r) => {
      const task = this.tasks.get(r.id);
      return create(t.ConnectResponseSchema, { shimPid: process.pid, taskPid: task?.init.pid ?? 0, version: "tsrun" });
    });
    add("Shutdown", t.ShutdownRequestSchema, EmptySchema, async (r) => {
      // (a shared shim stays for the next container)
      if ((this.tasks.size === 0 && !shared()) || r.now) setImmediate(() => this.shutdown());
      return empty;
    });
    return m;
  }

  private runtime(root: string, systemd: boolean): Runtime {
    const key = `${root}\0${systemd}`;
    let rt = this.runtimes.get(key);
    if (!rt) this.runtimes.set(key, (rt = new Runtime({ root, systemdCgroup: systemd })));
    return rt;
  }

  private task(id: string): Task {
    const task = this.tasks.get(id);
    if (!task) throw new RpcError(Code.NOT_FOUND, `container ${id}: not found`);
    return task;
  }

  private proc(id: string, execId: string): Proc {
    const task = this.task(id);
    if (!execId) return task.init;
    const p = task.execs.get(execId);
    if (!p) throw new RpcError(Code.NOT_FOUND, `process ${execId} does not exist: not found`);
    return p;
  }

  private newProc(execId: string, io: Proc["io"]): Proc {
    const d = deferred();
    return { execId, pid: 0, started: false, exited: d.promise, onExit: d.resolve, stdio: undefined, io };
  }

  // Watches `pid` (this process's child) and records its exit, then publishes TaskExit. The reaper leaves
  // the pid to this wait.
  private watch(task: Task, p: Proc, wait: () => Promise<{ code: number | null }>): void {
    reaper.track(p.pid);
    void wait()
      .catch(() => ({ code: null }))
      .then((s) => {
        reaper.untrack(p.pid);
        p.exit = { status: s.code ?? 255, at: new Date() };
        p.stdio?.close();
        p.onExit();
        this.events.publish("/tasks/exit", ev.TaskExitSchema, { containerId: task.id, id: p.execId || task.id, pid: p.pid, exitStatus: p.exit.status, exitedAt: timestampFromDate(p.exit.at) });
      });
  }

  // TaskOOM for each OOM in the container's memory cgroup (src/shim/containerd/oom.ts), until Delete.
  private watchOom(task: Task): void {
    task.stopOom = watchOom(task.init.pid, () => {
      if (this.tasks.get(task.id) === task) this.events.publish("/tasks/oom", ev.TaskOOMSchema, { containerId: task.id });
    });
  }

  private async create(r: t.CreateTaskRequest): Promise<t.CreateTaskResponse> {
    if (this.tasks.has(r.id)) throw new RpcError(Code.ALREADY_EXISTS, `container ${r.id}: already exists`);
    if (r.checkpoint) throw new RpcError(Code.UNIMPLEMENTED, "tsrun shim: restore from a checkpoint is not implemented");
    let root = DEFAULT_ROOT;
    let systemd = false;
    let o: { noPivot?: boolean; noNewKeyring?: boolean } = {};
    if (r.options && r.options.typeUrl.endsWith("containerd.runc.v1.Options")) {
      const opts = fromBinary(OptionsSchema, r.options.value);
      if (opts.root) root = opts.root;
      systemd = opts.systemdCgroup;
      o = { ...(opts.noPivotRoot ? { noPivot: true } : {}), ...(opts.noNewKeyring ? { noNewKeyring: true } : {}) };
    }
    // containerd's CRI hands runc's Options to io.containerd.runc.* runtimes only: for this one a
    // "slice:prefix:name" cgroupsPath (what the CRI makes of a kubelet's systemd cgroup parent) on a systemd
    // host asks for the systemd driver.
    if (!systemd && systemdCgroupsPath(r.bundle)) systemd = true;
    root = path.join(root, this.namespace);
    fs.writeFileSync(path.join(r.bundle, BUNDLE_STATE), JSON.stringify({ root, systemdCgroup: systemd }));
    const rootfsMounted = await mountRootfs(r.bundle, r.rootfs);
    const init = this.newProc("", { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal });
    let pair: [number, number] | undefined;
    try {
      init.stdio = await openStdio(init.io, { id: r.id, namespace: this.namespace });
      if (r.terminal) pair = native().socketpair();
      const container = await this.runtime(root, systemd).create(r.id, { bundle: r.bundle, stdio: init.stdio.fds, ...(pair ? { consoleFd: pair[1] } : {}), ...o });
      if (pair) {
        fs.closeSync(pair[1]);
        await native().readable(pair[0], 5000);
        init.stdio.attachTerminal(native().recvFd(pair[0]));
      }
      init.stdio.close();
      const st = await container.state();
      init.pid = st.pid;
      const task: Task = { id: r.id, bundle: r.bundle, container, init, execs: new Map(), rootfsMounted };
      const v2 = v2CgroupDir(init.pid);
      if (v2 !== undefined) task.cgroupV2 = v2;
      this.tasks.set(r.id, task);
      this.watch(task, init, () => container.wait());
      this.watchOom(task);
    } catch (e) {
      void init.stdio?.dispose();
      if (rootfsMounted) await unmountRootfs(r.bundle);
      throw e;
    } finally {
      if (pair) fs.closeSync(pair[0]);
    }
    this.events.publish("/tasks/create", ev.TaskCreateSchema, { containerId: r.id, bundle: r.bundle, rootfs: r.rootfs, io: { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal }, pid: init.pid });
    return create(t.CreateTaskResponseSchema, { pid: init.pid });
  }

  private async start(r: t.StartRequest): Promise<t.StartResponse> {
    const task = this.task(r.id);
    if (!r.execId) {
      await task.container.start();
      task.init.started = true;
      this.events.publish("/tasks/start", ev.TaskStartSchema, { containerId: r.id, pid: task.init.pid });
      return create(t.StartResponseSchema, { pid: task.init.pid });
    }
    const p = this.proc(r.id, r.execId);
    if (p.started || !p.spec) throw new RpcError(Code.FAILED_PRECONDITION, `process ${r.execId} already started`);
    let stdio: Stdio | undefined;
    try {
      stdio = await openStdio(p.io, { id: r.execId, namespace: this.namespace });
      p.stdio = stdio;
      const h = await task.container.exec(p.spec, { tty: p.io.terminal, stdio: stdio.fds });
      if (h.terminal !== undefined) stdio.attachTerminal(h.terminal);
      stdio.close();
      p.handle = h;
      p.pid = h.pid;
      p.started = true;
      delete p.spec;
      this.watch(task, p, () => h.wait());
    } catch (e) {
      void stdio?.dispose();
      throw e;
    }
    this.events.publish("/tasks/exec-started", ev.TaskExecStartedSchema, { containerId: r.id, execId: r.execId, pid: p.pid });
    return create(t.StartResponseSchema, { pid: p.pid });
  }

  private exec(r: t.ExecProcessRequest): void {
    const task = this.task(r.id);
    if (task.execs.has(r.execId)) throw new RpcError(Code.ALREADY_EXISTS, `id ${r.execId}: already exists`);
    if (task.init.exit) throw new RpcError(Code.FAILED_PRECONDITION, `container ${r.id}: the init has exited`);
    if (!r.spec) throw new RpcError(Code.INVALID_ARGUMENT, "exec: no process spec");
    const { parseProcess } = require("../../spec/schema") as typeof import("../../spec/schema");
    let spec: Process;
    try {
      spec = parseProcess(JSON.parse(Buffer.from(r.spec.value).toString("utf8")), "process");
    } catch (e) {
      throw new RpcError(Code.INVALID_ARGUMENT, `exec: invalid process spec: ${e instanceof Error ? e.message : String(e)}`);
    }
    const p = this.newProc(r.execId, { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal });
    p.spec = spec;
    task.execs.set(r.execId, p);
    this.events.publish("/tasks/exec-added", ev.TaskExecAddedSchema, { containerId: r.id, execId: r.execId });
  }

  private async state(r: t.StateRequest): Promise<t.StateResponse> {
    const task = this.task(r.id);
    const p = this.proc(r.id, r.execId);
    let status: Status;
    if (p.exit) status = Status.STOPPED;
    else if (r.execId) status = p.started ? Status.RUNNING : Status.CREATED;
    else {
      const s = (await task.container.state()).status;
      status = s === "created" ? Status.CREATED : s === "running" ? Status.RUNNING : s === "paused" ? Status.PAUSED : Status.STOPPED;
      if (status === Status.STOPPED && !p.exit) await p.exited; // the exit is being recorded
    }
    return create(t.StateResponseSchema, {
      id: r.id,
      execId: r.execId,
      bundle: task.bundle,
      pid: p.pid,
      status,
      stdin: p.io.stdin,
      stdout: p.io.stdout,
      stderr: p.io.stderr,
      terminal: p.io.terminal,
      exitStatus: p.exit?.status ?? 0,
      ...(p.exit ? { exitedAt: timestampFromDate(p.exit.at) } : {}),
    });
  }

  private async kill(r: t.KillRequest): Promise<void> {
    const task = this.task(r.id);
    const p = this.proc(r.id, r.execId);
    if (p.exit && !(r.all && !r.execId)) throw new RpcError(Code.NOT_FOUND, "process already finished: not found");
    if (r.execId) {
      if (!p.started) throw new RpcError(Code.FAILED_PRECONDITION, `process ${r.execId} not started`);
      try {
        process.kill(p.pid, r.signal);
      } catch {
        throw new RpcError(Code.NOT_FOUND, "process already finished: not found");
      }
      return;
    }
    await task.container.kill(r.signal, { all: r.all });
  }

  private async delete(r: t.DeleteRequest): Promise<t.DeleteResponse> {
    const task = this.task(r.id);
    const p = this.proc(r.id, r.execId);
    if (r.execId) {
      if (p.started && !p.exit) throw new RpcError(Code.FAILED_PRECONDITION, `process ${r.execId} must be stopped before deletion`);
      task.execs.delete(r.execId);
      await p.stdio?.dispose();
      return create(t.DeleteResponseSchema, { pid: p.pid, exitStatus: p.exit?.status ?? 0, ...(p.exit ? { exitedAt: timestampFromDate(p.exit.at) } : {}) });
    }
    if (!p.exit) {
      const s = (await task.container.state()).status;
      if (s !== "created" && s !== "stopped") throw new RpcError(Code.FAILED_PRECONDITION, `cannot delete a ${s} container ${r.id}`);
      if (s === "created") await task.container.kill("SIGKILL").catch(() => {});
      await p.exited;
    }
    task.stopOom?.();
    await task.container.delete({ force: true }).catch((e: unknown) => {
      if (!(e instanceof TsrunError && e.code === "NOT_FOUND")) throw e;
    });
    await Promise.all([...task.execs.values(), p].map((x) => x.stdio?.dispose()));
    if (task.rootfsMounted) await unmountRootfs(task.bundle);
    this.tasks.delete(r.id);
    const exit = p.exit!;
    this.events.publish("/tasks/delete", ev.TaskDeleteSchema, { containerId: r.id, pid: p.pid, exitStatus: exit.status, exitedAt: timestampFromDate(exit.at), id: r.id });
    return create(t.DeleteResponseSchema, { pid: p.pid, exitStatus: exit.status, exitedAt: timestampFromDate(exit.at) });
  }

  private async pids(r: t.PidsRequest): Promise<t.PidsResponse> {
    const task = this.task(r.id);
    const byPid = new Map<number, string>();
    for (const p of task.execs.values()) if (p.pid) byPid.set(p.pid, p.execId);
    const pids = await task.container.pids();
    return create(t.PidsResponseSchema, {
      processes: pids.map((pid) => {
        const execId = byPid.get(pid);
        return { pid, ...(execId ? { info: anyOf("containerd.runc.v1.ProcessDetails", toBinary(ProcessDetailsSchema, create(ProcessDetailsSchema, { execId }))) } : {}) };
      }),
    });
  }

  private async update(r: t.UpdateTaskRequest): Promise<void> {
    const task = this.task(r.id);
    if (!r.resources) return;
    const { parseResources } = require("../../spec/schema") as typeof import("../../spec/schema");
    let res: UpdateResources;
    try {
      res = parseResources(JSON.parse(Buffer.from(r.resources.value).toString("utf8")), "resources");
    } catch (e) {
      throw new RpcError(Code.INVALID_ARGUMENT, `update: invalid resources: ${e instanceof Error ? e.message : String(e)}`);
    }
    await task.container.update(res);
  }
}

export function anyOf(typeUrl: string, value: Uint8Array): Any {
  return create(AnySchema, { typeUrl, value });
}

// containerd's option words (core/mount/mount_linux.go parseMountOptions) are runc's flag table
// (src/plan/mounts.ts) less these, which containerd hands to the filesystem as data, as it does every word
// not in its table. So do the propagation words (private, rshared, ...: containerd's table has none, its
// propagation step is unreachable) and runc's recursive mount_setattr words (rro, rnosuid, ...), here as
// there: a bind mount ignores its data, overlay refuses a word it does not know.
const NOT_CONTAINERD_FLAGS = new Set(["iversion", "noiversion", "lazytime", "nolazytime", "loud", "silent", "nosymfollow", "symfollow"]);
const PAGE_SIZE = 4096;

// A rootfs Mount's options as containerd reads them: mount(2) flags and the data string. Words containerd
// acts on in ways this shim does not ("loop": a loop device; uidmap=/gidmap=: idmapped layers) are
// refused, as are containerd's internal X-containerd.* words (containerd refuses those too).
export function rootfsMountOptions(options: readonly string[]): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    if (o === "") continue;
    if (o.startsWith("X-containerd.")) throw new Error(`internal mount option "${o}" was not consumed by the mount manager`);
    if (o === "loop" || o.startsWith("uidmap=") || o.startsWith("gidmap=")) throw new Error(`mount option "${o}" is not supported by the tsrun shim`);
    const f = NOT_CONTAINERD_FLAGS.has(o) ? undefined : mountFlagOption(o);
    if (f && f[1] !== 0) flags = f[0] ? flags & ~f[1] : flags | f[1];
    else data.push(o); // "defaults" too (flag 0), as containerd does
  }
  const text = data.join(",");
  if (Buffer.byteLength(text) > PAGE_SIZE) throw new Error("mount options is too long");
  return { flags, data: text };
}

// containerd's compactLowerdirOption: an overlay's lowerdir list relative to the layers' common directory
// (the parent of their longest common prefix; not "/" or "."), the lowerdir option moved last; undefined
// when there is nothing to shorten.
export function compactLowerdirs(options: readonly string[]): { dir: string; options: string[] } | undefined {
  const idx = options.findIndex((o) => o.startsWith("lowerdir="));
  if (idx < 0) return undefined;
  const dirs = options[idx]!.slice("lowerdir=".length).split(":");
  if (dirs.length === 1) return undefined;
  const lo = dirs.reduce((a, b) => (b < a ? b : a));
  const hi = dirs.reduce((a, b) => (b > a ? b : a));
  let n = 0;
  while (n < lo.length && n < hi.length && lo[n] === hi[n]) n++;
  const prefix = lo.slice(0, n);
  if (prefix === "") return undefined;
  // Go's path.Dir: up to the last slash, cleaned (no trailing slash but for "/")
  const cut = prefix.slice(0, prefix.lastIndexOf("/") + 1);
  const dir = cut === "" ? "." : path.posix.normalize(cut).replace(/(.)\/$/, "$1");
  if (dir === "/" || dir === ".") return undefined;
  const common = `${dir}/`;
  if (dirs.some((d) => d.length <= common.length)) return undefined;
  const rest = options.filter((_, i) => i !== idx);
  return { dir, options: [...rest, `lowerdir=${dirs.map((d) => d.slice(common.length)).join(":")}`] };
}

// One Mount onto target, as containerd's Mount.mount: a fuse.X/fuse3.X type through its mount.fuse(3)
// helper; else mount(2) with the flags (skipped for a remount without data), then, for a read-only bind,
// the remount that makes it read-only (a bind ignores MS_RDONLY). containerd also keeps a user namespace's
// locked flags on that remount; this shim does not run in one.
async function mountOne(m: Mount, target: string): Promise<void> {
  const fuse = /^(fuse3?)\./.exec(m.type);
  if (fuse) {
    await run(`mount.${fuse[1]!}`, [m.source, target, ...m.options.flatMap((o) => ["-o", o]), "-t", m.type.slice(fuse[0].length)]);
    return;
  }
  const n = native();
  let options: readonly string[] = m.options;
  let dirFd: number | undefined;
  // an overlay's lowerdir list near the one page mount(2) takes is shortened as containerd shortens it; where
  // containerd mounts from a thread chdir'd into the common directory, the layers are named here through
  // an O_PATH fd of it (/proc/self/fd/N/...): Node's threads share one working directory
  if (m.type === "overlay" && options.reduce((a, o) => a + Buffer.byteLength(o), 0) >= PAGE_SIZE - 512) {
    const c = compactLowerdirs(options);
    if (c) {
      dirFd = n.openPath(c.dir);
      const at = `/proc/self/fd/${dirFd}/`;
      const last = c.options.length - 1; // the lowerdir option, moved last
      options = c.options.map((o, i) => (i === last ? `lowerdir=${o.slice("lowerdir=".length).split(":").map((d) => at + d).join(":")}` : o));
    }
  }
  try {
    const { flags, data } = rootfsMountOptions(options);
    if ((flags & MS.REMOUNT) === 0 || data !== "") n.mount(m.source, target, m.type, flags, data);
    if ((flags & (MS.BIND | MS.RDONLY)) === (MS.BIND | MS.RDONLY)) n.mount("", target, "", flags | MS.REMOUNT, "");
  } finally {
    if (dirFd !== undefined) fs.closeSync(dirFd);
  }
}

// The rootfs mounts of a CreateTaskRequest, onto bundle/rootfs, as containerd's runc shim does (mount.All):
// each Mount in order onto the same target (stacked); on any failure everything mounted there is unmounted
// again (its deferred UnmountAll). bundle/rootfs is made (0711) when missing; a symlink or a non-directory
// there is refused, never mounted through.
export async function mountRootfs(bundle: string, mounts: Mount[]): Promise<boolean> {
  if (mounts.length === 0) return false;
  const target = path.join(bundle, "rootfs");
  try {
    fs.mkdirSync(target, 0o711);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const st = fs.lstatSync(target);
  if (!st.isDirectory()) throw new RpcError(Code.FAILED_PRECONDITION, `mount rootfs: ${target} is ${st.isSymbolicLink() ? "a symlink" : "not a directory"}`);
  for (const m of mounts) {
    try {
      await mountOne(m, target);
    } catch (e) {
      await unmountRootfs(bundle);
      const what = `{${m.type} ${m.source} [${m.options.join(" ")}]}`;
      throw new RpcError(Code.UNKNOWN, `failed to mount rootfs component ${what}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
    }
  }
  return true;
}

// Unmounts every mount stacked on bundle/rootfs (main.ts's unmountAll); a failure is logged, as containerd
// logs it.
export async function unmountRootfs(bundle: string): Promise<void> {
  try {
    unmountAll(path.join(bundle, "rootfs"));
  } catch (e) {
    process.stderr.write(`tsrun shim: failed to clean up rootfs mount: ${e instanceof Error ? e.message : String(e)}\n`);
  }
}

// Whether the bundle's cgroupsPath has the systemd driver's form ("slice:prefix:name", no "/"), on a host
// whose init is systemd.
export function systemdCgroupsPath(bundle: string): boolean {
  if (!fs.existsSync(process.env.TSRUN_SYSTEMD_RUN_DIR ?? "/run/systemd/system")) return false;
  try {
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as { linux?: { cgroupsPath?: unknown } };
    const p = spec.linux?.cgroupsPath;
    return typeof p === "string" && /^(?:[^:/]*\.slice)?:[^:/]*:[^:/]+$/.test(p);
  } catch {
    return false;
  }
}
