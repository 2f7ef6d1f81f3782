// config-linux.md#control-groups: cgroupsPath, cgroup ownership, and linux.resources (each controller's
// fields, read back from the container's cgroup files on the host, v1 or v2 names).
import * as fs from "fs";
import * as path from "path";
import type { Case, CaseContext, Level } from "../harness/case";
import { eq, expect, fail, firstLine, sameSet } from "../harness/check";
import type { Config, Resources } from "../harness/config";
import { LONG_RUNNING, addMount, linux, setNamespace, USERNS_MAP, withUserNamespace, needs } from "../harness/dsl";
import { cgroupHierarchies, existingCgroupDirs, processId, readOr } from "../harness/host";

// --- linux.resources ------------------------------------------------------------------------------------------

interface Expectation {
  file: string; // a cgroup file name, v1 or v2
  want: (value: string) => boolean;
  shows: string; // what `want` accepts, for messages
}

const is = (file: string, value: string): Expectation => ({ file, want: (v) => v === value, shows: value });
const hasLine = (file: string, line: string): Expectation => ({ file, want: (v) => v.split("\n").some((l) => l.trim() === line), shows: `a line "${line}"` });
const lineStarting = (file: string, prefix: string, part: string): Expectation => ({
  file,
  want: (v) => v.split("\n").some((l) => l.startsWith(prefix) && l.split(" ").includes(part)),
  shows: `a line "${prefix}… ${part} …"`,
});

interface ResourceCase {
  id: string;
  spec: string;
  level?: Level;
  title: string;
  since?: string;
  requires?: Case["requires"];
  patch: (r: Resources, ctx: CaseContext) => void;
  expect: (ctx: CaseContext) => Expectation[]; // any one of them, in the container's cgroups
}

// Whether a fresh cgroup on this host (the run's parent) offers any of the files.
function offered(ctx: CaseContext, files: string[]): boolean {
  return cgroupHierarchies().some((h) => files.some((f) => fs.existsSync(path.join(h.mountPoint, ctx.env.cgroupParent, f))));
}

// The expectation a fresh cgroup of this host (the run's parent) already meets, if any.
function defaultSatisfies(ctx: CaseContext, exps: Expectation[]): string | undefined {
  for (const h of cgroupHierarchies()) {
    for (const e of exps) {
      const f = path.join(h.mountPoint, ctx.env.cgroupParent, e.file);
      if (fs.existsSync(f) && e.want(readOr(f, "").trim())) return `${e.file} = ${e.shows}`;
    }
  }
  return undefined;
}

// Create with the resource set. A runtime that accepts it must have written it (some container cgroup has the
// file with the value); where this host offers none of the files, it cannot be applied and the runtime must
// refuse. Where the host offers it and the runtime refuses, the case is skipped: resources are optional.
function resourceCase(r: ResourceCase): Case {
  return {
    id: r.id,
    spec: r.spec,
    level: r.level ?? "MUST",
    title: r.title,
    ...(r.since ? { since: r.since } : {}),
    ...(r.requires ? { requires: r.requires } : {}),
    args: LONG_RUNNING,
    bundle: (c, ctx) => r.patch((linux(c).resources ??= {}), ctx),
    steps: [
      { op: "create", expect: "any" },
      {
        op: "check",
        what: "the cgroup files",
        check: (ctx) => {
          const exps = r.expect(ctx);
          const files = exps.map((e) => e.file);
          const create = ctx.results.find((x) => x.args[0] === "--root" && x.args[2] === "create");
          const available = offered(ctx, files);
          if (!create || create.status !== 0) {
            if (!available) return; // cannot be applied here: refusing is right
            ctx.skip(`refused (cgroup resources are optional): ${firstLine(create?.stderr ?? "")}`);
          }
          if (!available) fail(`accepted, but no cgroup on this host has ${files.join(" or ")}: it cannot have been applied (a runtime MUST generate an error)`);
          const asDefault = defaultSatisfies(ctx, exps);
          if (asDefault) ctx.skip(`a new cgroup here already has ${asDefault}: the setting cannot be told from the default`);
          const seen: string[] = [];
          for (const dir of existingCgroupDirs(ctx.cgroupsPath)) {
            for (const e of exps) {
              const f = path.join(dir, e.file);
              if (!fs.existsSync(f)) continue;
              const v = readOr(f, "").trim();
              if (e.want(v)) return;
              seen.push(`${f} = ${JSON.stringify(v.length > 120 ? `${v.slice(0, 117)}...` : v)}`);
            }
          }
          fail(seen.length > 0 ? `expected ${exps.map((e) => `${e.file}: ${e.shows}`).join(" or ")}; found ${seen.join("; ")}` : `none of ${files.join(", ")} exists in the container's cgroups`);
        },
      },
      { op: "delete", force: true, expect: "any" },
      { op: "nothingLeft" },
    ],
  };
}

const MiB = 1024 * 1024;

function blk(ctx: CaseContext): { major: number; minor: number; id: string } {
  const b = ctx.env.host.blockDevice;
  if (!b) return ctx.skip("no block device found in /sys/block");
  return { major: b.major, minor: b.minor, id: `${b.major}:${b.minor}` };
}

function hugepage(ctx: CaseContext): { size: string; bytes: number } {
  const size = ctx.env.host.hugepageSizes[0];
  if (!size) return ctx.skip("the kernel has no huge page sizes");
  const m = /^(\d+)(KB|MB|GB)$/.exec(size)!;
  const unit = m[2] === "KB" ? 1024 : m[2] === "MB" ? MiB : 1024 * MiB;
  return { size, bytes: Number(m[1]) * unit };
}

const throttle = (field: "throttleReadBpsDevice" | "throttleWriteBpsDevice" | "throttleReadIOPSDevice" | "throttleWriteIOPSDevice", v1: string, v2key: string): ResourceCase => ({
  id: `config.linux.resources.blockIO.${field}`,
  spec: "config-linux.md#block-io",
  title: `blockIO.${field} limits the device`,
  patch: (r, ctx) => {
    const b = blk(ctx);
    r.blockIO = { [field]: [{ major: b.major, minor: b.minor, rate: 1048576 }] };
  },
  expect: (ctx) => [hasLine(v1, `${blk(ctx).id} 1048576`), lineStarting("io.max", `${blk(ctx).id} `, `${v2key}=1048576`)],
});

const resourceCases: ResourceCase[] = [
  {
    id: "config.linux.resources.memory.limit",
    spec: "config-linux.md#memory",
    title: "memory.limit sets the memory limit",
    patch: (r) => {
      r.memory = { limit: 64 * MiB };
    },
    expect: () => [is("memory.limit_in_bytes", String(64 * MiB)), is("memory.max", String(64 * MiB))],
  },
  {
    id: "config.linux.resources.memory.reservation",
    spec: "config-linux.md#memory",
    title: "memory.reservation sets the soft limit",
    patch: (r) => {
      r.memory = { limit: 64 * MiB, reservation: 32 * MiB };
    },
    expect: () => [is("memory.soft_limit_in_bytes", String(32 * MiB)), is("memory.low", String(32 * MiB))],
  },
  {
    id: "config.linux.resources.memory.swap",
    spec: "config-linux.md#memory",
    title: "memory.swap sets the memory+swap limit",
    patch: (r) => {
      r.memory = { limit: 64 * MiB, swap: 128 * MiB };
    },
    expect: () => [is("memory.memsw.limit_in_bytes", String(128 * MiB)), is("memory.swap.max", String(64 * MiB))],
  },
  {
    id: "config.linux.resources.memory.kernel",
    spec: "config-linux.md#memory",
    level: "MAY",
    title: "memory.kernel (NOT RECOMMENDED) sets the kernel memory limit",
    patch: (r) => {
      r.memory = { kernel: 64 * MiB };
    },
    expect: () => [is("memory.kmem.limit_in_bytes", String(64 * MiB))],
  },
  {
    id: "config.linux.resources.memory.kernelTCP",
    spec: "config-linux.md#memory",
    level: "MAY",
    title: "memory.kernelTCP (NOT RECOMMENDED) sets the kernel TCP buffer limit",
    patch: (r) => {
      r.memory = { kernelTCP: 16 * MiB };
    },
    expect: () => [is("memory.kmem.tcp.limit_in_bytes", String(16 * MiB))],
  },
  {
    id: "config.linux.resources.memory.swappiness",
    spec: "config-linux.md#memory",
    title: "memory.swappiness sets the cgroup's swappiness",
    patch: (r) => {
      r.memory = { swappiness: 20 };
    },
    expect: () => [is("memory.swappiness", "20")],
  },
  {
    id: "config.linux.resources.memory.disableOOMKiller",
    spec: "config-linux.md#memory",
    title: "memory.disableOOMKiller true disables the OOM killer for the cgroup",
    patch: (r) => {
      r.memory = { limit: 64 * MiB, disableOOMKiller: true };
    },
    expect: () => [hasLine("memory.oom_control", "oom_kill_disable 1")],
  },
  {
    id: "config.linux.resources.memory.useHierarchy",
    spec: "config-linux.md#memory",
    title: "memory.useHierarchy true enables hierarchical accounting",
    patch: (r) => {
      r.memory = { useHierarchy: true };
    },
    expect: () => [is("memory.use_hierarchy", "1")],
  },
  {
    id: "config.linux.resources.cpu.shares",
    spec: "config-linux.md#cpu",
    title: "cpu.shares sets the relative CPU share (v2: a weight other than the default)",
    patch: (r) => {
      r.cpu = { shares: 512 };
    },
    expect: () => [is("cpu.shares", "512"), { file: "cpu.weight", want: (v) => v !== "100" && Number(v) >= 1 && Number(v) <= 10000, shows: "a weight other than 100" }],
  },
  {
    id: "config.linux.resources.cpu.quota",
    spec: "config-linux.md#cpu",
    title: "cpu.quota sets the CFS quota",
    patch: (r) => {
      r.cpu = { quota: 50000, period: 100000 };
    },
    expect: () => [is("cpu.cfs_quota_us", "50000"), is("cpu.max", "50000 100000")],
  },
  {
    id: "config.linux.resources.cpu.period",
    spec: "config-linux.md#cpu",
    title: "cpu.period sets the CFS period",
    patch: (r) => {
      r.cpu = { quota: 100000, period: 200000 };
    },
    expect: () => [is("cpu.cfs_period_us", "200000"), is("cpu.max", "100000 200000")],
  },
  {
    id: "config.linux.resources.cpu.burst",
    spec: "config-linux.md#cpu",
    title: "cpu.burst sets the CFS burst",
    since: "1.1.0",
    patch: (r) => {
      r.cpu = { quota: 50000, period: 100000, burst: 20000 };
    },
    expect: () => [is("cpu.cfs_burst_us", "20000"), is("cpu.max.burst", "20000")],
  },
  {
    id: "config.linux.resources.cpu.realtimeRuntime",
    spec: "config-linux.md#cpu",
    title: "cpu.realtimeRuntime sets the real-time runtime",
    patch: (r) => {
      r.cpu = { realtimeRuntime: 1000, realtimePeriod: 100000 };
    },
    expect: () => [is("cpu.rt_runtime_us", "1000")],
  },
  {
    id: "config.linux.resources.cpu.realtimePeriod",
    spec: "config-linux.md#cpu",
    title: "cpu.realtimePeriod sets the real-time period",
    patch: (r) => {
      r.cpu = { realtimePeriod: 200000 };
    },
    expect: () => [is("cpu.rt_period_us", "200000")],
  },
  {
    id: "config.linux.resources.cpu.cpus",
    spec: "config-linux.md#cpu",
    title: "cpu.cpus sets the cpuset's CPUs",
    patch: (r) => {
      r.cpu = { cpus: "0" };
    },
    expect: () => [is("cpuset.cpus", "0")],
  },
  {
    id: "config.linux.resources.cpu.mems",
    spec: "config-linux.md#cpu",
    title: "cpu.mems sets the cpuset's memory nodes",
    patch: (r) => {
      r.cpu = { mems: "0" };
    },
    expect: () => [is("cpuset.mems", "0")],
  },
  {
    id: "config.linux.resources.cpu.idle",
    spec: "config-linux.md#cpu",
    title: "cpu.idle 1 makes the cgroup SCHED_IDLE",
    since: "1.1.0",
    patch: (r) => {
      r.cpu = { idle: 1 };
    },
    expect: () => [is("cpu.idle", "1")],
  },
  {
    id: "config.linux.resources.blockIO.weight",
    spec: "config-linux.md#block-io",
    title: "blockIO.weight sets the default I/O weight",
    patch: (r) => {
      r.blockIO = { weight: 500 };
    },
    expect: () => [is("blkio.weight", "500"), is("blkio.bfq.weight", "500"), hasLine("io.bfq.weight", "default 500"), hasLine("io.weight", "default 500")],
  },
  {
    id: "config.linux.resources.blockIO.leafWeight",
    spec: "config-linux.md#block-io",
    title: "blockIO.leafWeight sets the weight against child cgroups",
    patch: (r) => {
      r.blockIO = { weight: 500, leafWeight: 300 };
    },
    expect: () => [is("blkio.leaf_weight", "300")],
  },
  {
    id: "config.linux.resources.blockIO.weightDevice",
    spec: "config-linux.md#block-io",
    title: "blockIO.weightDevice sets a device's weight",
    patch: (r, ctx) => {
      const b = blk(ctx);
      r.blockIO = { weightDevice: [{ major: b.major, minor: b.minor, weight: 300 }] };
    },
    expect: (ctx) => ["blkio.weight_device", "blkio.bfq.weight_device", "io.bfq.weight", "io.weight"].map((f) => hasLine(f, `${blk(ctx).id} 300`)),
  },
  throttle("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
  throttle("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
  throttle("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
  throttle("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"),
  {
    id: "config.linux.resources.hugepageLimits",
    spec: "config-linux.md#huge-page-limits",
    title: "hugepageLimits limit the huge pages of a size",
    patch: (r, ctx) => {
      const h = hugepage(ctx);
      r.hugepageLimits = [{ pageSize: h.size, limit: 4 * h.bytes }];
    },
    expect: (ctx) => {
      const h = hugepage(ctx);
      const v = String(4 * h.bytes);
      return [`hugetlb.${h.size}.limit_in_bytes`, `hugetlb.${h.size}.rsvd.limit_in_bytes`, `hugetlb.${h.size}.max`, `hugetlb.${h.size}.rsvd.max`].map((f) => is(f, v));
    },
  },
  {
    id: "config.linux.resources.network.classID",
    spec: "config-linux.md#network",
    title: "network.classID tags the cgroup's packets",
    patch: (r) => {
      r.network = { classID: 0x100001 };
    },
    expect: () => [is("net_cls.classid", String(0x100001))],
  },
  {
    id: "config.linux.resources.network.priorities",
    spec: "config-linux.md#network",
    title: "network.priorities set per-interface priorities",
    patch: (r) => {
      r.network = { priorities: [{ name: "lo", priority: 5 }] };
    },
    expect: () => [hasLine("net_prio.ifpriomap", "lo 5")],
  },
  {
    id: "config.linux.resources.pids",
    spec: "config-linux.md#pids",
    title: "pids.limit sets the maximum number of tasks",
    patch: (r) => {
      r.pids = { limit: 33 };
    },
    expect: () => [is("pids.max", "33")],
  },
  {
    id: "config.linux.resources.rdma",
    spec: "config-linux.md#rdma",
    title: "rdma limits a device's HCA handles and objects",
    patch: (r) => {
      r.rdma = { spec_dev0: { hcaHandles: 3, hcaObjects: 100 } };
    },
    expect: () => [lineStarting("rdma.max", "spec_dev0 ", "hca_handle=3")],
  },
];

// --- unified ------------------------------------------------------------------------------------------------

function v2Hierarchy() {
  return cgroupHierarchies().find((h) => h.version === 2);
}

function v2Value(ctx: CaseContext, file: string): string | undefined {
  const h = v2Hierarchy();
  if (!h) return undefined;
  const f = path.join(h.mountPoint, ctx.cgroupsPath, file);
  return fs.existsSync(f) ? readOr(f, "").trim() : undefined;
}

function unifiedCase(id: string, title: string, entries: (ctx: CaseContext) => Record<string, string>, check: (ctx: CaseContext) => void, extra: Partial<Case> = {}): Case {
  return {
    id,
    spec: "config-linux.md#unified",
    level: "MUST",
    title,
    since: "1.1.0",
    refusable: "linux.resources.unified is optional",
    args: LONG_RUNNING,
    requires: [needs.cgroupV2],
    bundle: (c, ctx) => {
      (linux(c).resources ??= {}).unified = entries(ctx);
    },
    steps: [{ op: "create" }, { op: "check", what: "the v2 cgroup files", check }, { op: "delete", force: true }, { op: "nothingLeft" }],
    ...extra,
  };
}

// A controller this host's cgroup v2 hierarchy does not offer, with a file of it.
function absentV2Controller(): { controller: string; file: string; value: string } | undefined {
  const have = v2Hierarchy()?.controllers ?? [];
  const candidates = [
    { controller: "pids", file: "pids.max", value: "10" },
    { controller: "memory", file: "memory.max", value: "100000000" },
    { controller: "cpu", file: "cpu.weight", value: "50" },
    { controller: "io", file: "io.weight", value: "default 50" },
  ];
  return candidates.find((c) => !have.includes(c.controller));
}

// --- cgroupsPath and ownership ----------------------------------------------------------------------------------

// The cgroup directories (of cgroupsPath) that hold the container process.
function dirsHolding(ctx: CaseContext, pid: number): string[] {
  return existingCgroupDirs(ctx.cgroupsPath).filter((d) => readOr(path.join(d, "cgroup.procs"), "").split("\n").includes(String(pid)));
}

// A user namespace (0 -> 100000) and the cgroup file system mounted as asked.
function ownershipBundle(opts: { cgroupns: boolean; readOnly: boolean }): (c: Config) => void {
  return (c) => {
    withUserNamespace(c);
    if (opts.cgroupns) setNamespace(c, "cgroup");
    c.mounts = (c.mounts ?? []).filter((m) => m.destination !== "/sys/fs/cgroup");
    addMount(c, { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", ...(opts.readOnly ? ["ro"] : ["rw"])] });
  };
}

function owners(dir: string): { path: string; uid: number }[] {
  return [dir, ...fs.readdirSync(dir).map((f) => path.join(dir, f))].map((p) => ({ path: p, uid: fs.statSync(p).uid }));
}

function usesV1(ctx: CaseContext): boolean {
  const v1 = cgroupHierarchies().filter((h) => h.version === 1);
  return v1.some((h) => fs.existsSync(path.join(h.mountPoint, ctx.cgroupsPath)));
}

function unchangedOwnership(ctx: CaseContext): void {
  for (const d of existingCgroupDirs(ctx.cgroupsPath)) {
    for (const o of owners(d)) eq(o.uid, 0, `owner of ${o.path}`);
  }
}

function ownershipCase(id: string, title: string, opts: { cgroupns: boolean; readOnly: boolean }, check: (ctx: CaseContext) => void): Case {
  return {
    id,
    spec: "config-linux.md#cgroup-ownership",
    level: "SHOULD",
    title,
    args: LONG_RUNNING,
    requires: [needs.userNamespaces],
    bundle: ownershipBundle(opts),
    steps: [{ op: "create" }, { op: "check", what: "ownership of the container's cgroup", check }, { op: "delete", force: true }, { op: "nothingLeft" }],
  };
}

function delegateFiles(): string[] {
  const text = readOr("/sys/kernel/cgroup/delegate", "");
  const listed = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return listed.length > 0 ? listed : ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"];
}

export const linuxCgroups: Case[] = [
  {
    id: "config.linux.cgroupsPath.absolute",
    spec: "config-linux.md#cgroups-path",
    level: "MUST",
    title: "an absolute cgroupsPath is relative to the cgroup mount point: the process is in <mount>/<cgroupsPath>",
    args: LONG_RUNNING,
    steps: [
      { op: "create" },
      {
        op: "check",
        what: "the container's cgroup",
        check: (ctx) => {
          const pid = ctx.pid!.pid;
          const holding = dirsHolding(ctx, pid);
          expect(holding.length > 0, `no ${ctx.cgroupsPath} directory in any hierarchy holds the container process ${pid}`);
          const lines = readOr(`/proc/${pid}/cgroup`, "").split("\n").filter((l) => l !== "");
          expect(lines.some((l) => l.endsWith(`:${ctx.cgroupsPath}`)), `/proc/${pid}/cgroup shows no ${ctx.cgroupsPath}: ${lines.join("; ")}`);
        },
      },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "config.linux.cgroupsPath.consistent",
    spec: "config-linux.md#cgroups-path",
    level: "MUST",
    title: "the same cgroupsPath attaches to the same place every time",
    args: LONG_RUNNING,
    steps: [
      { op: "create" },
      {
        op: "check",
        what: "a second container with the same cgroupsPath",
        check: async (ctx) => {
          const first = dirsHolding(ctx, ctx.pid!.pid);
          const del = await ctx.invoke(["delete", "--force", ctx.id]);
          if (del.status !== 0) fail(`delete --force: ${firstLine(del.stderr)}`);
          const second = `${ctx.id}b`;
          const pidFile = path.join(ctx.dir, "pid2");
          ctx.addCleanup(async () => {
            await ctx.invoke(["delete", "--force", second]);
          });
          const r = await ctx.invoke(["create", "--bundle", ctx.bundle, "--pid-file", pidFile, second], { outputName: "second" });
          if (r.status !== 0) fail(`the second create failed: ${firstLine(r.stderr)}`);
          const pid2 = Number(readOr(pidFile, "0").trim());
          sameSet(dirsHolding(ctx, pid2), first, "cgroup directories of the second container");
          const p = processId(pid2);
          if (p) ctx.pid = p;
          await ctx.invoke(["delete", "--force", second]);
        },
      },
      { op: "nothingLeft" },
    ],
  },
  ownershipCase("config.linux.cgroup-ownership.v1", "with cgroup v1, the container's cgroups keep their owner", { cgroupns: true, readOnly: false }, (ctx) => {
    if (!usesV1(ctx)) ctx.skip("the runtime placed the container in cgroup v2 only");
    unchangedOwnership(ctx);
  }),
  ownershipCase("config.linux.cgroup-ownership.no-cgroupns", "without a new cgroup namespace, the container's cgroups keep their owner", { cgroupns: false, readOnly: false }, unchangedOwnership),
  ownershipCase("config.linux.cgroup-ownership.read-only", "with the cgroup file system mounted read-only, the container's cgroups keep their owner", { cgroupns: true, readOnly: true }, unchangedOwnership),
  ownershipCase("config.linux.cgroup-ownership.delegate", "cgroup v2, a new cgroup namespace, a read-write mount: the cgroup and its delegatable files belong to the container's root, nothing else", { cgroupns: true, readOnly: false }, (ctx) => {
    if (usesV1(ctx)) ctx.skip("the runtime uses cgroup v1 here (ownership must not change: see config.linux.cgroup-ownership.v1)");
    const h = v2Hierarchy()!;
    const dir = path.join(h.mountPoint, ctx.cgroupsPath);
    const delegated = new Set(delegateFiles());
    for (const o of owners(dir)) {
      const name = path.basename(o.path);
      const want = o.path === dir || delegated.has(name) ? USERNS_MAP.hostID : 0;
      eq(o.uid, want, `owner of ${o.path}`);
    }
  }),
  ...resourceCases.map(resourceCase),
  {
    id: "config.linux.resources.memory.checkBeforeUpdate",
    spec: "config-linux.md#memory",
    level: "MUST",
    title: "checkBeforeUpdate: an update to a limit below the current usage is rejected",
    since: "1.1.0",
    refusable: "cgroup resources are optional",
    args: LONG_RUNNING,
    bundle: (c) => {
      (linux(c).resources ??= {}).memory = { limit: 256 * MiB, checkBeforeUpdate: true };
    },
    steps: [
      { op: "create" },
      { op: "start" },
      {
        op: "check",
        what: "update --memory",
        check: async (ctx) => {
          const raise = await ctx.invoke(["update", "--memory", String(300 * MiB), ctx.id]);
          if (raise.status !== 0) ctx.skip(`the runtime cannot update a memory limit (update --memory): ${firstLine(raise.stderr)}`);
          const lower = await ctx.invoke(["update", "--memory", "4096", ctx.id]);
          expect(lower.status !== 0, "update to 4096 bytes (below the usage) succeeded");
          const limit = existingCgroupDirs(ctx.cgroupsPath)
            .flatMap((d) => ["memory.limit_in_bytes", "memory.max"].map((f) => path.join(d, f)))
            .filter((f) => fs.existsSync(f))
            .map((f) => readOr(f, "").trim());
          expect(limit.includes(String(300 * MiB)), `the limit is not the last accepted one (${300 * MiB}): ${limit.join(", ")}`);
        },
      },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  unifiedCase(
    "config.linux.resources.unified.write",
    "unified entries are written to the cgroup v2 files as given (cgroup.max.descendants)",
    () => ({ "cgroup.max.descendants": "7" }),
    (ctx) => eq(v2Value(ctx, "cgroup.max.descendants"), "7", "cgroup.max.descendants"),
  ),
  unifiedCase(
    "config.linux.resources.unified.controller",
    "a unified entry of a controller enables that controller for the cgroup (hugetlb)",
    (ctx) => ({ [`hugetlb.${ctx.env.host.hugepageSizes[0] ?? "2MB"}.max`]: String(4 * 2 * MiB) }),
    (ctx) => eq(v2Value(ctx, `hugetlb.${ctx.env.host.hugepageSizes[0] ?? "2MB"}.max`), String(4 * 2 * MiB), "hugetlb limit"),
    {
      requires: [
        { why: "no cgroup v2 hierarchy with hugetlb on this host", met: (e) => e.host.hugetlbV2 || (e.host.cgroupV2Only && (v2Hierarchy()?.controllers ?? []).includes("hugetlb")) },
        { why: "the kernel has no 2MB huge pages", met: (e) => e.host.hugepageSizes[0] === "2MB" },
      ],
    },
  ),
  {
    id: "config.linux.resources.unified.missing-controller",
    spec: "config-linux.md#unified",
    level: "MUST",
    title: "a unified entry of a controller cgroup v2 does not offer here is an error",
    since: "1.1.0",
    args: LONG_RUNNING,
    requires: [
      needs.cgroupV2,
      { why: "cgroup v2 offers every candidate controller here", met: () => absentV2Controller() !== undefined },
    ],
    bundle: (c) => {
      const a = absentV2Controller()!;
      (linux(c).resources ??= {}).unified = { [a.file]: a.value };
    },
    steps: [{ op: "create", expect: "error" }],
  },
];

