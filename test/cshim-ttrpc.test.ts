// containerd-shim-tsrun-v2's wire layer, without containerd: ttrpc framing, a server and a client talking
// over a real unix socket, the protobuf messages' field numbers (containerd's), the delete subcommand's
// hand-built DeleteResponse, the stats conversion, and start's flags and shim grouping.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { MetricsSchema } from "../src/shim/containerd/gen/cgroups/v1/metrics_pb";
import { MetricsSchema as MetricsV2Schema } from "../src/shim/containerd/gen/cgroups/v2/metrics_pb";
import { CreateTaskRequestSchema, DeleteResponseSchema, KillRequestSchema } from "../src/shim/containerd/gen/runtime/task/v2/shim_pb";
import { RequestSchema, ResponseSchema } from "../src/shim/containerd/gen/ttrpc/ttrpc_pb";
import { deleteResponse, groupOf, parseFlags, socketPath } from "../src/shim/containerd/main";
import { metricsFromStats, metricsV2FromDir, v2CgroupDir } from "../src/shim/containerd/stats";
import { Client, Code, type Handler, encodeFrame, FrameReader, HEADER, RpcError, Server, TYPE_REQUEST } from "../src/shim/containerd/ttrpc";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cshim-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

// the raw (field number, wire type) pairs of a message
function fields(b: Uint8Array): [number, number][] {
  const r = new BinaryReader(b);
  const out: [number, number][] = [];
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    out.push([no, wt]);
    r.skip(wt);
  }
  return out;
}

test("a frame: 10-byte header (length, stream id big-endian, type, flags), split anywhere", () => {
  const f = encodeFrame({ streamId: 0x01020305, type: TYPE_REQUEST, flags: 0, payload: Buffer.from("abc") });
  assert.equal(HEADER, 10);
  assert.deepEqual([...f.subarray(0, 10)], [0, 0, 0, 3, 1, 2, 3, 5, 1, 0]);
  const r = new FrameReader();
  const two = Buffer.concat([f, encodeFrame({ streamId: 7, type: 2, flags: 0, payload: Buffer.alloc(0) })]);
  const got = [...r.push(two.subarray(0, 4)), ...r.push(two.subarray(4, 12)), ...r.push(two.subarray(12))];
  assert.deepEqual(
    got.map((x) => [x.streamId, x.type, x.payload.toString()]),
    [
      [0x01020305, 1, "abc"],
      [7, 2, ""],
    ],
  );
  const big = Buffer.alloc(10);
  big.writeUInt32BE(5 << 20, 0);
  assert.throws(() => new FrameReader().push(big), /exceed maximum message size/);
});

test("ttrpc Request/Response and the shim API's messages keep containerd's field numbers", () => {
  const req = toBinary(RequestSchema, create(RequestSchema, { service: "s", method: "m", payload: new Uint8Array([1]), timeoutNano: 5n, metadata: [{ key: "k", value: "v" }] }));
  assert.deepEqual(fields(req), [
    [1, 2],
    [2, 2],
    [3, 2],
    [4, 0],
    [5, 2],
  ]);
  const res = toBinary(ResponseSchema, create(ResponseSchema, { status: { code: 5, message: "x" }, payload: new Uint8Array([1]) }));
  assert.deepEqual(fields(res), [
    [1, 2],
    [2, 2],
  ]);
  const c = toBinary(CreateTaskRequestSchema, create(CreateTaskRequestSchema, { id: "a", bundle: "/b", rootfs: [{ type: "overlay", source: "overlay", options: ["lowerdir=/l"] }], terminal: true, stdin: "i", stdout: "o", stderr: "e", options: { typeUrl: "containerd.runc.v1.Options" } }));
  assert.deepEqual(
    fields(c).map(([n]) => n),
    [1, 2, 3, 4, 5, 6, 7, 10],
  );
  const k = fromBinary(KillRequestSchema, Uint8Array.from([0x0a, 1, 0x63, 0x18, 9, 0x20, 1])); // id "c", signal 9, all
  assert.deepEqual([k.id, k.signal, k.all], ["c", 9, true]);
});

test("the delete subcommand's DeleteResponse is what the generated code encodes", () => {
  const at = new Date(1_700_000_000_123);
  const mine = deleteResponse(42, 137, at);
  const lib = toBinary(DeleteResponseSchema, create(DeleteResponseSchema, { pid: 42, exitStatus: 137, exitedAt: { seconds: 1_700_000_000n, nanos: 123_000_000 } }));
  assert.deepEqual([...mine], [...lib]);
  const back = fromBinary(DeleteResponseSchema, deleteResponse(0, 137, at));
  assert.equal(back.exitStatus, 137);
  assert.equal(timestampDate(back.exitedAt!).getTime(), at.getTime());
});

test("a server and a client over a unix socket: concurrent calls, errors as status codes", async () => {
  const sock = path.join(dir, "ttrpc.sock");
  let release: () => void = () => {};
  const slow = new Promise<void>((r) => (release = r));
  const server = new Server(
    new Map<string, Handler>([
      ["svc/Echo", async (p: Uint8Array) => Uint8Array.from([...p].reverse())],
      ["svc/Slow", async () => (await slow, new Uint8Array([9]))],
      ["svc/Fail", async () => Promise.reject(new RpcError(Code.NOT_FOUND, "process already finished: not found"))],
    ]),
  );
  await server.listen(sock);
  const client = await Client.connect(`unix://${sock}`);
  try {
    const pending = client.call("svc", "Slow", new Uint8Array());
    assert.deepEqual([...(await client.call("svc", "Echo", Uint8Array.from([1, 2, 3])))], [3, 2, 1], "answered while Slow waits");
    release();
    assert.deepEqual([...(await pending)], [9]);
    await assert.rejects(client.call("svc", "Fail", new Uint8Array()), (e: unknown) => e instanceof RpcError && e.code === Code.NOT_FOUND && /already finished/.test(e.message));
    await assert.rejects(client.call("svc", "Nope", new Uint8Array()), (e: unknown) => e instanceof RpcError && e.code === Code.UNIMPLEMENTED);
  } finally {
    client.close();
    server.close();
  }
});

test("stats: runc's events shape becomes cgroup v1 Metrics", () => {
  const m = metricsFromStats({
    cpu: { usage: { total: 1000, percpu: [600, 400], kernel: 10, user: 20 }, throttling: { periods: 3 } },
    memory: { usage: { limit: 64, usage: 32, max: 48, failcnt: 1 }, raw: { cache: 7, rss: 8, total_rss: 9 } },
    pids: { current: 2, limit: 10 },
    blkio: { ioServiceBytesRecursive: [{ major: 8, minor: 0, op: "Read", value: 512 }] },
    hugetlb: { "2MB": { usage: 0, max: 0, failcnt: 0 } },
  });
  const back = fromBinary(MetricsSchema, toBinary(MetricsSchema, m));
  assert.equal(back.cpu?.usage?.total, 1000n);
  assert.deepEqual(back.cpu?.usage?.perCpu, [600n, 400n]);
  assert.equal(back.cpu?.throttling?.periods, 3n);
  assert.deepEqual([back.memory?.usage?.usage, back.memory?.usage?.max, back.memory?.cache, back.memory?.rss, back.memory?.totalRss], [32n, 48n, 7n, 8n, 9n]);
  assert.deepEqual([back.pids?.current, back.pids?.limit], [2n, 10n]);
  assert.equal(back.blkio?.ioServiceBytesRecursive[0]?.value, 512n);
  assert.equal(back.hugetlb[0]?.pagesize, "2MB");
});

test("stats on a cgroup v2 host: cgroup2's files become io.containerd.cgroups.v2.Metrics (containerd's field numbers)", () => {
  const cg = path.join(dir, "cg2");
  fs.mkdirSync(cg);
  const files: Record<string, string> = {
    "pids.current": "3\n",
    "pids.max": "max\n",
    "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 90\nnr_bursts 1\nburst_usec 4\n",
    "cpu.pressure": "some avg10=1.50 avg60=0.00 avg300=0.00 total=12\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3\n",
    "memory.stat": "anon 4096\nfile 8192\nkernel_stack 16384\nslab 100\nsock 0\nshmem 1\nfile_mapped 2\npgfault 77\npgmajfault 5\nworkingset_refault_anon 9\nthp_fault_alloc 6\nunknown_key 1\n",
    "memory.current": "123456\n",
    "memory.max": "268435456\n",
    "memory.peak": "200000\n",
    "memory.swap.current": "0\n",
    "memory.swap.max": "max\n",
    "memory.events": "low 0\nhigh 1\nmax 2\noom 3\noom_kill 4\noom_group_kill 0\n",
    "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=10 wbytes=0 rios=1 wios=0\n",
    "rdma.current": "mlx5_0 hca_handle=2 hca_object=2000\n",
    "rdma.max": "mlx5_0 hca_handle=max hca_object=10\n",
    "hugetlb.2MB.current": "2097152\n",
    "hugetlb.2MB.max": "max\n",
    "hugetlb.2MB.events": "max 5\n",
  };
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(cg, f), text);
  const m = fromBinary(MetricsV2Schema, toBinary(MetricsV2Schema, metricsV2FromDir(cg, ["2MB", "1GB"])));
  const MAX = 2n ** 64n - 1n;
  assert.deepEqual([m.pids?.current, m.pids?.limit], [3n, MAX]);
  assert.deepEqual([m.cpu?.usageUsec, m.cpu?.userUsec, m.cpu?.systemUsec, m.cpu?.nrPeriods, m.cpu?.nrThrottled, m.cpu?.throttledUsec, m.cpu?.nrBursts, m.cpu?.burstUsec], [1500n, 1000n, 500n, 7n, 2n, 90n, 1n, 4n]);
  assert.deepEqual([m.cpu?.psi?.some?.avg10, m.cpu?.psi?.some?.total, m.cpu?.psi?.full?.total], [1.5, 12n, 3n]);
  const mem = m.memory!;
  assert.deepEqual([mem.anon, mem.file, mem.kernelStack, mem.slab, mem.shmem, mem.fileMapped, mem.pgfault, mem.pgmajfault, mem.workingsetRefaultAnon, mem.thpFaultAlloc], [4096n, 8192n, 16384n, 100n, 1n, 2n, 77n, 5n, 9n, 6n]);
  assert.deepEqual([mem.usage, mem.usageLimit, mem.maxUsage, mem.swapUsage, mem.swapLimit, mem.swapMaxUsage], [123456n, 268435456n, 200000n, 0n, MAX, 0n]);
  assert.deepEqual([m.memoryEvents?.high, m.memoryEvents?.max, m.memoryEvents?.oom, m.memoryEvents?.oomKill], [1n, 2n, 3n, 4n]);
  assert.deepEqual(
    m.io?.usage.map((e) => [e.major, e.minor, e.rbytes, e.wbytes, e.rios, e.wios]),
    [
      [8n, 0n, 4096n, 8192n, 1n, 2n],
      [253n, 1n, 10n, 0n, 1n, 0n],
    ],
  );
  assert.deepEqual(m.rdma?.current.map((e) => [e.device, e.hcaHandles, e.hcaObjects]), [["mlx5_0", 2, 2000]]);
  assert.deepEqual(m.rdma?.limit.map((e) => [e.device, e.hcaHandles, e.hcaObjects]), [["mlx5_0", 0xffffffff, 10]]);
  assert.deepEqual(
    m.hugetlb.map((h) => [h.pagesize, h.current, h.max, h.failcnt]),
    [
      ["2MB", 2097152n, MAX, 5n],
      ["1GB", 0n, 0n, 0n],
    ],
  );
  // containerd's field numbers: pids 1, cpu 2, memory 4, rdma 5, io 6, hugetlb 7, memory_events 8
  assert.deepEqual(
    fields(toBinary(MetricsV2Schema, m)).map(([n]) => n),
    [1, 2, 4, 5, 6, 7, 7, 8],
  );
  const memFields = fields(toBinary(MetricsV2Schema, create(MetricsV2Schema, { memory: { usage: 1n, usageLimit: 2n, maxUsage: 3n, swapMaxUsage: 4n, workingsetRefaultFile: 5n } })).subarray(2));
  assert.deepEqual(
    memFields.map(([n]) => n),
    [32, 33, 36, 37, 40],
  );
  // no memory.events: no memory_events (as cgroup2's readMemoryEvents); missing files read as 0
  fs.rmSync(path.join(cg, "memory.events"));
  assert.equal(metricsV2FromDir(cg, []).memoryEvents, undefined);
  assert.equal(metricsV2FromDir(path.join(dir, "none"), []).pids?.current, 0n);
  // v2 only on a unified host: the process's "0::" cgroup under the v2 mount
  const own = /^0::(\/.*)$/m.exec(fs.readFileSync("/proc/self/cgroup", "utf8"))![1]!;
  assert.equal(v2CgroupDir(process.pid, { mode: "v2", unified: { mountPoint: "/sys/fs/cgroup", root: "/" } }), path.join("/sys/fs/cgroup", own));
  assert.equal(v2CgroupDir(process.pid, { mode: "hybrid", unified: { mountPoint: "/sys/fs/cgroup/unified", root: "/" } }), undefined);
});

test("start's flags (Go's forms) and the shim's socket: one per container, one per pod", () => {
  const f = parseFlags(["-namespace", "k8s.io", "-address", "/run/containerd/containerd.sock", "-publish-binary", "/usr/bin/containerd", "-id", "c1", "-debug", "start"]);
  assert.deepEqual([f.namespace, f.address, f.publishBinary, f.id, f.debug, f.action], ["k8s.io", "/run/containerd/containerd.sock", "/usr/bin/containerd", "c1", true, "start"]);
  assert.equal(parseFlags(["--id=x", "delete"]).id, "x");
  const b1 = path.join(dir, "b1");
  const b2 = path.join(dir, "b2");
  fs.mkdirSync(b1);
  fs.mkdirSync(b2);
  fs.writeFileSync(path.join(b1, "config.json"), JSON.stringify({ annotations: { "io.kubernetes.cri.sandbox-id": "pod1" } }));
  fs.writeFileSync(path.join(b2, "config.json"), JSON.stringify({ annotations: { "io.kubernetes.cri.sandbox-id": "pod1" } }));
  assert.equal(groupOf(b1, "c1"), "pod1");
  assert.equal(groupOf(path.join(dir, "none"), "c3"), "c3");
  const s = (g: string) => socketPath("/run/containerd/containerd.sock", "k8s.io", g);
  assert.equal(s(groupOf(b1, "c1")), s(groupOf(b2, "c2")), "a pod's containers share a shim");
  assert.notEqual(s("c3"), s("c4"));
  assert.match(s("c3"), /^\/run\/containerd\/s\/[0-9a-f]{64}$/);
});
