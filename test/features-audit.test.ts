// Nothing accepted and silently ignored (issue 12, point 25): every field the config.json schema accepts has
// a pinned decision here — applied, refused (with the message validateSpec gives), warned about as runc does,
// or left to the LSM work (issue 14) — and `tsrun features` claims exactly what is applied. A field added to
// the schema without a decision, or a decision left for a field that is gone, fails this test.
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { z } from "zod";
import { TsrunError } from "../src/errors";
import type { HostFacts } from "../src/plan/host";
import { MPOL_FLAGS, MPOL_MODES, NAMESPACES } from "../src/plan/linux";
import { parseMountOptions } from "../src/plan/mounts";
import { features } from "../src/runtime/features";
import { defaultSpec } from "../src/spec/default";
import { type Spec, SpecSchema, parseSpec } from "../src/spec/schema";
import { validateSpec } from "../src/spec/validate";

type Decision =
  | { applied: string } // where it is applied
  | { refused: string; patch: (s: Spec) => void } // validateSpec's message for a value tsrun does not apply
  | { warned: string } // runc's warning, and where tsrun gives it
  | { ignored: string }; // accepted and not applied, with the reason it is not a silent drop

// Decisions by field path ([] an array item, {} a record value); a path's decision covers the fields below.
const DECISIONS: Record<string, Decision> = {
  ociVersion: { applied: "schema: 1.0.0 to 1.3.x" },
  "root.path": { applied: "the rootfs" },
  "root.readonly": { applied: "OP_REMOUNT_RO /" },
  hostname: { applied: "OP_HOSTNAME" },
  domainname: { applied: "OP_DOMAINNAME" },
  mounts: { applied: "mounts.ts (OP_MOUNT, OP_OPEN_TREE for idmapped binds)" },
  hooks: { applied: "hooks.ts and OP_HOOK" },
  annotations: { ignored: "metadata for the caller: in the state, never an instruction to the runtime (runc alike)" },
  "process.terminal": { applied: "OP_CONSOLE" },
  "process.consoleSize": { applied: "OP_CONSOLE rows/cols" },
  "process.user.uid": { applied: "OP_SET_USER" },
  "process.user.gid": { applied: "OP_SET_USER" },
  "process.user.umask": { applied: "OP_UMASK" },
  "process.user.additionalGids": { applied: "OP_SET_USER" },
  "process.user.username": {
    refused: "config.json: process.user.username is for Windows containers only; tsrun does not apply it",
    patch: (s) => (s.process!.user!.username = "u"),
  },
  "process.args": { applied: "OP_EXEC" },
  "process.commandLine": {
    refused: "config.json: process.commandLine is for Windows containers only; tsrun does not apply it",
    patch: (s) => (s.process!.commandLine = "cmd"),
  },
  "process.env": { applied: "OP_EXEC" },
  "process.cwd": { applied: "OP_CHDIR" },
  "process.capabilities": { applied: "OP_CAPS_BOUNDING, OP_CAPS" },
  "process.rlimits": { applied: "OP_RLIMIT" },
  "process.noNewPrivileges": { applied: "OP_NO_NEW_PRIVS" },
  "process.apparmorProfile": { applied: "OP_LSM_ATTR (attr/apparmor/exec before execve; the kernel refuses it where AppArmor is off, as runc)" },
  "process.oomScoreAdj": { applied: "oom_score_adj (OP_WRITE_FILE)" },
  "process.scheduler": { applied: "OP_SCHED_ATTR" },
  "process.selinuxLabel": { applied: "OP_LSM_ATTR (attr/exec before execve; refused where SELinux is off, as runc's validator)" },
  "process.ioPriority": { applied: "OP_IOPRIO" },
  "process.execCPUAffinity": { applied: "OP_CPU_AFFINITY (exec)" },
  "linux.uidMappings": { applied: "uid_map" },
  "linux.gidMappings": { applied: "gid_map" },
  "linux.sysctl": { applied: "OP_SYSCTL" },
  "linux.resources": { applied: "src/cgroups (settings the host's cgroup version has no file for are warned about as runc)" },
  "linux.resources.memory.kernel": { warned: '"Kernel memory settings are ignored and will be removed" (runc; CgroupManager.apply)' },
  "linux.resources.memory.kernelTCP": { warned: '"Kernel memory settings are ignored and will be removed" (runc; CgroupManager.apply)' },
  "linux.cgroupsPath": { applied: "src/cgroups/paths.ts" },
  "linux.namespaces": { applied: "OP_UNSHARE, OP_OPEN_NS/OP_SETNS" },
  "linux.devices": { applied: "OP_DEVICE and the device cgroup" },
  "linux.netDevices": { applied: "src/runtime/netdev.ts at SYNC_HOOKS" },
  "linux.seccomp": { applied: "src/seccomp, OP_SECCOMP" },
  "linux.rootfsPropagation": { applied: "OP_ROOT_PROPAGATION" },
  "linux.maskedPaths": { applied: "OP_MASK_PATH" },
  "linux.readonlyPaths": { applied: "OP_READONLY_PATH" },
  "linux.mountLabel": { applied: "context=\"…\" on new filesystems (formatMountLabel in build.ts; the kernel refuses it where SELinux is off, as runc)" },
  "linux.intelRdt": { refused: "config.json: linux.intelRdt is not supported by tsrun", patch: (s) => (s.linux!.intelRdt = { closID: "x" }) },
  "linux.memoryPolicy": { applied: "OP_MEMPOLICY (init and exec)" },
  "linux.personality.domain": { applied: "OP_PERSONALITY" },
  "linux.personality.flags": {
    refused: "config.json: linux.personality.flags: no personality flag is defined (runtime-spec), so none can be applied",
    patch: (s) => (s.linux!.personality = { domain: "LINUX", flags: ["F"] }),
  },
  "linux.timeOffsets": { applied: "timens_offsets (OP_WRITE_FILE)" },
};

// zod's definition of a schema, as far as the walk needs it.
interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
}
const defOf = (t: z.ZodType) => (t as unknown as { _zod: { def: Def } })._zod.def;

// Every leaf field path of a schema.
function leaves(t: z.ZodType, at: string, out: string[]): string[] {
  const d = defOf(t);
  switch (d.type) {
    case "object":
      for (const [k, v] of Object.entries(d.shape!)) leaves(v, at ? `${at}.${k}` : k, out);
      return out;
    case "optional":
    case "nullable":
    case "default":
    case "readonly":
      return leaves(d.innerType!, at, out);
    case "array":
      return leaves(d.element!, `${at}[]`, out);
    case "record":
      return leaves(d.valueType!, `${at}{}`, out);
    case "pipe":
      return leaves(d.in!, at, out);
    default:
      out.push(at);
      return out;
  }
}

// The decision of a path: its own, else that of the nearest field above it.
function decisionOf(p: string): [string, Decision] | undefined {
  const parts = p.replace(/\[\]|\{\}/g, "").split(".");
  for (let n = parts.length; n > 0; n--) {
    const q = parts.slice(0, n).join(".");
    if (DECISIONS[q]) return [q, DECISIONS[q]];
  }
  return undefined;
}

const HOST: HostFacts = { uid: 0, home: "/root", hasKcore: true, sharedNamespaces: [], bindSources: {} };
const TTY = { socket: false, receiver: false };

function base(): Spec {
  const s = defaultSpec({ cgroupNamespace: false });
  s.process!.terminal = false;
  return s;
}

describe("features audit: every config.json field has a decision", () => {
  const fields = leaves(SpecSchema as unknown as z.ZodType, "", []);

  test("each field the schema accepts is applied, refused, warned about or knowingly left", () => {
    assert.ok(fields.length > 100 && fields.includes("linux.resources.pids.limit") && fields.includes("linux.netDevices{}.name"), "the walk reaches every field");
    const undecided = fields.filter((f) => !decisionOf(f));
    assert.deepEqual(undecided, [], `fields without a decision: ${undecided.join(", ")}`);
  });

  test("no decision is left for a field the schema no longer has", () => {
    const used = new Set(fields.map((f) => decisionOf(f)?.[0]));
    const stale = Object.keys(DECISIONS).filter((k) => !used.has(k));
    assert.deepEqual(stale, []);
  });

  test("each refused field is refused by validateSpec, in the pinned words", () => {
    validateSpec(parseSpec(base()), HOST, TTY); // the base passes
    for (const [field, d] of Object.entries(DECISIONS)) {
      if (!("refused" in d)) continue;
      const s = base();
      d.patch(s);
      assert.throws(
        () => validateSpec(parseSpec(JSON.parse(JSON.stringify(s))), HOST, TTY),
        (e: unknown) => e instanceof TsrunError && e.message === d.refused,
        field,
      );
    }
  });
});

describe("features audit: `features` lists exactly what is applied", () => {
  const f = features() as {
    ociVersionMin: string;
    ociVersionMax: string;
    hooks: string[];
    mountOptions: string[];
    linux: {
      namespaces: string[];
      apparmor: { enabled: boolean };
      selinux: { enabled: boolean };
      intelRdt: { enabled: boolean };
      memoryPolicy: { modes: string[]; flags: string[] };
      netDevices: { enabled: boolean };
      mountExtensions: { idmap: { enabled: boolean } };
      cgroup: Record<string, boolean>;
    };
  };

  test("the ociVersion range is what the schema accepts", () => {
    assert.equal(f.ociVersionMin, "1.0.0");
    assert.equal(f.ociVersionMax, "1.3.0");
    for (const v of [f.ociVersionMin, f.ociVersionMax]) parseSpec({ ...base(), ociVersion: v });
    assert.throws(() => parseSpec({ ...base(), ociVersion: "1.4.0" }));
  });

  test("hooks, namespaces and mount options listed are all taken", () => {
    const hookFields = fields("hooks");
    assert.deepEqual([...f.hooks].sort(), hookFields.sort());
    assert.deepEqual([...f.linux.namespaces].sort(), Object.keys(NAMESPACES).sort());
    for (const o of f.mountOptions) {
      const takenBy = ["bind", "tmpfs"].filter((type) => {
        try {
          parseMountOptions(type === "bind" ? ["bind", o] : [o], type, `option ${o}`);
          return true;
        } catch {
          return false;
        }
      });
      assert.ok(takenBy.length > 0, `mount option ${o} is listed but refused`);
    }
  });

  test("a feature claimed enabled is a field applied; one disabled is refused", () => {
    const claims: [boolean, string][] = [
      [f.linux.netDevices.enabled, "linux.netDevices"],
      [f.linux.intelRdt.enabled, "linux.intelRdt"],
    ];
    // linux.apparmor / linux.selinux "enabled" say whether the host has the LSM (runc), not whether tsrun applies it
    for (const field of ["process.apparmorProfile", "process.selinuxLabel"]) assert.ok("applied" in DECISIONS[field]!, field);
    for (const [enabled, field] of claims) assert.equal(enabled, "applied" in DECISIONS[field]!, `${field}: features says ${enabled ? "enabled" : "disabled"}`);
    assert.equal(f.linux.mountExtensions.idmap.enabled, true);
    assert.equal(f.linux.cgroup.systemd, true, "the systemd cgroup driver (src/cgroups/systemd)");
  });

  test("memoryPolicy lists exactly the modes and flags validateSpec takes", () => {
    assert.deepEqual(f.linux.memoryPolicy.modes, Object.keys(MPOL_MODES).sort());
    assert.deepEqual(f.linux.memoryPolicy.flags, Object.keys(MPOL_FLAGS).sort());
    for (const mode of f.linux.memoryPolicy.modes) {
      const s = base();
      s.linux!.memoryPolicy = { mode, flags: f.linux.memoryPolicy.flags.slice(0, 1), ...(mode === "MPOL_DEFAULT" || mode === "MPOL_LOCAL" ? {} : { nodes: "0" }) };
      validateSpec(parseSpec(s), HOST, TTY);
    }
  });
});

function fields(of: "hooks"): string[] {
  const d = defOf(SpecSchema as unknown as z.ZodType).shape![of]!;
  return Object.keys(defOf(defOf(d).innerType!).shape!);
}
