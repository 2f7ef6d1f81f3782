// A container's cgroups as one object, built once per container (runc's cgroups.Manager, youki's
// CgroupManager, crun's cgroup handle): it owns where each controller's directory is, creating the
// directories, the files the init joins, writing resources (apply / update), freezing and thawing, listing
// and signalling the processes, statistics, and removal. The per-controller work is in controllers/*.ts;
// the layout decides where a controller lives:
//   v1      one directory per v1 hierarchy;
//   hybrid  the same, plus the v2 tree for controllers no v1 hierarchy has (hugetlb on this host), and the
//           v2 cgroup.kill / cgroup.freeze when the v1 hierarchies have no freezer;
//   v2      the one v2 directory, made as runc's fs2 CreateCgroupPath (every controller the root offers
//           enabled in each ancestor, tree.ts makeV2Path): spec values converted and written in fs2's
//           order, device rules as a BPF program, linux.resources.unified written last;
//   systemd (--systemd-cgroup) any of the three, whose cgroup is a transient unit of systemd's: created with
//           the container's first process (create(pid)) and removed (StopUnit) through systemd's D-Bus API,
//           its limits set as unit properties before the files are written (set/update); the rest is the
//           layout's (systemd/driver.ts, loaded only for such containers).
// The state.json record ({dirs, created, systemd?}) is what a manager is built from and what it produces.
import * as fs from "fs";
import * as path from "path";
import { errnoCode, messageOf } from "../errors";
import type { LinuxResources } from "../spec/schema";
import { type ApplyOptions, type Controller, type Location, Writer } from "./controller";
import * as freezer from "./controllers/freezer";
import type { CgroupLayout } from "./layout";
import { resolveCgroupPaths } from "./paths";
import type { SystemdRecord } from "./systemd/units";
import { emptyStats, type Stats } from "./stats";
import { enableControllers, inheritCpuset, makeDir, makeV2Path, missingDirs, procsFilesUnder, removeDirs } from "./tree";

export type { ApplyOptions } from "./controller";

// state.json's cgroup record (ContainerRecord.cgroup).
export interface CgroupRecord {
  // Absolute directories, one per v1 hierarchy (key: its controllers joined by ",") and "" for v2.
  dirs: Record<string, string>;
  // The directories this container created (removed on delete, deepest first). Never a pre-existing one.
  created: string[];
  // A systemd-managed container: its unit (the directories are the unit's cgroup; created stays empty).
  systemd?: SystemdRecord;
}

function systemdDriver(): typeof import("./systemd/driver") {
  return require("./systemd/driver") as typeof import("./systemd/driver");
}

export type CgroupMode = "v1" | "v2" | "hybrid";

// Resources are written controller by controller in this order (runc's), each where the manager finds it.
// The controllers load on first use: commands that only freeze, signal, list or remove a container (every
// CLI verb pays for what it loads) never compile them.
interface Controllers {
  apply: readonly Controller[];
  applyV2: readonly Controller[]; // runc's fs2 Set order

  stats: readonly Controller[]; // in the order statistics are read (cpuacct's usage before cpu's throttling)
  oomKills: typeof import("./controllers/memory").oomKills;
  applyUnified: typeof import("./controllers/unified").applyUnified;
}
let loaded: Controllers | undefined;
function controllers(): Controllers {
  if (loaded) return loaded;
  const { blkio } = require("./controllers/blkio") as typeof import("./controllers/blkio");
  const { cpu, cpuacct } = require("./controllers/cpu") as typeof import("./controllers/cpu");
  const { cpuset } = require("./controllers/cpuset") as typeof import("./controllers/cpuset");
  const { devices } = require("./controllers/devices") as typeof import("./controllers/devices");
  const { hugetlb } = require("./controllers/hugetlb") as typeof import("./controllers/hugetlb");
  const { memory, oomKills } = require("./controllers/memory") as typeof import("./controllers/memory");
  const { netCls, netPrio } = require("./controllers/net") as typeof import("./controllers/net");
  const { pids } = require("./controllers/pids") as typeof import("./controllers/pids");
  const { rdma } = require("./controllers/rdma") as typeof import("./controllers/rdma");
  const { applyUnified } = require("./controllers/unified") as typeof import("./controllers/unified");
  loaded = {
    apply: [cpuset, devices, memory, cpu, pids, blkio, hugetlb, netCls, netPrio, rdma],
    applyV2: [pids, memory, blkio, cpu, devices, cpuset, hugetlb, rdma, netCls, netPrio],
    stats: [cpuacct, cpu, cpuset, memory, pids, blkio, hugetlb],
    oomKills,
    applyUnified,
  };
  return loaded;
}

// A write to cgroup.kill that failed (the caller names the container).
export class CgroupKillError extends Error {}

// One entry of the record's dirs, decoded: a v1 hierarchy (its controllers) or the v2 tree.
interface Hierarchy {
  version: 1 | 2;
  controllers: string[]; // v1 only
  dir: string;
}

// The record's keys are decoded here and nowhere else; the record's order is kept.
function decode(dirs: Readonly<Record<string, string>>): Hierarchy[] {
  return Object.entries(dirs).map(([key, dir]) => (key === "" ? { version: 2, controllers: [], dir } : { version: 1, controllers: key.split(","), dir }));
}

export abstract class CgroupManager {
  abstract readonly mode: CgroupMode;
  private readonly hierarchies: readonly Hierarchy[];
  protected readonly v1: readonly Hierarchy[];
  protected readonly v2: string | undefined;
  private created: string[];

  protected constructor(
    private readonly dirs: Readonly<Record<string, string>>,
    created: readonly string[],
    protected readonly systemd: SystemdRecord | undefined,
  ) {
    this.hierarchies = decode(dirs);
    this.v1 = this.hierarchies.filter((h) => h.version === 1);
    this.v2 = this.hierarchies.find((h) => h.version === 2)?.dir;
    this.created = [...created];
  }

  // The manager of an existing container: the layout is the record's (a v2 tree alone, v1 hierarchies
  // alone — or none — or both).
  static fromRecord(record: CgroupRecord): CgroupManager {
    const h = decode(record.dirs);
    const v2 = h.some((x) => x.version === 2);
    if (v2 && h.length === 1) return new V2Manager(record.dirs, record.created, record.systemd);
    if (v2) return new HybridManager(record.dirs, record.created, record.systemd);
    return new V1Manager(record.dirs, record.created, record.systemd);
  }

  // The manager of a container about to be created (nothing made yet): its directories by runc's
  // cgroupsPath rules on the host's layout; with systemd, its unit's cgroup ("slice:prefix:name").
  // Rootless with systemd: the user instance's unit, below `managerCgroup` (systemd/driver.ts managerCgroup()).
  static forContainer(cgroupsPath: string | undefined, id: string, layout: CgroupLayout, o: { systemd?: boolean; rootless?: boolean; managerCgroup?: string } = {}): CgroupManager {
    if (o.systemd) {
      const { dirs, systemd } = systemdDriver().placement(cgroupsPath, id, layout, { ...(o.rootless ? { rootless: true } : {}), ...(o.managerCgroup ? { managerCgroup: o.managerCgroup } : {}) });
      return CgroupManager.fromRecord({ dirs, created: [], systemd });
    }
    return CgroupManager.fromRecord({ dirs: resolveCgroupPaths(cgroupsPath, id, layout), created: [] });
  }

  // The record of what exists now.
  record(): CgroupRecord {
    return { dirs: { ...this.dirs }, created: [...this.created], ...(this.systemd ? { systemd: { ...this.systemd } } : {}) };
  }

  // The record as it will be once create() has run: every missing directory counted as created (with systemd:
  // the unit, which delete stops whether or not it was started). Saved before create(), so a create killed
  // in between leaves nothing `delete` does not know of.
  planned(): CgroupRecord {
    if (this.systemd) return this.record();
    return { dirs: { ...this.dirs }, created: missingDirs(this.hierarchies.map((h) => h.dir)) };
  }

  // Whether create() needs the container's first process (systemd starts a scope with it).
  get createsWithPid(): boolean {
    return this.systemd !== undefined;
  }

  // The directory of every hierarchy (the plan's cgroup mounts show these).
  directories(): Record<string, string> {
    return { ...this.dirs };
  }

  // ---------------------------------------------------------------------------------------------------
  // create / join / remove

  // mkdir -p of every directory, remembering which are new. A v1 cpuset directory with empty cpus or mems,
  // and any such ancestor, inherits its parent's (runc's cpusetEnsureParent; pre-existing ones only when
  // empty, where they could hold no task). On a v2-only host, runc's fs2 CreateCgroupPath (tree.ts
  // makeV2Path): every controller the root offers is enabled in the subtree_control of the root and of each
  // ancestor, pre-existing ones included (`resources` decide whether a threaded ancestor is refused). On a
  // hybrid host, a new intermediate v2 directory gets its controllers enabled (only directories created
  // here). On failure, whatever was made is removed again.
  // With systemd (runc's systemd Apply): the unit is started with `pid` in it first, then the directories it
  // did not make are made as above (v1 hierarchies systemd does not manage), though not recorded: the unit
  // is what delete removes, then the container's own directories.
  async create(o: { pid?: number; resources?: LinuxResources | undefined } = {}): Promise<void> {
    const resources = o.resources;
    if (this.systemd) {
      if (o.pid === undefined) throw new Error("internal: a systemd cgroup is created with the container's first process");
      await systemdDriver().start(this.systemd, o.pid, { v2: this.mode === "v2", resources });
      try {
        for (const h of this.hierarchies) {
          makeDir(h.dir, [], () => {});
          if (h.controllers.includes("cpuset")) inheritCpuset(h.dir);
        }
      } catch (e) {
        await this.remove();
        throw e;
      }
      return;
    }
    const created: string[] = [];
    try {
      for (const h of this.hierarchies) {
        if (h.version === 2 && this.mode === "v2") {
          makeV2Path(h.dir, resources, created);
          continue;
        }
        makeDir(h.dir, created, (d) => {
          if (h.version === 2 && d !== h.dir && created.includes(d)) enableControllers(d);
        });
        // v1 cpuset: empty cpus/mems filled from the nearest ancestor that has them (tree.ts)
        if (h.controllers.includes("cpuset")) inheritCpuset(h.dir);
      }
    } catch (e) {
      await removeDirs(this.ownDirs(), created);
      throw e;
    }
    this.created = created;
  }

  // The cgroup.procs files a process joins (written by tsrun-init), in hierarchy order, v2 last. `sub`
  // (exec's --cgroup, as runc's SubCgroupPaths) puts it in cgroups below the container's: {"": path} in
  // every hierarchy, or {controller: path} per v1 controller (the hierarchies not named: the container's own
  // cgroup); a v2 tree takes only the "" path. "/" is the container's own cgroup; a path may not climb out.
  joinFiles(sub: Readonly<Record<string, string>> = {}): string[] {
    const shared = sub[""];
    const perController = Object.entries(sub).filter(([c]) => c !== "");
    const chosen = new Map<Hierarchy, string>();
    if (shared === undefined && this.mode !== "v2") {
      for (const [ctrl, p] of perController) {
        const h = this.v1.find((x) => x.controllers.includes(ctrl));
        if (!h) throw new Error(`unknown controller ${ctrl} in SubCgroupPaths`);
        chosen.set(h, p);
      }
    }
    const ordered = [...this.hierarchies].sort((a, b) => (a.version === 2 ? 1 : b.version === 2 ? -1 : 0));
    return ordered.map((h) => {
      const p = shared ?? chosen.get(h);
      if (p === undefined) return path.join(h.dir, "cgroup.procs");
      const target = path.join(h.dir, p);
      if (target !== h.dir && !target.startsWith(h.dir + "/")) throw new Error(`bad sub cgroup path: ${p}`);
      if (!fs.existsSync(target)) throw new Error(`--cgroup: ${target} does not exist`);
      return path.join(target, "cgroup.procs");
    });
  }

  // Removes what create made and nothing else (tree.ts removeDirs). With systemd: the unit is stopped (its
  // job waited for), then the container's own directories left behind are removed (runc's Destroy).
  async remove(warn: (m: string) => void = () => {}): Promise<void> {
    if (this.systemd) {
      const w = await systemdDriver().stop(this.systemd);
      if (w) warn(w);
      await removeDirs(this.ownDirs(), [...this.ownDirs()]);
      return;
    }
    await removeDirs(this.ownDirs(), this.created);
  }

  private ownDirs(): Set<string> {
    return new Set(this.hierarchies.map((h) => h.dir));
  }

  // ---------------------------------------------------------------------------------------------------
  // apply / update

  // linux.resources -> cgroup files. Each controller's settings go to the directory the layout gives it. A
  // setting the host cannot take (no such controller, no such file, a value the kernel refuses) is an error
  // naming the setting and the file; the only settings not written are those runc does not write either,
  // each named in a warning.
  apply(resources: LinuxResources | undefined, o: ApplyOptions): void {
    const r = this.prepare(resources ?? {}, o.warn);
    // runc warns and ignores kernel memory limits (the kernel no longer has them).
    if (r.memory?.kernel !== undefined || r.memory?.kernelTCP !== undefined) o.warn("Kernel memory settings are ignored and will be removed");
    for (const c of this.mode === "v2" ? controllers().applyV2 : controllers().apply) {
      if (!c.needed(r, o)) continue;
      const loc = this.locateFor(c);
      if (c.bpf && o.rootless) {
        // runc's rootless manager: the device controller is not expected to work there; its errors are ignored
        try {
          if (loc) c.apply(new Writer(loc.dir, loc.version, o.warn), r, o);
        } catch {
          // as runc: silently
        }
        continue;
      }
      if (!loc) throw new Error(`${c.setting}: ${c.missing ?? this.missingController(c.name, c.v2Name ?? c.name)}`);
      c.apply(new Writer(loc.dir, loc.version, o.warn), r, o);
    }
  }

  // The first controller `r` needs (device rules aside) that `full` has a directory for and this manager
  // has not (src/cgroups/rootless.ts).
  unplaced(r: LinuxResources, o: ApplyOptions, full: CgroupManager): string | undefined {
    const prepared = this.prepare(r, () => {});
    for (const c of controllers().apply) {
      if (c.bpf || !c.needed(prepared, o)) continue;
      if (this.locateFor(c) === undefined && full.locateFor(c) !== undefined) return c.v2Name && this.mode === "v2" ? c.v2Name : c.name;
    }
    return undefined;
  }

  // apply, and with systemd first the unit's properties (runc's systemd Set): what create and update use.
  async set(resources: LinuxResources | undefined, o: ApplyOptions): Promise<void> {
    if (this.systemd) {
      resources ??= {}; // (the default device rules are properties too)
      const r = this.prepare(resources, () => {}); // (warned about once, by apply below)
      const written = await systemdDriver().set(this.systemd, r, { v2: this.mode === "v2", warn: o.warn, devices: o.devices, skipDevices: o.skipDevices });
      // the cpu quota as systemd rounded it, so the file agrees with the unit
      const quota = written.cpu?.quota;
      if (resources.cpu && quota !== undefined && quota !== resources.cpu.quota) resources = { ...resources, cpu: { ...resources.cpu, quota } };
    }
    this.apply(resources, o);
  }

  // `update`: the same writes as apply (runc's Set); device rules are left alone with skipDevices.
  async update(resources: LinuxResources, o: ApplyOptions): Promise<void> {
    await this.set(resources, o);
  }

  // The resources as this layout takes them (settings refused or dropped before anything is written).
  protected abstract prepare(r: LinuxResources, warn: (m: string) => void): LinuxResources;

  // Where a controller lives: the v1 hierarchy that has it (by its v1, then its v2 name), else the v2
  // directory when the controller is enabled there (listed in its cgroup.controllers).
  locate(name: string, v2Name: string = name): Location | undefined {
    const h = this.v1Dir(name) ?? this.v1Dir(v2Name);
    if (h !== undefined) return { version: 1, dir: h };
    if (this.v2 === undefined) return undefined;
    try {
      if (fs.readFileSync(path.join(this.v2, "cgroup.controllers"), "utf8").split(/\s+/).includes(v2Name)) return { version: 2, dir: this.v2 };
    } catch {
      // the directory is gone or is not a cgroup
    }
    return undefined;
  }

  private locateFor(c: Controller): Location | undefined {
    if (!c.bpf) return this.locate(c.name, c.v2Name);
    const h = this.v1Dir(c.name);
    return h !== undefined ? { version: 1, dir: h } : this.bpfLocation();
  }

  // Where a BPF-enforced controller (devices) goes when no v1 hierarchy has it.
  protected bpfLocation(): Location | undefined {
    return undefined;
  }

  protected v1Dir(controller: string): string | undefined {
    return this.v1.find((h) => h.controllers.includes(controller))?.dir;
  }

  private missingController(c1: string, c2: string): string {
    const parts = [];
    if (this.v1.length > 0) parts.push(`the host mounts no v1 ${c1} hierarchy`);
    if (this.v2 !== undefined) parts.push(`${c2} is not in ${this.v2}/cgroup.controllers`);
    return `this container has no ${c1 === c2 ? c1 : `${c1}/${c2}`} cgroup (${parts.join(", and ")})`;
  }

  // ---------------------------------------------------------------------------------------------------
  // freeze / thaw

  // The v1 freezer hierarchy when there is one (as runc on v1 and hybrid hosts), else the v2 directory
  // when it has cgroup.freeze.
  freezer(): Location | undefined {
    const h = this.v1Dir("freezer");
    if (h !== undefined) return { version: 1, dir: h };
    if (this.v2 !== undefined && fs.existsSync(path.join(this.v2, "cgroup.freeze"))) return { version: 2, dir: this.v2 };
    return undefined;
  }

  private needFreezer(): Location {
    const f = this.freezer();
    if (!f) throw new Error("cannot toggle freezer: cgroups not configured for container (no v1 freezer hierarchy and no cgroup.freeze)");
    return f;
  }

  async freeze(): Promise<void> {
    await freezer.freeze(this.needFreezer());
  }

  async thaw(): Promise<void> {
    await freezer.thaw(this.needFreezer());
  }

  // Whether the freezer says frozen (v1: by itself, not merely because a parent is). No freezer: false.
  isFrozen(): boolean {
    const f = this.freezer();
    return f ? freezer.isFrozen(f) : false;
  }

  // ---------------------------------------------------------------------------------------------------
  // pids / kill

  // Every pid in the container's cgroups, nested cgroups included, sorted.
  pids(): number[] {
    const found = new Set<number>();
    for (const { dir } of this.hierarchies) {
      for (const file of procsFilesUnder(dir)) {
        for (const l of fs.readFileSync(file, "utf8").split("\n")) if (l) found.add(Number(l));
      }
      if (found.size > 0) break; // every hierarchy holds the same processes; one readable is enough
    }
    return [...found].sort((a, b) => a - b);
  }

  // A signal to every process. SIGKILL goes through the v2 cgroup.kill where the kernel has it (v2, and the
  // v2 tree of a hybrid host: kernel 5.14+), which reaches every process at once. Otherwise the cgroup is
  // frozen while the pids are read and signalled, so nothing forks in between (runc). Afterwards the
  // freezer is left as it was, except that a SIGKILL thaws: a frozen v1 task cannot die until thawed.
  // A failed cgroup.kill write is a CgroupKillError; what else fails is warned about.
  async kill(sig: number, warn: (msg: string) => void): Promise<void> {
    const v2 = this.v2;
    if (sig === 9 && v2 !== undefined && fs.existsSync(path.join(v2, "cgroup.kill"))) {
      try {
        fs.writeFileSync(path.join(v2, "cgroup.kill"), "1");
      } catch (e) {
        if (errnoCode(e) === "ENOENT") return; // the cgroup is gone: nothing left to kill
        throw new CgroupKillError(`write ${v2}/cgroup.kill: ${messageOf(e)}`);
      }
      if (this.isFrozen()) {
        try {
          await this.thaw();
        } catch (e) {
          warn(`kill --all: ${messageOf(e)}`);
        }
      }
      return;
    }
    const wasFrozen = this.isFrozen();
    let frozen = wasFrozen;
    if (!wasFrozen && this.freezer()) {
      try {
        await this.freeze();
        frozen = true;
      } catch (e) {
        warn(`kill --all: signalling without freezing: ${messageOf(e)}`);
      }
    }
    try {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, sig);
        } catch (e) {
          if (errnoCode(e) !== "ESRCH") warn(`kill ${pid}: ${messageOf(e)}`);
        }
      }
    } finally {
      if (frozen && (!wasFrozen || sig === 9)) {
        try {
          await this.thaw();
        } catch (e) {
          warn(`kill --all: ${messageOf(e)}`);
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // stats

  // runc's stats object (what `events --stats` prints under "data"), each controller reading its part.
  stats(): Stats {
    const s = emptyStats();
    for (const c of controllers().stats) c.stats?.(this.statsLocation(c), s);
    return s;
  }

  protected abstract statsLocation(c: Controller): Location | undefined;

  // The OOM kill count (memory's oom_kill); undefined without a memory controller.
  oomKillCount(): bigint | undefined {
    const loc = this.locate("memory");
    return loc ? controllers().oomKills(loc) : undefined;
  }
}

// v1 hierarchies only (no v2 tree): every controller in its own hierarchy; linux.resources.unified refused.
export class V1Manager extends CgroupManager {
  readonly mode: CgroupMode = "v1";

  constructor(dirs: Record<string, string>, created: readonly string[], systemd?: SystemdRecord) {
    super(dirs, created, systemd);
  }

  protected prepare(r: LinuxResources): LinuxResources {
    if (r.unified && Object.keys(r.unified).length > 0) throw new Error("linux.resources.unified: invalid configuration: cannot use unified on cgroup v1 (this host mounts v1 hierarchies)");
    return r;
  }

  // runc's fs: statistics from the v1 hierarchies (an existing directory); hugetlb from wherever its limits go.
  protected statsLocation(c: Controller): Location | undefined {
    if (c.statsWhereApplied) return this.locate(c.name, c.v2Name);
    const h = this.v1Dir(c.name);
    return h !== undefined && fs.existsSync(h) ? { version: 1, dir: h } : undefined;
  }
}

// v1 hierarchies plus a v2 tree: as v1, with the v2 directory used for what the hierarchies lack
// (CgroupManager.locate, freezer, kill).
export class HybridManager extends V1Manager {
  override readonly mode: CgroupMode = "hybrid";
}

// The unified tree only: runc's fs2.
export class V2Manager extends CgroupManager {
  readonly mode: CgroupMode = "v2";

  constructor(dirs: Record<string, string>, created: readonly string[], systemd?: SystemdRecord) {
    super(dirs, created, systemd);
  }

  // Settings runc leaves unwritten on a v2-only host (fs2 has no file for them): warned about and dropped.
  protected prepare(resources: LinuxResources, warn: (m: string) => void): LinuxResources {
    const out: LinuxResources = structuredClone(resources);
    const ignored: string[] = [];
    if (out.memory) {
      if (out.memory.useHierarchy === true) delete out.memory.useHierarchy; // v2 is always hierarchical
      if (out.memory.swappiness !== undefined) (ignored.push("memory.swappiness"), delete out.memory.swappiness);
      if (out.memory.disableOOMKiller !== undefined) (ignored.push("memory.disableOOMKiller"), delete out.memory.disableOOMKiller);
    }
    if (out.cpu) {
      if (out.cpu.realtimeRuntime !== undefined) (ignored.push("cpu.realtimeRuntime"), delete out.cpu.realtimeRuntime);
      if (out.cpu.realtimePeriod !== undefined) (ignored.push("cpu.realtimePeriod"), delete out.cpu.realtimePeriod);
    }
    if (out.blockIO) {
      if (out.blockIO.leafWeight !== undefined) (ignored.push("blockIO.leafWeight"), delete out.blockIO.leafWeight);
      if (out.blockIO.weightDevice?.some((d) => d.leafWeight !== undefined)) ignored.push("blockIO.weightDevice[].leafWeight");
    }
    if (out.network) (ignored.push("network"), delete out.network);
    for (const s of ignored) warn(`linux.resources.${s} has no cgroup v2 equivalent and is ignored (as runc does)`);
    return out;
  }

  // linux.resources.unified last, so it overrides what the controllers wrote.
  override apply(resources: LinuxResources | undefined, o: ApplyOptions): void {
    super.apply(resources, o);
    if (resources?.unified) controllers().applyUnified(new Writer(this.v2!, 2, o.warn), resources.unified);
  }

  // Device rules as a BPF program on the container's directory.
  protected override bpfLocation(): Location | undefined {
    return { version: 2, dir: this.v2! };
  }

  // runc's fs2: every statistic from the one directory.
  protected statsLocation(): Location | undefined {
    return { version: 2, dir: this.v2! };
  }
}
