import { test } from "node:test";
import assert from "node:assert/strict";

import { parseProcess, parseSpec, SpecError, SpecSchema, ProcessSchema, type Spec } from "../src/spec/schema";
import { defaultSpec, specJson } from "../src/spec/default";

/** A fresh, mutable, plain-JSON copy of the default spec. */
function base(): any {
  return JSON.parse(specJson(defaultSpec({ cgroupNamespace: false })));
}

/** Asserts that parsing `doc` fails with a one-line SpecError at `path`. */
function rejects(doc: unknown, path: string, reason: RegExp, source = "config.json"): SpecError {
  let err: unknown;
  try {
    parseSpec(doc, source);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SpecError, `expected a SpecError for ${path}, got ${String(err)}`);
  assert.ok(err instanceof Error);
  assert.equal(err.path, path);
  assert.ok(!err.message.includes("\n"), `message must be one line: ${err.message}`);
  const prefix = path === "" ? `${source}: ` : `${source}: ${path}: `;
  assert.ok(err.message.startsWith(prefix), `message ${JSON.stringify(err.message)} should start with ${JSON.stringify(prefix)}`);
  assert.match(err.message, reason);
  return err;
}

function mutate(fn: (s: any) => void): any {
  const s = base();
  fn(s);
  return s;
}

// ---------------------------------------------------------------------------
// default spec

test("default spec parses and matches runc spec", () => {
  const spec = parseSpec(defaultSpec({ cgroupNamespace: false }));
  assert.equal(spec.ociVersion, "1.3.0");
  assert.deepEqual(spec.root, { path: "rootfs", readonly: true });
  assert.equal(spec.hostname, "runc");
  const p = spec.process!;
  assert.equal(p.terminal, true);
  assert.deepEqual(p.args, ["sh"]);
  assert.equal(p.cwd, "/");
  assert.deepEqual(p.user, { uid: 0, gid: 0 });
  assert.equal(p.noNewPrivileges, true);
  assert.deepEqual(p.rlimits, [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }]);
  const caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
  assert.deepEqual(p.capabilities, { bounding: caps, effective: caps, permitted: caps });
  assert.deepEqual(
    spec.mounts!.map((m) => m.destination),
    ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"],
  );
  assert.equal(spec.mounts![0]!.options, undefined);
  assert.deepEqual(spec.linux!.resources, { devices: [{ allow: false, access: "rwm" }] });
  assert.deepEqual(
    spec.linux!.namespaces!.map((n) => n.type),
    ["pid", "network", "ipc", "uts", "mount"],
  );
  assert.ok(spec.linux!.maskedPaths!.includes("/proc/kcore"));
  assert.ok(spec.linux!.readonlyPaths!.includes("/proc/sys"));
});

test("default spec adds a cgroup namespace when asked (cgroup v2 hosts)", () => {
  const spec = parseSpec(defaultSpec({ cgroupNamespace: true }));
  assert.deepEqual(
    spec.linux!.namespaces!.map((n) => n.type),
    ["pid", "network", "ipc", "uts", "mount", "cgroup"],
  );
  // Without the option the host decides; the result must still be valid.
  parseSpec(defaultSpec({}));
});

test("specJson formats like json.MarshalIndent with tabs and no trailing newline", () => {
  const text = specJson(defaultSpec({ cgroupNamespace: false }));
  assert.ok(text.startsWith('{\n\t"ociVersion": "1.3.0",\n\t"process": {\n\t\t"terminal": true,'));
  assert.ok(text.endsWith("\n}"));
  assert.ok(!text.endsWith("\n\n"));
  // Keys come out in runc's (Go struct) order.
  const topKeys = Object.keys(JSON.parse(text));
  assert.deepEqual(topKeys, ["ociVersion", "process", "root", "hostname", "mounts", "linux"]);
  // Parsing preserves the order, so a round trip is byte-identical.
  assert.equal(specJson(parseSpec(JSON.parse(text))), text);
  // Go escapes HTML-significant characters.
  const s = defaultSpec({ cgroupNamespace: false });
  s.hostname = "a<b>&c";
  assert.match(specJson(s), /"hostname": "a\\u003cb\\u003e\\u0026c"/);
});

test("rootless default spec parses and has a user namespace", () => {
  const spec = parseSpec(defaultSpec({ rootless: true, cgroupNamespace: false }));
  const types = spec.linux!.namespaces!.map((n) => n.type);
  assert.deepEqual(types, ["pid", "ipc", "uts", "mount", "user"]);
  assert.ok(!types.includes("network"));
  const uid = process.geteuid!();
  const gid = process.getegid!();
  assert.deepEqual(spec.linux!.uidMappings, [{ containerID: 0, hostID: uid, size: 1 }]);
  assert.deepEqual(spec.linux!.gidMappings, [{ containerID: 0, hostID: gid, size: 1 }]);
  assert.equal(spec.linux!.resources, undefined);
  const sys = spec.mounts!.find((m) => m.destination === "/sys")!;
  assert.deepEqual(sys, {
    destination: "/sys",
    type: "none",
    source: "/sys",
    options: ["rbind", "nosuid", "noexec", "nodev", "ro"],
  });
  const pts = spec.mounts!.find((m) => m.destination === "/dev/pts")!;
  assert.ok(!pts.options!.some((o) => o.startsWith("gid=") || o.startsWith("uid=")));
  assert.deepEqual(Object.keys(spec.linux!), ["uidMappings", "gidMappings", "namespaces", "maskedPaths", "readonlyPaths"]);

  const withCgroup = parseSpec(defaultSpec({ rootless: true, cgroupNamespace: true }));
  assert.deepEqual(
    withCgroup.linux!.namespaces!.map((n) => n.type),
    ["pid", "ipc", "uts", "mount", "cgroup", "user"],
  );
});

// ---------------------------------------------------------------------------
// JSON types

test("wrong JSON types are reported with their path", () => {
  rejects(mutate((s) => (s.process.args = 5)), "process.args", /expected an array of strings, got number$/);
  rejects(mutate((s) => (s.process.args = ["sh", 3])), "process.args[1]", /expected a string, got number$/);
  rejects(mutate((s) => (s.hostname = true)), "hostname", /expected a string, got boolean$/);
  rejects(mutate((s) => (s.root.readonly = "yes")), "root.readonly", /expected a boolean, got string$/);
  rejects(mutate((s) => (s.linux.namespaces[0] = "pid")), "linux.namespaces[0]", /expected an object, got string$/);
  rejects(mutate((s) => (s.mounts = {})), "mounts", /expected an array of mount objects, got object$/);
  rejects([], "", /expected an object, got array$/);
  rejects(null, "", /expected an object, got null$/);
});

test("missing required fields are reported", () => {
  rejects(mutate((s) => delete s.ociVersion), "ociVersion", /missing required field/);
  rejects(mutate((s) => delete s.root), "root", /missing required field/);
  rejects(mutate((s) => delete s.process.cwd), "process.cwd", /missing required field/);
  rejects(mutate((s) => delete s.linux.namespaces[1].type), "linux.namespaces[1].type", /missing required field/);
  rejects(mutate((s) => delete s.mounts[2].destination), "mounts[2].destination", /missing required field/);
});

test("process is optional at parse time", () => {
  const s = parseSpec(mutate((s) => delete s.process));
  assert.equal(s.process, undefined);
});

test("only the first problem is reported, with a count of the rest", () => {
  const err = rejects(
    mutate((s) => {
      s.process.user.uid = -1;
      s.hostname = 1;
      s.linux.namespaces[0].type = "bogus";
    }),
    "process.user.uid",
    /\(and 2 more problems\)$/,
  );
  assert.ok(!err.message.includes("hostname"));
  rejects(
    mutate((s) => {
      s.process.user.uid = -1;
      s.hostname = 1;
    }),
    "process.user.uid",
    /\(and 1 more problem\)$/,
  );
});

// ---------------------------------------------------------------------------
// ociVersion

test("ociVersion accepts 1.0.0 through 1.3.x", () => {
  for (const v of ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.2.1", "1.2.1-rc.1", "1.0.0-rc5", "1.3.0", "1.3.1-dev"]) {
    assert.equal(parseSpec(mutate((s) => (s.ociVersion = v))).ociVersion, v, v);
  }
});

test("ociVersion outside 1.0.0..1.3.x is rejected naming the range", () => {
  for (const v of ["2.0.0", "0.1.0", "1.4.0", "0.9", "abc", "1.2", "01.0.0", ""]) {
    rejects(mutate((s) => (s.ociVersion = v)), "ociVersion", /1\.0\.0 to 1\.3\.x/);
  }
  rejects(mutate((s) => (s.ociVersion = 1)), "ociVersion", /expected a string, got number$/);
});

// ---------------------------------------------------------------------------
// namespaces

test("unknown namespace type is rejected", () => {
  rejects(
    mutate((s) => (s.linux.namespaces[2].type = "foo")),
    "linux.namespaces[2].type",
    /invalid value "foo" \(expected one of pid, network, mount, ipc, uts, user, cgroup, time\)$/,
  );
});

test("duplicate namespace type is rejected", () => {
  rejects(
    mutate((s) => s.linux.namespaces.push({ type: "ipc" })),
    "linux.namespaces[5].type",
    /duplicate namespace type "ipc"/,
  );
});

test("namespace path must be absolute", () => {
  parseSpec(mutate((s) => (s.linux.namespaces[1].path = "/var/run/netns/x")));
  rejects(mutate((s) => (s.linux.namespaces[1].path = "netns/x")), "linux.namespaces[1].path", /absolute path/);
});

// ---------------------------------------------------------------------------
// seccomp

function withSeccomp(seccomp: unknown): any {
  return mutate((s) => (s.linux.seccomp = seccomp));
}

function syscallRule(args: unknown[], action = "SCMP_ACT_ERRNO"): unknown {
  return { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["personality"], action, args }] };
}

test("a valid seccomp profile parses, including uint64 values", () => {
  const s = parseSpec(
    withSeccomp({
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 1,
      architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
      flags: ["SECCOMP_FILTER_FLAG_LOG"],
      syscalls: [
        {
          names: ["personality"],
          action: "SCMP_ACT_ALLOW",
          args: [{ index: 0, value: 18446744073709551615, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }],
        },
      ],
    }),
  );
  assert.equal(s.linux!.seccomp!.syscalls![0]!.args![0]!.op, "SCMP_CMP_MASKED_EQ");
});

test("seccomp argument index above 5 is rejected", () => {
  rejects(
    withSeccomp(syscallRule([{ index: 6, value: 1, op: "SCMP_CMP_EQ" }])),
    "linux.seccomp.syscalls[0].args[0].index",
    /from 0 to 5.*got 6$/,
  );
});

test("bad seccomp operator is rejected", () => {
  rejects(
    withSeccomp(syscallRule([{ index: 0, value: 1, op: "SCMP_CMP_FOO" }])),
    "linux.seccomp.syscalls[0].args[0].op",
    /invalid value "SCMP_CMP_FOO" \(expected one of SCMP_CMP_NE, .*SCMP_CMP_MASKED_EQ\)$/,
  );
});

test("bad seccomp actions are rejected", () => {
  rejects(withSeccomp({ defaultAction: "SCMP_ACT_NOPE" }), "linux.seccomp.defaultAction", /invalid value "SCMP_ACT_NOPE"/);
  rejects(
    withSeccomp(syscallRule([], "ALLOW")),
    "linux.seccomp.syscalls[0].action",
    /invalid value "ALLOW" \(expected one of SCMP_ACT_KILL, /,
  );
  rejects(
    withSeccomp({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["x86_64"] }),
    "linux.seccomp.architectures[0]",
    /invalid value "x86_64"/,
  );
  rejects(
    withSeccomp({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: [], action: "SCMP_ACT_ALLOW" }] }),
    "linux.seccomp.syscalls[0].names",
    /at least one/,
  );
});

// ---------------------------------------------------------------------------
// process

test("negative uid is rejected", () => {
  rejects(mutate((s) => (s.process.user.uid = -1)), "process.user.uid", /uint32.*got -1$/);
  rejects(mutate((s) => (s.process.user.gid = 4294967296)), "process.user.gid", /uint32/);
  rejects(mutate((s) => (s.process.user.additionalGids = [5, 1.5])), "process.user.additionalGids[1]", /got 1\.5$/);
});

test("args must be non-empty and cwd absolute", () => {
  rejects(mutate((s) => (s.process.args = [])), "process.args", /at least one entry/);
  rejects(mutate((s) => (s.process.cwd = "root")), "process.cwd", /absolute path/);
});

test("env entries must be KEY=value", () => {
  parseSpec(mutate((s) => s.process.env.push("EMPTY=")));
  rejects(mutate((s) => s.process.env.push("NOEQUALS")), "process.env[2]", /KEY=value, got "NOEQUALS"$/);
  rejects(mutate((s) => s.process.env.push("=value")), "process.env[2]", /KEY=value/);
});

test("capabilities, rlimits and oomScoreAdj are checked", () => {
  rejects(
    mutate((s) => s.process.capabilities.bounding.push("cap_chown")),
    "process.capabilities.bounding[3]",
    /capability name/,
  );
  rejects(
    mutate((s) => s.process.rlimits.push({ type: "RLIMIT_BOGUS", hard: 1, soft: 1 })),
    "process.rlimits[1].type",
    /invalid value "RLIMIT_BOGUS"/,
  );
  rejects(
    mutate((s) => s.process.rlimits.push({ type: "RLIMIT_NOFILE", hard: 1, soft: 1 })),
    "process.rlimits[1].type",
    /duplicate rlimit type "RLIMIT_NOFILE"/,
  );
  parseSpec(mutate((s) => (s.process.oomScoreAdj = -1000)));
  rejects(mutate((s) => (s.process.oomScoreAdj = 1001)), "process.oomScoreAdj", /-1000 to 1000/);
});

test("parseProcess validates a process.json with the same error style", () => {
  const p = parseProcess({ cwd: "/", args: ["ls", "-l"], user: { uid: 1000, gid: 1000 } }, "process.json");
  assert.deepEqual(p.args, ["ls", "-l"]);
  assert.throws(
    () => parseProcess({ cwd: "/", args: "ls" }, "process.json"),
    (e: unknown) => e instanceof SpecError && e.path === "args" && e.message === "process.json: args: expected an array of strings, got string",
  );
  assert.ok(ProcessSchema.safeParse({ cwd: "/", args: ["x"] }).success);
});

// ---------------------------------------------------------------------------
// hooks

test("hook path must be absolute and timeout positive", () => {
  parseSpec(mutate((s) => (s.hooks = { poststart: [{ path: "/usr/bin/notify", timeout: 5 }] })));
  rejects(
    mutate((s) => (s.hooks = { prestart: [{ path: "/bin/true" }, { path: "fix-mounts" }] })),
    "hooks.prestart[1].path",
    /expected an absolute path, got "fix-mounts"$/,
  );
  rejects(
    mutate((s) => (s.hooks = { createRuntime: [{ path: "/bin/true", timeout: 0 }] })),
    "hooks.createRuntime[0].timeout",
    /greater than zero/,
  );
});

// ---------------------------------------------------------------------------
// unknown keys

test("unknown top-level key is tolerated", () => {
  const s = parseSpec(mutate((s) => (s["org.example.extension"] = { anything: [1, 2, 3] })));
  assert.equal(s.hostname, "runc");
  // Other platforms' sections are unknown to a Linux runtime but still valid.
  parseSpec(mutate((s) => (s.windows = { layerFolders: [] })));
});

test("nested unknown keys are tolerated", () => {
  const s = parseSpec(
    mutate((s) => {
      s.process.futureField = true;
      s.linux.namespaces[0].extra = "x";
      s.linux.resources.devices[0].newThing = 1;
      s.mounts[0].somethingElse = {};
    }),
  );
  assert.equal(s.linux!.namespaces![0]!.type, "pid");
});

// ---------------------------------------------------------------------------
// linux details

test("mounts: relative destinations are accepted, mappings must come in pairs", () => {
  parseSpec(mutate((s) => (s.mounts[0].destination = "proc")));
  const m = { containerID: 0, hostID: 1000, size: 1 };
  parseSpec(mutate((s) => Object.assign(s.mounts[1], { uidMappings: [m], gidMappings: [m] })));
  rejects(mutate((s) => (s.mounts[1].uidMappings = [m])), "mounts[1].gidMappings", /together/);
});

test("timeOffsets only accepts monotonic and boottime", () => {
  const s = parseSpec(mutate((s) => (s.linux.timeOffsets = { monotonic: { secs: 10, nanosecs: 5 }, boottime: { secs: -3 } })));
  assert.equal(s.linux!.timeOffsets!.monotonic!.secs, 10);
  rejects(mutate((s) => (s.linux.timeOffsets = { realtime: { secs: 1 } })), "linux.timeOffsets", /unknown clock "realtime"/);
});

test("resources: -1 memory limit and large values are accepted, fractions are not", () => {
  parseSpec(mutate((s) => (s.linux.resources.memory = { limit: -1, swap: -1, reservation: 9007199254740993 })));
  rejects(mutate((s) => (s.linux.resources.memory = { limit: 1.5 })), "linux.resources.memory.limit", /int64.*got 1\.5$/);
  // runtime-spec 1.3: pids.limit is optional (an empty pids object sets nothing)
  assert.deepEqual(parseSpec(mutate((s) => (s.linux.resources.pids = {}))).linux!.resources!.pids, {});
  rejects(mutate((s) => (s.linux.resources.pids = { limit: 0.5 })), "linux.resources.pids.limit", /int64/);
});

test("devices need a known type and major/minor unless type is p", () => {
  parseSpec(mutate((s) => (s.linux.devices = [{ path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 438 }])));
  parseSpec(mutate((s) => (s.linux.devices = [{ path: "/dev/fifo", type: "p" }])));
  rejects(mutate((s) => (s.linux.devices = [{ path: "/dev/x", type: "x", major: 1, minor: 1 }])), "linux.devices[0].type", /invalid value "x"/);
  rejects(mutate((s) => (s.linux.devices = [{ path: "/dev/x", type: "b", minor: 1 }])), "linux.devices[0].major", /missing required field/);
});

test("rootfsPropagation, masked paths and annotations are checked", () => {
  parseSpec(mutate((s) => (s.linux.rootfsPropagation = "slave")));
  parseSpec(mutate((s) => (s.linux.rootfsPropagation = "rshared")));
  rejects(mutate((s) => (s.linux.rootfsPropagation = "nope")), "linux.rootfsPropagation", /invalid value "nope"/);
  rejects(mutate((s) => s.linux.maskedPaths.push("proc/kcore")), "linux.maskedPaths[10]", /absolute path/);
  parseSpec(mutate((s) => (s.annotations = { "com.example.key": "v", "org.opencontainers.image.os": "" })));
  rejects(mutate((s) => (s.annotations = { "com.example.key": 2 })), 'annotations["com.example.key"]', /expected a string, got number$/);
  rejects(mutate((s) => (s.annotations = { "": "x" })), 'annotations[""]', /must not be empty/);
});

test("custom source names appear in messages and SpecSchema is usable directly", () => {
  rejects(mutate((s) => (s.hostname = 1)), "hostname", /expected a string/, "/bundle/config.json");
  const r = SpecSchema.safeParse(base());
  assert.ok(r.success);
  const typed: Spec = r.data;
  assert.equal(typed.ociVersion, "1.3.0");
});
