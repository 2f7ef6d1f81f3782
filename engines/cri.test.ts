// Kubernetes through the CRI (issue 15): containerd's CRI plugin runs one pod — a sandbox and two
// containers — through each runtime handler, runc's shim with runc ("runc") and with tsrun ("tsrun") and
// tsrun's own shim ("tsrun-shim", io.containerd.tsrun.v2), with the same requests and expectations: shared
// namespaces as the CRI sets them, ExecSync, the CRI log files, ContainerStats, stop (SIGTERM, and SIGKILL
// after the timeout), remove, StopPodSandbox, RemovePodSandbox; then what each saw is compared.
// Run alone: node --test --test-reporter=tap dist/engines/cri.test.js (TSRUN_ENGINES_RUNTIMES=tsrun-shim:
// that handler only). The pod has a network of its own through CNI (a bridge of the test's own, in
// /usr/lib/cni: containernetworking-plugins) when the plugins are there, else (or with
// TSRUN_CRI_NETWORK=host) the host's network and UTS namespace.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { buildPauseImage, CriContainerd, type Handler, IMAGE, PAUSE_IMAGE } from "./cri";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ContainerState, NamespaceMode, PodSandboxState, type ContainerConfigSchema, type PodSandboxConfigSchema } from "./cri_pb";
import { buildImage, hasCommand, TSRUN, unmountUnder } from "./engines";

const work = path.join(os.tmpdir(), `tsrun-cri-${process.pid}`);
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work);

// handler name → the runtime behind it: runc (the reference), tsrun as a binary under runc's shim (as
// the engine suite's "tsrun"), tsrun's own shim (the RuntimeClass handler "tsrun" of the README)
const handlers: Record<string, Handler> = {};
if (hasCommand("runc")) handlers["runc"] = { runtimeType: "io.containerd.runc.v2", options: { Root: path.join(work, "runc-root") } };
handlers["tsrun-binary"] = { runtimeType: "io.containerd.runc.v2", options: { BinaryName: TSRUN, Root: path.join(work, "tsrun-binary-root") } };
handlers["tsrun"] = { runtimeType: "io.containerd.tsrun.v2" };
// the engine suite's runtime names: TSRUN_ENGINES_RUNTIMES=tsrun-shim,runc
const suiteNames: Record<string, string> = { runc: "runc", "tsrun-binary": "tsrun", tsrun: "tsrun-shim" };
const suiteName = (h: string) => suiteNames[h] ?? h;
const only = process.env.TSRUN_ENGINES_RUNTIMES?.split(",").filter(Boolean);
for (const h of Object.keys(handlers)) if (only?.length && !only.includes(suiteName(h))) delete handlers[h];

let cri: CriContainerd | undefined;
after(async () => {
  try {
    await cri?.close();
  } catch (err) {
    console.error(`# closing containerd: ${String(err)}`);
  }
  unmountUnder(work);
  fs.rmSync(work, { recursive: true, force: true });
});

before(async () => {
  if (!Object.keys(handlers).length) return;
  const image = buildImage(work);
  const pause = buildPauseImage(work);
  cri = new CriContainerd(path.join(work, "containerd"), handlers, process.env.TSRUN_CRI_NETWORK === "host");
  await cri.ready([
    { archive: pause, name: PAUSE_IMAGE },
    { archive: image.archive, name: IMAGE },
  ]);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ns = (pid: number, kind: string) => fs.readlinkSync(`/proc/${pid}/ns/${kind}`);
const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(100);
  }
}

// the CRI log file's lines, without their timestamps: "stdout F hello"
function logLines(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const m = /^(\d{4}-\d\d-\d\dT\S+) (stdout|stderr) ([PF]) (.*)$/.exec(l);
      assert.ok(m && !Number.isNaN(Date.parse(m[1]!)), `a CRI log line: ${JSON.stringify(l)}`);
      return `${m[2]} ${m[3]} ${m[4]}`;
    });
}

// What each handler's run showed, compared at the end.
const seen: Record<string, Record<string, unknown>> = {};

for (const handler of Object.keys(handlers)) {
  describe(`CRI pod through ${suiteName(handler)} (handler "${handler}": ${handlers[handler]!.runtimeType})`, { concurrency: false }, () => {
    const s: Record<string, unknown> = {};
    seen[handler] = s;
    let c: CriContainerd;
    let podId = "";
    let podConfig: MessageInitShape<typeof PodSandboxConfigSchema>;
    const ids: Record<"a" | "b", string> = { a: "", b: "" };
    const logDir = path.join(work, "logs", handler);
    let t0 = 0;

    before(() => {
      c = cri!;
      t0 = Date.now();
    });
    after(async () => {
      // a failed test leaves its pod: remove it here, so the next handler starts clean
      if (podId) {
        await c.runtime.stopPodSandbox({ podSandboxId: podId }).catch(() => undefined);
        await c.runtime.removePodSandbox({ podSandboxId: podId }).catch(() => undefined);
      }
      console.log(`# ${suiteName(handler)}: the pod's whole life in ${Date.now() - t0} ms`);
    });

    test("RunPodSandbox: the pause container through the handler, its own IPC, PID (and network, UTS) namespaces", async () => {
      const net = c.podNetwork ? NamespaceMode.POD : NamespaceMode.NODE;
      podConfig = {
        metadata: { name: `pod-${handler}`, uid: `uid-${handler}-${process.pid}`, namespace: "tsrun-test", attempt: 0 },
        // (with the host's network the pod has the host's UTS namespace: no hostname of its own)
        hostname: c.podNetwork ? "tsrun-pod" : "",
        logDirectory: logDir,
        labels: { app: "tsrun-cri" },
        linux: { cgroupParent: c.cgroupParent, securityContext: { namespaceOptions: { network: net, pid: NamespaceMode.POD, ipc: NamespaceMode.POD } } },
      };
      fs.mkdirSync(logDir, { recursive: true });
      const t = Date.now();
      podId = (await c.runtime.runPodSandbox({ config: podConfig, runtimeHandler: handler })).podSandboxId;
      s["runPodSandboxMs"] = Date.now() - t;
      const st = await c.runtime.podSandboxStatus({ podSandboxId: podId });
      assert.equal(st.status?.state, PodSandboxState.SANDBOX_READY);
      assert.equal(st.status?.runtimeHandler, handler);
      const info = await c.sandboxInfo(podId);
      assert.equal(info.runtimeType, handlers[handler]!.runtimeType);
      assert.equal(fs.readFileSync(`/proc/${info.pid}/cmdline`, "utf8"), "/pause\0");
      for (const k of ["ipc", "pid", "mnt"]) assert.notEqual(ns(info.pid, k), ns(process.pid, k), `the sandbox's ${k} namespace is its own`);
      if (c.podNetwork) {
        for (const k of ["net", "uts"]) assert.notEqual(ns(info.pid, k), ns(process.pid, k), `the sandbox's ${k} namespace is its own`);
        assert.match(st.status?.network?.ip ?? "", /^10\.\d+\.\d+\.\d+$/, "the pod's IP (CNI)");
      } else for (const k of ["net", "uts"]) assert.equal(ns(info.pid, k), ns(process.pid, k), `the host's ${k} namespace (host network)`);
      s["sandbox"] = { state: "ready", pause: true, ownNamespaces: true, ipIffCni: Boolean(st.status?.network?.ip) === c.podNetwork };
    });

    test("CreateContainer, StartContainer: two containers (pid: one in the pod's, one its own)", async () => {
      const container = (name: string, command: string[], pid: NamespaceMode): MessageInitShape<typeof ContainerConfigSchema> => ({
        metadata: { name, attempt: 0 },
        image: { image: IMAGE },
        command,
        envs: [{ key: "POD_CONTAINER", value: name }],
        logPath: `${name}.log`,
        linux: { securityContext: { namespaceOptions: { network: podConfig.linux!.securityContext!.namespaceOptions!.network!, pid, ipc: NamespaceMode.POD } } },
      });
      // a: logs on both streams, then sleeps (SIGTERM ends it: it is not its namespace's init);
      // b: init of its own PID namespace, which ignores SIGTERM: stopping it takes the SIGKILL
      const a = container("a", ["/bin/sh", "-c", "echo hello from a; echo warning from a >&2; exec /probe sleep 300"], NamespaceMode.POD);
      const b = container("b", ["/bin/sh", "-c", "echo b is $POD_CONTAINER; exec /probe sleep 300"], NamespaceMode.CONTAINER);
      ids.a = (await c.runtime.createContainer({ podSandboxId: podId, config: a, sandboxConfig: podConfig })).containerId;
      ids.b = (await c.runtime.createContainer({ podSandboxId: podId, config: b, sandboxConfig: podConfig })).containerId;
      assert.equal((await c.runtime.containerStatus({ containerId: ids.a })).status?.state, ContainerState.CONTAINER_CREATED);
      const t = Date.now();
      await c.runtime.startContainer({ containerId: ids.a });
      await c.runtime.startContainer({ containerId: ids.b });
      s["startContainersMs"] = Date.now() - t;
      for (const id of [ids.a, ids.b]) assert.equal((await c.runtime.containerStatus({ containerId: id })).status?.state, ContainerState.CONTAINER_RUNNING);
      const listed = await c.runtime.listContainers({ filter: { podSandboxId: podId } });
      assert.deepEqual(listed.containers.map((x) => x.metadata?.name).sort(), ["a", "b"]);
      s["containers"] = "created, running";
    });

    test("namespaces: network, IPC and UTS the pod's; PID as asked; one shim for the pod; the pod's cgroup parent", async () => {
      const pod = await c.sandboxInfo(podId);
      const a = await c.containerInfo(ids.a);
      const b = await c.containerInfo(ids.b);
      assert.equal(a.runtimeType, handlers[handler]!.runtimeType);
      for (const k of ["net", "ipc", "uts"]) {
        assert.equal(ns(a.pid, k), ns(pod.pid, k), `a's ${k}`);
        assert.equal(ns(b.pid, k), ns(pod.pid, k), `b's ${k}`);
      }
      assert.equal(ns(a.pid, "pid"), ns(pod.pid, "pid"), "a shares the pod's PID namespace");
      assert.notEqual(ns(b.pid, "pid"), ns(pod.pid, "pid"), "b has its own");
      assert.notEqual(ns(b.pid, "pid"), ns(process.pid, "pid"));
      assert.notEqual(ns(a.pid, "mnt"), ns(b.pid, "mnt"), "each container its own mount namespace");
      // the containers' parent: one shim for the whole pod (grouped by io.kubernetes.cri.sandbox-id)
      const ppid = (pid: number) => Number(/^PPid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
      const shim = ppid(pod.pid);
      assert.equal(ppid(a.pid), shim);
      assert.equal(ppid(b.pid), shim);
      const shimCmd = fs.readFileSync(`/proc/${shim}/cmdline`, "utf8");
      assert.match(shimCmd, handlers[handler]!.runtimeType === "io.containerd.tsrun.v2" ? /shim\/containerd\/main\.js|containerd-shim-tsrun-v2\.blob/ : /containerd-shim-runc-v2/);
      // cgroups (cgroupfs): <cgroup_parent>/<container id>
      const memcg = (pid: number) => /^\d+:memory:(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/cgroup`, "utf8"))?.[1];
      assert.equal(memcg(a.pid), `${c.cgroupParent}/${ids.a}`);
      assert.equal(memcg(pod.pid), `${c.cgroupParent}/${podId}`);
      s["namespaces"] = { netIpcUtsShared: true, pidA: "pod", pidB: "own", mntOwn: true, oneShimPerPod: true, cgroups: "parent/id" };
    });

    test("ExecSync: output, exit status, the pod's view (PID 1, hostname, the pod's IP)", async () => {
      const r = await c.runtime.execSync({ containerId: ids.a, cmd: ["/bin/sh", "-c", "echo out; echo err >&2; exit 7"], timeout: 30n });
      assert.deepEqual([text(r.stdout), text(r.stderr), r.exitCode], ["out\n", "err\n", 7]);
      // a: PID 1 is the pod's pause; b: its own command
      const pid1a = await c.runtime.execSync({ containerId: ids.a, cmd: ["/bin/cat", "/proc/1/cmdline"], timeout: 30n });
      assert.equal(text(pid1a.stdout), "/pause\0");
      const pid1b = await c.runtime.execSync({ containerId: ids.b, cmd: ["/bin/cat", "/proc/1/cmdline"], timeout: 30n });
      assert.equal(text(pid1b.stdout), "/probe\0sleep\0" + "300\0");
      const env = await c.runtime.execSync({ containerId: ids.b, cmd: ["/bin/env"], timeout: 30n });
      assert.match(text(env.stdout), /^POD_CONTAINER=b$/m);
      if (c.podNetwork) {
        const host = await c.runtime.execSync({ containerId: ids.b, cmd: ["/bin/cat", "/proc/sys/kernel/hostname"], timeout: 30n });
        assert.equal(text(host.stdout).trim(), "tsrun-pod");
        const ip = (await c.runtime.podSandboxStatus({ podSandboxId: podId })).status?.network?.ip ?? "";
        const trie = await c.runtime.execSync({ containerId: ids.a, cmd: ["/bin/cat", "/proc/net/fib_trie"], timeout: 30n });
        assert.ok(text(trie.stdout).includes(ip), `the pod's IP ${ip} inside a`);
      }
      const missing = await c.runtime.execSync({ containerId: ids.a, cmd: ["/no/such/binary"], timeout: 30n }).then(
        (x) => `exit ${x.exitCode}`,
        (e: Error) => `error: ${/no such file/i.test(e.message) ? "no such file" : e.message}`,
      );
      // past its timeout the exec is killed and ExecSync fails; the container runs on
      const t = Date.now();
      const late = await c.runtime.execSync({ containerId: ids.b, cmd: ["/probe", "sleep", "30"], timeout: 1n }).then(
        (x) => `exit ${x.exitCode}`,
        (e: Error) => `error: ${/timeout|deadline/i.test(e.message) ? "timeout" : e.message}`,
      );
      const lateMs = Date.now() - t;
      assert.equal(late, "error: timeout");
      assert.ok(lateMs < 10_000, `the timed-out exec ended in ${lateMs} ms`);
      assert.equal((await c.runtime.containerStatus({ containerId: ids.b })).status?.state, ContainerState.CONTAINER_RUNNING);
      s["exec"] = { exit: 7, pid1: "pause / own", env: true, missingBinary: missing, timeout: late };
      s["execTimeoutMs"] = lateMs;
    });

    test("logs: the CRI log files, both streams, in the CRI format", async () => {
      const a = await until("a's log", () => {
        const l = logLines(path.join(logDir, "a.log"));
        return l.length >= 2 ? l : undefined;
      });
      assert.deepEqual(a.sort(), ["stderr F warning from a", "stdout F hello from a"]);
      const b = await until("b's log", () => {
        const l = logLines(path.join(logDir, "b.log"));
        return l.length >= 1 ? l : undefined;
      });
      assert.deepEqual(b, ["stdout F b is b"]);
      assert.equal((await c.runtime.containerStatus({ containerId: ids.a })).status?.logPath, path.join(logDir, "a.log"));
      s["logs"] = { a, b };
    });

    test("ContainerStats: CPU and memory from the container's cgroup", async () => {
      const r = await c.runtime.containerStats({ containerId: ids.a });
      const st = r.stats!;
      assert.equal(st.attributes?.id, ids.a);
      assert.equal(st.attributes?.metadata?.name, "a");
      const cpu = st.cpu?.usageCoreNanoSeconds?.value ?? 0n;
      assert.ok(cpu > 0n, `cpu ${cpu}`);
      const usage = st.memory?.usageBytes?.value ?? 0n;
      const ws = st.memory?.workingSetBytes?.value ?? 0n;
      assert.ok(usage > 0n && ws > 0n && ws <= usage, `memory usage ${usage}, working set ${ws}`);
      // the same cgroup as the host sees it (cpu only grows)
      const acct = BigInt(fs.readFileSync(`/sys/fs/cgroup/cpuacct${c.cgroupParent}/${ids.a}/cpuacct.usage`, "utf8").trim());
      assert.ok(cpu <= acct, `${cpu} <= ${acct}`);
      s["stats"] = { cpu: true, memory: true, attributes: true };
    });

    test("StopContainer: SIGTERM (a: 143), SIGKILL after the timeout (b: 137)", async () => {
      let t = Date.now();
      await c.runtime.stopContainer({ containerId: ids.a, timeout: 10n });
      const stopA = Date.now() - t;
      t = Date.now();
      await c.runtime.stopContainer({ containerId: ids.b, timeout: 1n });
      const stopB = Date.now() - t;
      const a = (await c.runtime.containerStatus({ containerId: ids.a })).status!;
      const b = (await c.runtime.containerStatus({ containerId: ids.b })).status!;
      assert.deepEqual([a.state, a.exitCode, a.reason], [ContainerState.CONTAINER_EXITED, 143, "Error"]);
      assert.deepEqual([b.state, b.exitCode], [ContainerState.CONTAINER_EXITED, 137]);
      assert.ok(a.finishedAt > 0n && a.finishedAt >= a.startedAt);
      assert.ok(stopA < 5000, `a stopped by SIGTERM in ${stopA} ms`);
      assert.ok(stopB >= 900, `b waited for the timeout: ${stopB} ms`);
      // the pod goes on without them
      assert.equal((await c.runtime.podSandboxStatus({ podSandboxId: podId })).status?.state, PodSandboxState.SANDBOX_READY);
      s["stop"] = { a: [a.exitCode, a.reason], b: [b.exitCode, b.reason] };
      s["stopMs"] = { a: stopA, b: stopB };
    });

    test("RemoveContainer, StopPodSandbox, RemovePodSandbox: nothing left (processes, cgroups, shim)", async () => {
      const pod = await c.sandboxInfo(podId);
      await c.runtime.removeContainer({ containerId: ids.a });
      await c.runtime.removeContainer({ containerId: ids.b });
      assert.equal((await c.runtime.listContainers({ filter: { podSandboxId: podId } })).containers.length, 0);
      await assert.rejects(c.runtime.containerStatus({ containerId: ids.a }), /not found|does not exist/i);
      for (const id of [ids.a, ids.b]) assert.ok(!fs.existsSync(`/sys/fs/cgroup/memory${c.cgroupParent}/${id}`), `${id}'s cgroup removed`);
      let t = Date.now();
      await c.runtime.stopPodSandbox({ podSandboxId: podId });
      const stopPod = Date.now() - t;
      assert.equal((await c.runtime.podSandboxStatus({ podSandboxId: podId })).status?.state, PodSandboxState.SANDBOX_NOTREADY);
      await until("the pause process to go", () => (fs.existsSync(`/proc/${pod.pid}`) ? undefined : true));
      t = Date.now();
      await c.runtime.removePodSandbox({ podSandboxId: podId });
      const removePod = Date.now() - t;
      assert.equal((await c.runtime.listPodSandbox({})).items.filter((p) => p.id === podId).length, 0);
      assert.ok(!fs.existsSync(`/sys/fs/cgroup/memory${c.cgroupParent}/${podId}`), "the pod's cgroup removed");
      // the shim exits with its pod's last container
      await until("the pod's shim to exit", () => (c.shims().length === 0 ? true : undefined));
      podId = "";
      s["removed"] = { containers: true, pod: true, cgroups: true, shim: true };
      s["podStopRemoveMs"] = { stop: stopPod, remove: removePod };
    });
  });
}

test("every handler showed the same (but for timings)", { skip: Object.keys(seen).length < 2 }, () => {
  const strip = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([k]) => !k.endsWith("Ms")));
  const [first, ...rest] = Object.keys(seen);
  for (const h of rest) assert.deepEqual(strip(seen[h]!), strip(seen[first!]!), `${h} against ${first}`);
  console.log(`# what all saw: ${JSON.stringify(strip(seen[first!]!))}`);
  for (const h of Object.keys(seen)) console.log(`# ${suiteName(h)} timings: ${JSON.stringify(Object.fromEntries(Object.entries(seen[h]!).filter(([k]) => k.endsWith("Ms"))))}`);
});
