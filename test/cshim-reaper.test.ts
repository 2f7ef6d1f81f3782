// The containerd shim's reaper (src/shim/containerd/reaper.ts) in this test process: it becomes the child
// subreaper, reaps orphans re-parented to it, and never steals the status of a child libuv waits for
// (child_process), of a tracked pid, or of any child while a hold is taken.
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { after, before, test } from "node:test";
import { native } from "../src/native";
import { children, reaper } from "../src/shim/containerd/reaper";

before(() => reaper.start(100));
after(() => reaper.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gone = (pid: number) => !fs.existsSync(`/proc/${pid}`);
function ppid(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ")[1]);
}
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await sleep(20);
  }
  return check();
}
function state(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ")[0]!;
  } catch {
    return "gone";
  }
}
// a child that exits with `code` after `ms`, spawned by the addon (not libuv: nobody else reaps it)
function nativeChild(code: number, ms = 0): number {
  return native().spawn("/bin/sh", ["sh", "-c", `sleep ${ms / 1000}; exit ${code}`], [], [0, 1, 2]);
}

test("subreaper: an orphan is re-parented to this process and reaped once it exits", async () => {
  assert.equal(native().isChildSubreaper(), true);
  // the shell (libuv's child) prints its background child's pid and exits; the sleeper is orphaned
  const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const c = execFile("/bin/sh", ["-c", "sleep 0.4 & echo $!; exit 5"], (_e, stdout) => resolve({ code: c.exitCode, out: stdout }));
  });
  assert.equal(code, 5, "libuv's child kept its status (not stolen by the reaper)");
  const orphan = Number(out.trim());
  assert.equal(ppid(orphan), process.pid, "the orphan was re-parented to the subreaper");
  assert.ok(await until(() => gone(orphan), 3000), "the orphan was reaped after it exited");
  assert.ok(reaper.reaped >= 1);
});

test("a scan that runs before libuv has reaped its child leaves it to libuv", async () => {
  const c = execFile("/bin/sh", ["-c", "exit 6"]);
  const exited = new Promise<number | null>((resolve) => c.once("exit", (code) => resolve(code)));
  const pid = c.pid!;
  // the event loop held until the child is a zombie: libuv has not seen its SIGCHLD yet
  const deadline = Date.now() + 3000;
  while (state(pid) !== "Z" && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  assert.equal(state(pid), "Z");
  reaper.scan();
  assert.equal(state(pid), "Z", "not reaped by the scan");
  const code = await Promise.race([exited, sleep(3000).then(() => "never")]);
  assert.equal(code, 6, "libuv read its child's exit status");
});

test("a tracked pid is left to its own wait; an untracked one is reaped", async () => {
  const tracked = nativeChild(7);
  reaper.track(tracked);
  const loose = nativeChild(8);
  assert.ok(await until(() => gone(loose), 3000), "the untracked child was reaped");
  await sleep(300); // SIGCHLDs and timer scans have run
  assert.deepEqual(native().waitpid(tracked, false), { pid: tracked, code: 7, signal: 0 }, "the tracked child's status is still there");
  reaper.untrack(tracked);
});

test("nothing is reaped while a hold is taken; the scan runs when it is released", async () => {
  const release = reaper.hold();
  const pid = nativeChild(3);
  await sleep(400);
  assert.ok(children().includes(pid), "still this process's (zombie) child during the hold");
  release();
  assert.ok(await until(() => gone(pid), 3000), "reaped once released");
});
