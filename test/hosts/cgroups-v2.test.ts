// Pure cgroup v2 under systemd with every controller (the systemd test host, `npm run test:hosts`), through
// the cgroupfs driver as runc's fs2: the limits of every controller read back from the container's cgroup
// files and from `events --stats`, changed by `update`; the root and each ancestor get the controllers
// enabled; an unset or relative cgroupsPath lands under the parent of tsrun's own cgroup (a systemd unit's,
// which holds processes). Skipped unless TSRUN_GUEST=1 (set by the guest runner only). Kept small: node is
// ~25x slower in the guest.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { CGROUP_PARENT, cleanup, makeBundle, ok, tsrun } from "../helpers";

const skip = process.env.TSRUN_GUEST === "1" ? false : "runs only in the systemd test host (npm run test:hosts)";
after(cleanup);

const V2 = "/sys/fs/cgroup";
const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), "utf8").trim();
const words = (dir: string, f: string) => read(dir, f).split(/\s+/).filter(Boolean);
const MiB = 1 << 20;

// A real block device for io.max ("MAJ:MIN" of the first disk that is not a loop, ram or zram device).
function disk(): string | undefined {
  for (const name of fs.existsSync("/sys/block") ? fs.readdirSync("/sys/block").sort() : []) {
    if (/^(loop|ram|zram|sr)/.test(name)) continue;
    const dev = fs.readFileSync(`/sys/block/${name}/dev`, "utf8").trim();
    if (/^\d+:\d+$/.test(dev)) return dev;
  }
  return undefined;
}

describe("pure cgroup v2 under systemd, cgroupfs driver (runc's fs2)", { skip }, () => {
  test("every controller's limits in the container's files and in events --stats; update changes them; ancestors enabled", () => {
    const dev = disk();
    const hugetlb = fs.existsSync("/sys/kernel/mm/hugepages/hugepages-2048kB");
    const b = makeBundle(["sleep", "120"], (s) => {
      s.linux!.resources = {
        ...s.linux!.resources,
        memory: { limit: 64 * MiB, swap: 128 * MiB, reservation: 16 * MiB },
        cpu: { shares: 512, quota: 50000, period: 100000, burst: 10000, idle: 0, cpus: "0", mems: "0" },
        blockIO: { weight: 500, ...(dev ? { throttleReadBpsDevice: [{ major: Number(dev.split(":")[0]), minor: Number(dev.split(":")[1]), rate: MiB }] } : {}) },
        pids: { limit: 64 },
        ...(hugetlb ? { hugepageLimits: [{ pageSize: "2MB", limit: 4 * MiB }] } : {}),
        unified: { "memory.high": String(48 * MiB) },
      };
    });
    ok(tsrun(["run", "--detach", "--bundle", b.dir, b.id]));
    const dir = `${V2}/${CGROUP_PARENT}/${b.id}`;
    // CreateCgroupPath: the root and the new parent pass every controller down
    for (const d of [V2, `${V2}/${CGROUP_PARENT}`]) for (const c of ["cpuset", "cpu", "io", "memory", "pids", "hugetlb"]) assert.ok(words(d, "cgroup.subtree_control").includes(c), `${c} not enabled in ${d}`);
    assert.equal(read(dir, "memory.max"), String(64 * MiB));
    assert.equal(read(dir, "memory.swap.max"), String(64 * MiB), "swap alone: memory+swap minus memory");
    assert.equal(read(dir, "memory.low"), String(16 * MiB));
    assert.equal(read(dir, "memory.high"), String(48 * MiB), "unified");
    assert.equal(read(dir, "cpu.weight"), "59");
    assert.equal(read(dir, "cpu.max"), "50000 100000");
    assert.equal(read(dir, "cpu.max.burst"), "10000");
    assert.equal(read(dir, "cpu.idle"), "0");
    assert.equal(read(dir, "cpuset.cpus"), "0");
    assert.equal(read(dir, "cpuset.mems"), "0");
    assert.equal(read(dir, "pids.max"), "64");
    if (fs.existsSync(`${dir}/io.bfq.weight`)) assert.match(read(dir, "io.bfq.weight"), /^default 500\b/);
    else assert.match(read(dir, "io.weight"), /^default 4950$/m);
    if (dev) assert.match(read(dir, "io.max"), new RegExp(`^${dev} rbps=${MiB} wbps=max riops=max wiops=max`, "m"));
    if (hugetlb) assert.equal(read(dir, "hugetlb.2MB.max"), String(4 * MiB));

    type S = { data: { memory: { usage: { limit: number }; swap: { limit: number }; psi?: unknown }; cpu: { usage: { total: number }; psi?: unknown }; pids: { current: number; limit: number }; blkio: { psi?: unknown }; hugetlb: Record<string, unknown> } };
    const s = (JSON.parse(ok(tsrun(["events", "--stats", b.id])).stdout) as S).data;
    assert.equal(s.memory.usage.limit, 64 * MiB);
    assert.equal(s.memory.swap.limit, 128 * MiB, "memory+swap, as v1 reports it");
    assert.equal(s.pids.limit, 64);
    assert.ok(s.pids.current >= 1);
    assert.ok(s.cpu.usage.total > 0);
    for (const [f, v] of [["cpu.pressure", s.cpu.psi], ["memory.pressure", s.memory.psi], ["io.pressure", s.blkio.psi]] as const) if (fs.existsSync(`${dir}/${f}`)) assert.ok(v !== undefined, `PSI from ${f}`);
    if (hugetlb) assert.ok(s.hugetlb["2MB"] !== undefined);

    ok(tsrun(["update", "--memory", "128m", "--memory-swap", "256m", "--memory-reservation", "32m", "--cpu-quota", "20000", "--cpu-share", "1024", "--cpuset-cpus", "0", "--pids-limit", "32", "--blkio-weight", "100", b.id]));
    assert.equal(read(dir, "memory.max"), String(128 * MiB));
    assert.equal(read(dir, "memory.swap.max"), String(128 * MiB));
    assert.equal(read(dir, "memory.low"), String(32 * MiB));
    assert.equal(read(dir, "cpu.max"), "20000 100000");
    assert.equal(read(dir, "cpu.weight"), "100");
    assert.equal(read(dir, "pids.max"), "32");
    if (!fs.existsSync(`${dir}/io.bfq.weight`)) assert.match(read(dir, "io.weight"), /^default 910$/m);
    ok(tsrun(["delete", "--force", b.id]));
    assert.equal(fs.existsSync(dir), false);
  });

  test("an unset and a relative cgroupsPath land under the parent of tsrun's own cgroup (runc's defaultDirPath)", () => {
    const own = /^0::(.*)$/m.exec(fs.readFileSync("/proc/self/cgroup", "utf8"))![1]!;
    const parent = path.posix.dirname(own);
    const limits = (s: Parameters<NonNullable<Parameters<typeof makeBundle>[1]>>[0]) => {
      s.linux!.resources = { ...s.linux!.resources, memory: { limit: 32 * MiB }, cpu: { quota: 10000 } };
    };
    const unset = makeBundle(["sleep", "60"], (s) => (limits(s), delete s.linux!.cgroupsPath));
    ok(tsrun(["create", "--bundle", unset.dir, unset.id]));
    const u = path.join(V2, parent, unset.id);
    assert.equal(read(u, "memory.max"), String(32 * MiB));
    assert.equal(read(u, "cpu.max"), "10000 100000");
    assert.equal(fs.existsSync(path.join(V2, own, unset.id)), false, "not under tsrun's own cgroup");
    const rel = makeBundle(["sleep", "60"], (s) => (limits(s), (s.linux!.cgroupsPath = `${CGROUP_PARENT}-rel/${s.linux!.cgroupsPath!.split("/").pop()}`)));
    ok(tsrun(["create", "--bundle", rel.dir, rel.id]));
    const r = path.join(V2, parent, `${CGROUP_PARENT}-rel`, rel.id);
    assert.equal(read(r, "memory.max"), String(32 * MiB));
    ok(tsrun(["delete", "--force", unset.id]));
    ok(tsrun(["delete", "--force", rel.id]));
    assert.equal(fs.existsSync(u), false);
    assert.equal(fs.existsSync(path.dirname(r)), false, "the created ancestor goes too");
  });
});
