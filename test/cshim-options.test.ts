// The tsrun shim's choice of cgroup driver when containerd passes no runc Options (the CRI passes them to
// io.containerd.runc.* runtimes only): a "slice:prefix:name" cgroupsPath on a systemd host means systemd.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { systemdCgroupsPath } from "../src/shim/containerd/service";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cshim-options-"));
after(() => {
  delete process.env.TSRUN_SYSTEMD_RUN_DIR;
  fs.rmSync(tmp, { recursive: true, force: true });
});

function bundle(cgroupsPath: unknown): string {
  const dir = fs.mkdtempSync(path.join(tmp, "b"));
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ linux: { cgroupsPath } }));
  return dir;
}

test("a systemd-form cgroupsPath selects the systemd driver on a systemd host only", () => {
  const cases: [unknown, boolean][] = [
    ["kubepods-besteffort-pod1234.slice:cri-containerd:abc", true],
    [":cri-containerd:abc", true],
    ["system.slice:docker:abc", true],
    ["/kubepods/besteffort/pod1234/abc", false],
    ["kubepods.slice/x:cri:abc", false],
    ["a:b", false],
    ["notaslice:p:n", false],
    [undefined, false],
    [42, false],
  ];
  process.env.TSRUN_SYSTEMD_RUN_DIR = path.join(tmp, "no-systemd");
  for (const [p] of cases) assert.equal(systemdCgroupsPath(bundle(p)), false, `${String(p)} without systemd`);
  fs.mkdirSync(path.join(tmp, "systemd"));
  process.env.TSRUN_SYSTEMD_RUN_DIR = path.join(tmp, "systemd");
  for (const [p, want] of cases) assert.equal(systemdCgroupsPath(bundle(p)), want, String(p));
  assert.equal(systemdCgroupsPath(path.join(tmp, "missing")), false);
});
