// containerd-shim-tsrun-v2's server (`serve`) driven over ttrpc as containerd drives it, without containerd:
// a fake events service at TTRPC_ADDRESS collects what the shim publishes. Covers the subreaper (orphans of
// a container and of an exec re-parented to the shim and reaped, exit statuses kept until Delete), TaskOOM
// (event-driven: v1 eventfd, v2 memory.events watched),
// Stats (cgroup v1 Metrics on this hybrid host) and the binary:// and file:// log URIs.
import * as assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { create, type DescMessage, fromBinary, type MessageInitShape, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import { TaskOOMSchema } from "../src/shim/containerd/gen/events/task_pb";
import { MetricsSchema } from "../src/shim/containerd/gen/cgroups/v1/metrics_pb";
import * as t from "../src/shim/containerd/gen/runtime/task/v2/shim_pb";
import { ForwardRequestSchema } from "../src/shim/containerd/gen/services/ttrpc/events/v1/events_pb";
import { Status } from "../src/shim/containerd/gen/types/task/task_pb";
import { memoryCgroupOf, watchV2 } from "../src/shim/containerd/oom";
import { Client, Server } from "../src/shim/containerd/ttrpc";
import type { Spec } from "../src/spec/schema";
import { cleanup, makeBundle, REPO, tsrun, work } from "./helpers";

const NS = "tsrun-test";
let shim: ChildProcess | undefined;
let client: Client | undefined;
let events: Server | undefined;
let shimRoot = "";
let shimLog = "";
const published: { topic: string; typeUrl: string; value: Uint8Array }[] = [];

before(async () => {
  const dir = work();
  const eventsSock = path.join(dir, "events.sock");
  events = new Server(
    new Map([
      [
        "containerd.services.events.ttrpc.v1.Events/Forward",
        async (p: Uint8Array) => {
          const env = fromBinary(ForwardRequestSchema, p).envelope;
          published.push({ topic: env?.topic ?? "", typeUrl: env?.event?.typeUrl ?? "", value: env?.event?.value ?? new Uint8Array() });
          return toBinary(EmptySchema, create(EmptySchema));
        },
      ],
    ]),
  );
  await events.listen(eventsSock);
  shimRoot = path.join(dir, "shim-root");
  shimLog = path.join(dir, "shim.log");
  const sock = path.join(dir, "shim.sock");
  const log = fs.openSync(shimLog, "a");
  shim = spawn(process.execPath, [path.join(REPO, "dist", "src", "shim", "containerd", "main.js"), "-namespace", NS, "-address", path.join(dir, "containerd.sock"), "-id", "t", "-socket", sock, "serve"], {
    cwd: dir,
    env: { ...process.env, TTRPC_ADDRESS: eventsSock, TSRUN_SHIM_ROOT: shimRoot },
    stdio: ["ignore", "pipe", log],
  });
  fs.closeSync(log);
  const line = await new Promise<string>((resolve) => {
    let out = "";
    shim!.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out);
    });
    shim!.once("exit", (code) => resolve(`exit ${code}`));
  });
  assert.equal(line, "ready\n", fs.readFileSync(shimLog, "utf8"));
  client = await Client.connect(`unix://${sock}`);
});

after(async () => {
  client?.close();
  if (shim && shim.exitCode === null) {
    const gone = new Promise((r) => shim!.once("exit", r));
    shim.kill("SIGKILL");
    await gone;
  }
  events?.close();
  const root = path.join(shimRoot, NS);
  for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) tsrun(["delete", "--force", id], { root });
  cleanup();
});

async function rpc<I extends DescMessage, O extends DescMessage>(method: string, inS: I, init: MessageInitShape<I>, outS: O): Promise<MessageShape<O>> {
  return fromBinary(outS, await client!.call("containerd.task.v2.Task", method, toBinary(inS, create(inS, init))));
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await sleep(25);
  }
  return check();
}
function stat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ");
    return { state: f[0]!, ppid: Number(f[1]) };
  } catch {
    return undefined;
  }
}
// the shim's children that are zombies
function shimZombies(): number[] {
  const out: number[] = [];
  for (const task of fs.readdirSync(`/proc/${shim!.pid}/task`)) {
    for (const p of fs.readFileSync(`/proc/${shim!.pid}/task/${task}/children`, "utf8").split(" ")) if (p.trim() && stat(Number(p))?.state === "Z") out.push(Number(p));
  }
  return out;
}
function eventfds(): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${shim!.pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${shim!.pid}/fd/${fd}`) === "anon_inode:[eventfd]") n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}
const noPidNs = (s: Spec) => {
  s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "pid");
};
// orphans that are still there are the shim's (re-parented to the subreaper); at least one is checked
function assertReparented(orphans: number[]): void {
  const alive = orphans.map(stat).filter((s) => s !== undefined && s.state !== "Z");
  assert.ok(alive.length > 0, "an orphan is still running (they live 0.5 s)");
  for (const s of alive) assert.equal(s!.ppid, shim!.pid, "an orphan was re-parented to the shim");
}

test("subreaper: the init's orphans are re-parented to the shim and reaped; the init's status is kept until Delete", async () => {
  const b = makeBundle(["multi", "fork-orphans", "2", "--", "exit", "3"], noPidNs);
  const out = path.join(work(), `${b.id}.out`);
  await rpc("Create", t.CreateTaskRequestSchema, { id: b.id, bundle: b.dir, stdout: out, stderr: out }, t.CreateTaskResponseSchema);
  await rpc("Start", t.StartRequestSchema, { id: b.id }, t.StartResponseSchema);
  const w = await rpc("Wait", t.WaitRequestSchema, { id: b.id }, t.WaitResponseSchema);
  assert.equal(w.exitStatus, 3);
  const orphans = (JSON.parse(fs.readFileSync(out, "utf8").split("\n")[0]!) as { orphans: number[] }).orphans;
  assert.equal(orphans.length, 2);
  assertReparented(orphans);
  assert.ok(await until(() => orphans.every((p) => stat(p) === undefined), 5000), `the orphans were reaped: ${JSON.stringify(orphans.map(stat))}`);
  assert.deepEqual(shimZombies(), []);
  const st = await rpc("State", t.StateRequestSchema, { id: b.id }, t.StateResponseSchema);
  assert.deepEqual([st.status, st.exitStatus], [Status.STOPPED, 3]);
  const d = await rpc("Delete", t.DeleteRequestSchema, { id: b.id }, t.DeleteResponseSchema);
  assert.equal(d.exitStatus, 3);
});

test("subreaper: an exec'd process that daemonizes: its status is kept, its orphan reaped; Stats are cgroup v1 Metrics here", async () => {
  const b = makeBundle(["sleep", "30"], noPidNs);
  await rpc("Create", t.CreateTaskRequestSchema, { id: b.id, bundle: b.dir }, t.CreateTaskResponseSchema);
  try {
    await rpc("Start", t.StartRequestSchema, { id: b.id }, t.StartResponseSchema);
    const out = path.join(work(), `${b.id}.exec.out`);
    const spec = { ...b.spec.process!, args: ["/probe", "multi", "fork-orphans", "1", "--", "exit", "4"] };
    await rpc("Exec", t.ExecProcessRequestSchema, { id: b.id, execId: "e1", stdout: out, spec: { typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process", value: Buffer.from(JSON.stringify(spec)) } }, EmptySchema);
    await rpc("Start", t.StartRequestSchema, { id: b.id, execId: "e1" }, t.StartResponseSchema);
    const w = await rpc("Wait", t.WaitRequestSchema, { id: b.id, execId: "e1" }, t.WaitResponseSchema);
    assert.equal(w.exitStatus, 4);
    const orphans = (JSON.parse(fs.readFileSync(out, "utf8").split("\n")[0]!) as { orphans: number[] }).orphans;
    assertReparented(orphans);
    assert.ok(await until(() => orphans.every((p) => stat(p) === undefined), 5000), "the exec's orphan was reaped");
    assert.deepEqual(shimZombies(), []);
    const st = await rpc("State", t.StateRequestSchema, { id: b.id, execId: "e1" }, t.StateResponseSchema);
    assert.deepEqual([st.status, st.exitStatus], [Status.STOPPED, 4]);

    const stats = await rpc("Stats", t.StatsRequestSchema, { id: b.id }, t.StatsResponseSchema);
    assert.equal(stats.stats?.typeUrl, "io.containerd.cgroups.v1.Metrics");
    const m = fromBinary(MetricsSchema, stats.stats!.value);
    assert.ok((m.memory?.usage?.usage ?? 0n) > 0n, "memory usage");
    assert.ok((m.pids?.current ?? 0n) >= 1n, "pids");
    assert.ok((m.cpu?.usage?.total ?? 0n) > 0n, "cpu usage");

    assert.equal((await rpc("Delete", t.DeleteRequestSchema, { id: b.id, execId: "e1" }, t.DeleteResponseSchema)).exitStatus, 4);
  } finally {
    await rpc("Kill", t.KillRequestSchema, { id: b.id, signal: 9 }, EmptySchema).catch(() => {});
    await rpc("Wait", t.WaitRequestSchema, { id: b.id }, t.WaitResponseSchema).catch(() => {});
    await rpc("Delete", t.DeleteRequestSchema, { id: b.id }, t.DeleteResponseSchema).catch(() => {});
  }
});

test("TaskOOM: a container that allocates past its memory limit is OOM-killed and /tasks/oom is published", async () => {
  const b = makeBundle(["hog", "256"], (s) => {
    s.linux!.resources = { ...s.linux!.resources, memory: { limit: 16 << 20 } };
  });
  await rpc("Create", t.CreateTaskRequestSchema, { id: b.id, bundle: b.dir }, t.CreateTaskResponseSchema);
  try {
    await rpc("Start", t.StartRequestSchema, { id: b.id }, t.StartResponseSchema);
    const w = await rpc("Wait", t.WaitRequestSchema, { id: b.id }, t.WaitResponseSchema);
    assert.equal(w.exitStatus, 137, "killed by the OOM killer");
    const isOom = (e: (typeof published)[number]) => e.topic === "/tasks/oom" && fromBinary(TaskOOMSchema, e.value).containerId === b.id;
    assert.ok(await until(() => published.some(isOom), 3000), `TaskOOM published: ${JSON.stringify(published.map((e) => e.topic))}`);
    assert.equal(published.find(isOom)!.typeUrl, "containerd.events.TaskOOM");
  } finally {
    await rpc("Delete", t.DeleteRequestSchema, { id: b.id }, t.DeleteResponseSchema).catch(() => {});
  }
});

test("no TaskOOM for a container that exits normally", async () => {
  const b = makeBundle(["hog", "4"], (s) => {
    s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 << 20 } };
  });
  const base = eventfds(); // (libuv's own)
  await rpc("Create", t.CreateTaskRequestSchema, { id: b.id, bundle: b.dir }, t.CreateTaskResponseSchema);
  await rpc("Start", t.StartRequestSchema, { id: b.id }, t.StartResponseSchema);
  assert.equal((await rpc("Wait", t.WaitRequestSchema, { id: b.id }, t.WaitResponseSchema)).exitStatus, 0);
  await sleep(300);
  assert.equal(eventfds(), base + 1, "the container's OOM eventfd (cgroup v1)");
  await rpc("Delete", t.DeleteRequestSchema, { id: b.id }, t.DeleteResponseSchema);
  assert.ok(!published.some((e) => e.topic === "/tasks/oom" && fromBinary(TaskOOMSchema, e.value).containerId === b.id));
  assert.ok(await until(() => eventfds() === base, 2000), "the OOM eventfd is closed at Delete");
});

test("OOM on cgroup v2: one notification each time memory.events' oom_kill grows (a fake cgroup directory)", async () => {
  const dir = path.join(work(), "fake-v2");
  fs.mkdirSync(dir);
  const file = path.join(dir, "memory.events");
  fs.writeFileSync(file, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
  let n = 0;
  const stop = watchV2(dir, () => n++);
  try {
    fs.writeFileSync(file, "low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\n");
    assert.ok(await until(() => n === 1, 2000));
    fs.writeFileSync(file, "low 0\nhigh 3\nmax 1\noom 1\noom_kill 1\n");
    await sleep(200);
    assert.equal(n, 1, "no new kill: no event");
    fs.writeFileSync(file, "low 0\nhigh 3\nmax 2\noom 2\noom_kill 2\n");
    assert.ok(await until(() => n === 2, 2000));
  } finally {
    stop();
  }
  const own = memoryCgroupOf(process.pid);
  assert.equal(own?.version, 1, "this hybrid host's memory controller is on v1");
  assert.ok(fs.existsSync(path.join(own!.dir, "memory.oom_control")));
});

// A logging binary as containerd's shim starts one: fds 3 and 4 the process's stdout and stderr, fd 5 closed
// when ready; it records its environment and arguments, and writes "ready" before it closes fd 5 (late).
function logger(dir: string): string {
  const bin = path.join(dir, "logger.sh");
  fs.writeFileSync(
    bin,
    `#!/bin/sh
out="$2"
/bin/sleep 0.3
echo "$CONTAINER_ID $CONTAINER_NAMESPACE $# $1 $3 $4" > "$out.meta"
/usr/bin/tr '\\0' ' ' < /proc/$$/environ > "$out.env"
echo ready > "$out.ready"
exec 5>&-
/bin/cat <&3 > "$out.stdout" &
/bin/cat <&4 > "$out.stderr" &
wait
`,
    { mode: 0o755 },
  );
  return bin;
}

test("binary:// log URI: the logger gets the process's stdout and stderr on fds 3 and 4, is waited for, and stopped at Delete", async () => {
  const bin = logger(work());
  const b = makeBundle(["multi", "echo", "to-stdout", "--", "exit", "0"]);
  const base = path.join(work(), `${b.id}.log`);
  const uri = `binary://${bin}?dir=${encodeURIComponent(base)}&flag=x`;
  await rpc("Create", t.CreateTaskRequestSchema, { id: b.id, bundle: b.dir, stdout: uri, stderr: uri }, t.CreateTaskResponseSchema);
  try {
    assert.equal(fs.readFileSync(`${base}.ready`, "utf8"), "ready\n", "Create waited for the logger to be ready");
    assert.equal(fs.readFileSync(`${base}.meta`, "utf8"), `${b.id} ${NS} 4 dir flag x\n`, "CONTAINER_ID, CONTAINER_NAMESPACE, the query as arguments");
    assert.equal(fs.readFileSync(`${base}.env`, "utf8"), `CONTAINER_ID=${b.id} CONTAINER_NAMESPACE=${NS} `, "no other environment");
    await rpc("Start", t.StartRequestSchema, { id: b.id }, t.StartResponseSchema);
    assert.equal((await rpc("Wait", t.WaitRequestSchema, { id: b.id }, t.WaitResponseSchema)).exitStatus, 0);
    assert.ok(await until(() => fs.existsSync(`${base}.stdout`) && fs.readFileSync(`${base}.stdout`, "utf8").includes("to-stdout"), 3000), "stdout reached the logger");
  } finally {
    const started = Date.now();
    await rpc("Delete", t.DeleteRequestSchema, { id: b.id }, t.DeleteResponseSchema).catch(() => {});
    assert.ok(Date.now() - started < 5000, "the logger stopped at Delete");
  }
});

test("binary:// for an exec: CONTAINER_ID is the exec's id and stderr goes to fd 4", async () => {
  const bin = logger(work());
  const b = makeBundle(["sleep", "30"]);
  await rpc("Create", t.CreateTaskRequestSchema, { id: b.id, bundle: b.dir }, t.CreateTaskResponseSchema);
  try {
    await rpc("Start", t.StartRequestSchema, { id: b.id }, t.StartResponseSchema);
    const base = path.join(work(), `${b.id}.exec.log`);
    const uri = `binary://${bin}?dir=${encodeURIComponent(base)}`;
    const spec = { ...b.spec.process!, args: ["/probe", "no-such-subcommand"] };
    await rpc("Exec", t.ExecProcessRequestSchema, { id: b.id, execId: "e2", stdout: uri, stderr: uri, spec: { typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process", value: Buffer.from(JSON.stringify(spec)) } }, EmptySchema);
    await rpc("Start", t.StartRequestSchema, { id: b.id, execId: "e2" }, t.StartResponseSchema);
    assert.match(fs.readFileSync(`${base}.meta`, "utf8"), new RegExp(`^e2 ${NS} 2 dir `), "started with the exec's Start, CONTAINER_ID the exec's id");
    assert.notEqual((await rpc("Wait", t.WaitRequestSchema, { id: b.id, execId: "e2" }, t.WaitResponseSchema)).exitStatus, 0);
    assert.ok(await until(() => fs.existsSync(`${base}.stderr`) && fs.readFileSync(`${base}.stderr`, "utf8").includes("no-such-subcommand"), 3000), "stderr reached the logger's fd 4");
    await rpc("Delete", t.DeleteRequestSchema, { id: b.id, execId: "e2" }, t.DeleteResponseSchema);
  } finally {
    await rpc("Kill", t.KillRequestSchema, { id: b.id, signal: 9 }, EmptySchema).catch(() => {});
    await rpc("Wait", t.WaitRequestSchema, { id: b.id }, t.WaitResponseSchema).catch(() => {});
    await rpc("Delete", t.DeleteRequestSchema, { id: b.id }, t.DeleteResponseSchema).catch(() => {});
  }
});

test("file:// log URI: stdout and stderr appended to one file, its directory made", async () => {
  const b = makeBundle(["multi", "echo", "to-file", "--", "hog", "bad-size"]);
  const file = path.join(work(), `${b.id}-logs`, "sub", "out.log");
  await rpc("Create", t.CreateTaskRequestSchema, { id: b.id, bundle: b.dir, stdout: `file://${file}`, stderr: "" }, t.CreateTaskResponseSchema);
  try {
    assert.equal(fs.statSync(file).mode & 0o777, 0o644);
    await rpc("Start", t.StartRequestSchema, { id: b.id }, t.StartResponseSchema);
    await rpc("Wait", t.WaitRequestSchema, { id: b.id }, t.WaitResponseSchema);
    const text = fs.readFileSync(file, "utf8");
    assert.match(text, /to-file/);
    assert.match(text, /bad size/, "stderr went to the same file");
  } finally {
    await rpc("Delete", t.DeleteRequestSchema, { id: b.id }, t.DeleteResponseSchema).catch(() => {});
  }
});
