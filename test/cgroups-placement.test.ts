// Placement without a container: layout detection (hidden mounts ignored), runc's cgroupsPath rules, and
// removal that takes only what a container created (never a sibling's cgroup under a shared parent).
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { detectLayout } from "../src/cgroups/layout";
import { CgroupManager } from "../src/cgroups/manager";
import { resolveCgroupPaths } from "../src/cgroups/paths";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-placement-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const HYBRID = [
  "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
  "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
  "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd",
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
].join("\n");
const OWN = "4:memory:/machine/m1\n2:cpu,cpuacct:/\n1:name=systemd:/\n0::/\n";

describe("layout", () => {
  test("hybrid: v1 hierarchies plus the v2 tree, our own cgroup per hierarchy", () => {
    const l = detectLayout(HYBRID, OWN, () => true);
    assert.equal(l.mode, "hybrid");
    assert.deepEqual(
      l.v1.map((h) => h.controllers.join(",")),
      ["cpu,cpuacct", "memory", "name=systemd"],
    );
    assert.equal(l.unified?.mountPoint, "/sys/fs/cgroup/unified");
    assert.equal(l.own.get("memory"), "/machine/m1");
  });

  test("a cgroup2 mounted over /sys/fs/cgroup hides the v1 mounts below it: the host reads as v2", () => {
    const text = `${HYBRID}\n91 31 0:38 / /sys/fs/cgroup rw,relatime - cgroup2 none rw`;
    const hidden = new Set(["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"]);
    const l = detectLayout(text, OWN, (m) => !hidden.has(m.mountPoint));
    assert.equal(l.mode, "v2");
    assert.deepEqual(l.v1, []);
    assert.equal(l.unified?.mountPoint, "/sys/fs/cgroup");
  });

  test("the visibility check on this host: every listed cgroup mount here is visible", () => {
    const l = detectLayout();
    assert.ok(l.v1.length > 0 || l.unified);
    for (const h of l.v1) assert.ok(fs.existsSync(h.mountPoint), h.mountPoint);
  });
});

describe("cgroupsPath (runc's rules)", () => {
  const layout = detectLayout(HYBRID, OWN, () => true);
  test("absolute from each hierarchy's root; relative and the default under our own cgroup", () => {
    assert.deepEqual(resolveCgroupPaths("/a/b", "c1", layout), {
      "cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/a/b",
      memory: "/sys/fs/cgroup/memory/a/b",
      "name=systemd": "/sys/fs/cgroup/systemd/a/b",
      "": "/sys/fs/cgroup/unified/a/b",
    });
    assert.equal(resolveCgroupPaths("x/y", "c1", layout).memory, "/sys/fs/cgroup/memory/machine/m1/x/y");
    assert.equal(resolveCgroupPaths(undefined, "c1", layout).memory, "/sys/fs/cgroup/memory/machine/m1/c1");
    assert.equal(resolveCgroupPaths("", "c1", layout)[""], "/sys/fs/cgroup/unified/c1");
  });
  test("systemd's slice:prefix:name is refused; .. never climbs out (cleaned as if rooted, as runc)", () => {
    assert.throws(() => resolveCgroupPaths("system.slice:docker:abc", "c1", layout), /systemd's slice:prefix:name form/);
    assert.equal(resolveCgroupPaths("../../etc", "c1", layout).memory, "/sys/fs/cgroup/memory/machine/m1/etc");
    assert.equal(resolveCgroupPaths("/a/../../b", "c1", layout).memory, "/sys/fs/cgroup/memory/b");
  });
});

describe("creation and removal", () => {
  test("removal takes the container's directories and empty created parents, never a sibling's", async () => {
    const root = path.join(tmp, "hier");
    fs.mkdirSync(root);
    const a = CgroupManager.fromRecord({ dirs: { memory: path.join(root, "shared/a") }, created: [] });
    assert.deepEqual(a.planned().created, [path.join(root, "shared"), path.join(root, "shared/a")]);
    await a.create();
    assert.deepEqual(a.record().created, [path.join(root, "shared"), path.join(root, "shared/a")]);
    const b = CgroupManager.fromRecord({ dirs: { memory: path.join(root, "shared/b") }, created: [] });
    await b.create();
    assert.deepEqual(b.record().created, [path.join(root, "shared/b")], "the shared parent is not b's");
    fs.mkdirSync(path.join(root, "shared/a/nested")); // made inside the container: goes with it
    await CgroupManager.fromRecord(a.record()).remove(); // as delete does, from the record alone
    assert.equal(fs.existsSync(path.join(root, "shared/a")), false);
    assert.equal(fs.existsSync(path.join(root, "shared/b")), true, "b's cgroup is untouched");
    assert.equal(fs.existsSync(path.join(root, "shared")), true, "the parent still holds b");
    await b.remove();
    assert.equal(fs.existsSync(path.join(root, "shared/b")), false);
    assert.equal(fs.existsSync(path.join(root, "shared")), true, "b did not create the parent");
    assert.equal(fs.existsSync(root), true);
  });

  test("locate: a v1 hierarchy first, else the v2 directory when cgroup.controllers lists it", () => {
    const v2 = path.join(tmp, "v2dir");
    fs.mkdirSync(v2);
    fs.writeFileSync(path.join(v2, "cgroup.controllers"), "hugetlb pids\n");
    const m = CgroupManager.fromRecord({ dirs: { "cpu,cpuacct": "/x/cpu", memory: "/x/mem", "": v2 }, created: [] });
    assert.equal(m.mode, "hybrid");
    assert.deepEqual(m.locate("cpuacct"), { version: 1, dir: "/x/cpu" });
    assert.deepEqual(m.locate("hugetlb"), { version: 2, dir: v2 });
    assert.deepEqual(m.locate("pids"), { version: 2, dir: v2 });
    assert.equal(m.locate("rdma"), undefined);
  });
});
