/**
 * Zod schema for the OCI runtime-spec `config.json` (Linux subset).
 *
 * Field names, types and required-ness follow runtime-spec v1.3.x
 * (config.md, config-linux.md, schema/*.json, specs-go/config.go), with its
 * Linux additions `linux.netDevices` and `linux.memoryPolicy` and an optional
 * `pids.limit`.  What tsrun does with each field (applied, refused, warned
 * about) is pinned in test/features-audit.test.ts.
 *
 * Decisions where the spec leaves room (see also the comments on each item):
 *  - Unknown properties never cause an error (config.md "Extensibility": runtimes
 *    MUST ignore unknown properties).  Every object here is built by `obj()`,
 *    which strips unknown keys, so the inferred TypeScript types stay exact (no
 *    index signatures).  Non-Linux platform sections (windows, solaris, vm, zos,
 *    freebsd) are therefore accepted and dropped.  Switching to pass-through is a
 *    one-line change in `obj()` (use z.looseObject).
 *  - `root` is REQUIRED: config.md says it is optional only on Windows ("On all
 *    other platforms, this field is REQUIRED").  `root.path` may be relative to
 *    the bundle.
 *  - `process` is OPTIONAL here: config.md makes it REQUIRED only when `start` is
 *    called, so the runtime checks for it at that point, not at parse time.
 *  - `process.cwd` is REQUIRED and MUST be absolute (config.md).
 *  - `process.args` is REQUIRED with at least one entry: config.md says "at least
 *    one entry is REQUIRED (non-Windows)", and runc also rejects a missing or
 *    empty `args` ("args must not be empty").
 *  - `process.user` is optional (the JSON schema does not require it; Go decodes
 *    a missing one as uid 0 / gid 0), but when present `uid` and `gid` are
 *    REQUIRED as config.md states for POSIX platforms.
 *  - Mount `destination` may be relative on Linux: runtime-spec 1.2 says it
 *    SHOULD be absolute, a relative one is deprecated and MUST be interpreted
 *    relative to "/".  It is accepted here; the runtime resolves it.
 *  - `ociVersion` must be SemVer 2.0.0 with major 1 and minor 0..2 (any patch,
 *    pre-release and build metadata allowed).
 *  - Integers: the JSON schema's ranges are applied.  uint64/int64 fields accept
 *    any integral JSON number in range; numbers past 2^53 lose precision in
 *    JavaScript and are accepted as they parse (2^64-1 parses as 2^64, so that
 *    is the accepted upper bound for uint64).
 *  - Cheap MUST-level semantic checks are done here: duplicate namespace types,
 *    duplicate rlimit types, absolute hook paths, absolute namespace paths,
 *    absolute masked/readonly paths, positive hook timeouts, env entries of the
 *    form KEY=value, mount uidMappings/gidMappings given together, device
 *    major/minor present unless type is "p", seccomp listenerMetadata only with
 *    listenerPath, at least one of weight/leafWeight and of
 *    hcaHandles/hcaObjects, non-empty annotation keys, timeOffsets clock names.
 *  - `linux.rootfsPropagation` also accepts the recursive r* forms runc accepts.
 */
import { z } from "zod";
import { SECCOMP_ACTIONS, SECCOMP_ARCHES, SECCOMP_FLAGS, SECCOMP_OPERATORS } from "./seccomp-enums";

// ---------------------------------------------------------------------------
// Helpers

/** Objects tolerate (and drop) unknown keys. */
function obj<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.object(shape);
}

/** Array whose own type errors read "expected an array of <what>". */
function list<T extends z.ZodType>(item: T, what: string) {
  return z.array(item, { error: `expected an array of ${what}` });
}

/** An integral JSON number in [min, max]; `label` describes it in errors. */
function integer(min: number, max: number, label: string) {
  const msg = `expected ${label}`;
  return z
    .number({ error: msg })
    .refine((v) => Number.isInteger(v) && v >= min && v <= max, { error: msg });
}

const TWO_32 = 4294967296;
const TWO_63 = 9223372036854775808; // 2^63, the double nearest to int64 max
const TWO_64 = 18446744073709551616; // 2^64, the double nearest to uint64 max

const uint16 = () => integer(0, 65535, "an integer from 0 to 65535 (uint16)");
const uint32 = () => integer(0, TWO_32 - 1, "an integer from 0 to 4294967295 (uint32)");
const int32 = () => integer(-2147483648, 2147483647, "an integer from -2147483648 to 2147483647 (int32)");
const uint64 = () => integer(0, TWO_64, "a non-negative integer (uint64)");
const int64 = () => integer(-TWO_63, TWO_63, "an integer (int64)");

const str = () => z.string();
const bool = () => z.boolean();
const stringList = () => list(z.string(), "strings");
const stringMap = () => z.record(z.string(), z.string());

function isAbsolute(p: string): boolean {
  return p.startsWith("/");
}

/** A string that must be an absolute path. */
const absPath = () =>
  z.string().refine(isAbsolute, { error: "expected an absolute path" });

/** Environment entries: KEY=value with a non-empty KEY and no NUL byte. */
const EnvEntrySchema = z
  .string()
  .refine((s) => /^[^=\0]+=[^\0]*$/.test(s), {
    error: "expected an environment entry of the form KEY=value",
  });
const envList = () => list(EnvEntrySchema, "KEY=value strings");

/** A string enum; parse errors list the values ("expected one of ..."). */
function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values);
}

// ---------------------------------------------------------------------------
// Enumerations fixed by the spec

export const NAMESPACE_TYPES = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"] as const;
export const NamespaceTypeSchema = oneOf(NAMESPACE_TYPES);
export type NamespaceType = z.infer<typeof NamespaceTypeSchema>;

/** The resource names getrlimit(2) knows on Linux. */
export const RLIMIT_TYPES = [
  "RLIMIT_AS",
  "RLIMIT_CORE",
  "RLIMIT_CPU",
  "RLIMIT_DATA",
  "RLIMIT_FSIZE",
  "RLIMIT_LOCKS",
  "RLIMIT_MEMLOCK",
  "RLIMIT_MSGQUEUE",
  "RLIMIT_NICE",
  "RLIMIT_NOFILE",
  "RLIMIT_NPROC",
  "RLIMIT_RSS",
  "RLIMIT_RTPRIO",
  "RLIMIT_RTTIME",
  "RLIMIT_SIGPENDING",
  "RLIMIT_STACK",
] as const;
export type RlimitType = (typeof RLIMIT_TYPES)[number];

export { SECCOMP_ACTIONS, SECCOMP_ARCHES, SECCOMP_FLAGS, SECCOMP_OPERATORS } from "./seccomp-enums";
export type { SeccompAction, SeccompArch, SeccompOperator } from "./seccomp-enums";

/**
 * config-linux.md lists private, shared, slave and unbindable.  runc also
 * accepts the recursive forms, and real configs use them (containerd's CRI
 * plugin and Docker's managed plugins write "rshared"), so they are accepted
 * too.
 */
export const ROOTFS_PROPAGATIONS = [
  "private",
  "shared",
  "slave",
  "unbindable",
  "rprivate",
  "rshared",
  "rslave",
  "runbindable",
] as const;
export const PERSONALITY_DOMAINS = ["LINUX", "LINUX32"] as const;
export const IOPRIO_CLASSES = ["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"] as const;

export const SCHEDULER_POLICIES = [
  "SCHED_OTHER",
  "SCHED_FIFO",
  "SCHED_RR",
  "SCHED_BATCH",
  "SCHED_ISO",
  "SCHED_IDLE",
  "SCHED_DEADLINE",
] as const;

export const SCHEDULER_FLAGS = [
  "SCHED_FLAG_RESET_ON_FORK",
  "SCHED_FLAG_RECLAIM",
  "SCHED_FLAG_DL_OVERRUN",
  "SCHED_FLAG_KEEP_POLICY",
  "SCHED_FLAG_KEEP_PARAMS",
  "SCHED_FLAG_UTIL_CLAMP_MIN",
  "SCHED_FLAG_UTIL_CLAMP_MAX",
] as const;

export const TIME_NAMESPACE_CLOCKS = ["monotonic", "boottime"] as const;

// ---------------------------------------------------------------------------
// ociVersion

/** Accepted range of `ociVersion`, used in error messages. */
export const SUPPORTED_OCI_VERSIONS = "a SemVer version from 1.0.0 to 1.3.x";

// SemVer 2.0.0: MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], no leading zeros in
// numeric identifiers.
const NUM_ID = "(?:0|[1-9][0-9]*)";
const PRE_ID = "(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)";
const SEMVER_RE = new RegExp(
  `^(${NUM_ID})\\.(${NUM_ID})\\.(${NUM_ID})` +
    `(?:-${PRE_ID}(?:\\.${PRE_ID})*)?` +
    `(?:\\+[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?$`,
);

/** True when `v` is a SemVer string in the 1.0.0 .. 1.3.x range. */
export function isSupportedOciVersion(v: string): boolean {
  const m = SEMVER_RE.exec(v);
  if (!m) return false;
  return Number(m[1]) === 1 && Number(m[2]) <= 3;
}

export const OciVersionSchema = z.string().superRefine((v, ctx) => {
  if (isSupportedOciVersion(v)) return;
  const what = SEMVER_RE.test(v) ? "unsupported" : "invalid";
  ctx.addIssue({
    code: "custom",
    message: `${what} ociVersion ${JSON.stringify(v)} (expected ${SUPPORTED_OCI_VERSIONS})`,
  });
});

// ---------------------------------------------------------------------------
// Shared pieces

export const LinuxIDMappingSchema = obj({
  containerID: uint32(),
  hostID: uint32(),
  size: uint32(),
});
export type LinuxIDMapping = z.infer<typeof LinuxIDMappingSchema>;

const idMappings = () => list(LinuxIDMappingSchema, "ID mappings");

// ---------------------------------------------------------------------------
// root

export const RootSchema = obj({
  path: str(),
  readonly: bool().optional(),
});
export type Root = z.infer<typeof RootSchema>;

// ---------------------------------------------------------------------------
// mounts

export const MountSchema = obj({
  // Linux: SHOULD be absolute; relative is deprecated and resolved against "/".
  destination: str(),
  type: str().optional(),
  source: str().optional(),
  options: stringList().optional(),
  uidMappings: idMappings().optional(),
  gidMappings: idMappings().optional(),
}).superRefine((m, ctx) => {
  const hasUid = m.uidMappings !== undefined;
  const hasGid = m.gidMappings !== undefined;
  if (hasUid !== hasGid) {
    ctx.addIssue({
      code: "custom",
      path: [hasUid ? "gidMappings" : "uidMappings"],
      message: "uidMappings and gidMappings must be specified together",
    });
  }
});
export type Mount = z.infer<typeof MountSchema>;

// ---------------------------------------------------------------------------
// process

export const CapabilityNameSchema = z
  .string({ error: "expected a capability name such as CAP_CHOWN" })
  .regex(/^CAP_[A-Z_]+$/, { error: "expected a capability name such as CAP_CHOWN" });

const capList = () => list(CapabilityNameSchema, "capability names");

export const CapabilitiesSchema = obj({
  bounding: capList().optional(),
  effective: capList().optional(),
  inheritable: capList().optional(),
  permitted: capList().optional(),
  ambient: capList().optional(),
});
export type Capabilities = z.infer<typeof CapabilitiesSchema>;

export const RlimitSchema = obj({
  type: oneOf(RLIMIT_TYPES),
  hard: uint64(),
  soft: uint64(),
});
export type Rlimit = z.infer<typeof RlimitSchema>;

export const UserSchema = obj({
  uid: uint32(),
  gid: uint32(),
  umask: uint32().optional(),
  additionalGids: list(uint32(), "group IDs").optional(),
  username: str().optional(),
});
export type User = z.infer<typeof UserSchema>;

export const ConsoleSizeSchema = obj({
  height: uint64(),
  width: uint64(),
});

export const SchedulerSchema = obj({
  policy: oneOf(SCHEDULER_POLICIES),
  nice: int32().optional(),
  priority: int32().optional(),
  flags: list(oneOf(SCHEDULER_FLAGS), "scheduler flags").optional(),
  runtime: uint64().optional(),
  deadline: uint64().optional(),
  period: uint64().optional(),
});
export type Scheduler = z.infer<typeof SchedulerSchema>;

export const IOPrioritySchema = obj({
  class: oneOf(IOPRIO_CLASSES),
  // config.md: "an integer ranging from 0 (highest) to 7 (lowest)"; runc
  // rejects anything else.  The JSON schema does not require it (defaults to 0).
  priority: integer(0, 7, "an integer from 0 to 7").optional(),
});
export type IOPriority = z.infer<typeof IOPrioritySchema>;

const cpuList = () =>
  z.string().regex(/^[0-9, -]*$/, { error: "expected a CPU list such as 0-3,7" });

export const CPUAffinitySchema = obj({
  initial: cpuList().optional(),
  final: cpuList().optional(),
});
export type CPUAffinity = z.infer<typeof CPUAffinitySchema>;

export const ProcessSchema = obj({
  terminal: bool().optional(),
  consoleSize: ConsoleSizeSchema.optional(),
  user: UserSchema.optional(),
  // Linux: at least one entry is REQUIRED.
  args: stringList().min(1, { error: "must contain at least one entry" }),
  commandLine: str().optional(),
  env: envList().optional(),
  cwd: absPath(),
  capabilities: CapabilitiesSchema.optional(),
  rlimits: list(RlimitSchema, "rlimit objects")
    .superRefine((rl, ctx) => {
      const seen = new Map<string, number>();
      rl.forEach((r, i) => {
        const first = seen.get(r.type);
        if (first !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: [i, "type"],
            message: `duplicate rlimit type ${JSON.stringify(r.type)} (already set by entry ${first})`,
          });
        } else {
          seen.set(r.type, i);
        }
      });
    })
    .optional(),
  noNewPrivileges: bool().optional(),
  apparmorProfile: str().optional(),
  oomScoreAdj: integer(-1000, 1000, "an integer from -1000 to 1000").optional(),
  scheduler: SchedulerSchema.optional(),
  selinuxLabel: str().optional(),
  ioPriority: IOPrioritySchema.optional(),
  execCPUAffinity: CPUAffinitySchema.optional(),
});
export type Process = z.infer<typeof ProcessSchema>;

// ---------------------------------------------------------------------------
// hooks

export const HookSchema = obj({
  path: absPath(),
  args: stringList().optional(),
  env: envList().optional(),
  timeout: integer(1, Number.MAX_SAFE_INTEGER, "an integer greater than zero (seconds)").optional(),
});
export type Hook = z.infer<typeof HookSchema>;

const hookList = () => list(HookSchema, "hook objects");

export const HooksSchema = obj({
  /** Deprecated in favour of createRuntime/createContainer/startContainer. */
  prestart: hookList().optional(),
  createRuntime: hookList().optional(),
  createContainer: hookList().optional(),
  startContainer: hookList().optional(),
  poststart: hookList().optional(),
  poststop: hookList().optional(),
});
export type Hooks = z.infer<typeof HooksSchema>;

// ---------------------------------------------------------------------------
// linux

export const LinuxNamespaceSchema = obj({
  type: NamespaceTypeSchema,
  path: absPath().optional(),
});
export type LinuxNamespace = z.infer<typeof LinuxNamespaceSchema>;

const namespaceList = () =>
  list(LinuxNamespaceSchema, "namespace objects").superRefine((nss, ctx) => {
    const seen = new Map<string, number>();
    nss.forEach((ns, i) => {
      const first = seen.get(ns.type);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [i, "type"],
          message: `duplicate namespace type ${JSON.stringify(ns.type)} (already given by entry ${first})`,
        });
      } else {
        seen.set(ns.type, i);
      }
    });
  });

export const TimeOffsetSchema = obj({
  secs: int64().optional(),
  nanosecs: uint32().optional(),
});
export type TimeOffset = z.infer<typeof TimeOffsetSchema>;

export const LinuxDeviceSchema = obj({
  path: str(),
  type: oneOf(["c", "b", "u", "p"]),
  major: int64().optional(),
  minor: int64().optional(),
  fileMode: uint32().optional(),
  uid: uint32().optional(),
  gid: uint32().optional(),
}).superRefine((d, ctx) => {
  if (d.type === "p") return;
  for (const k of ["major", "minor"] as const) {
    if (d[k] === undefined) {
      ctx.addIssue({
        code: "custom",
        path: [k],
        message: `missing required field (${k} is required for device type ${JSON.stringify(d.type)})`,
      });
    }
  }
});
export type LinuxDevice = z.infer<typeof LinuxDeviceSchema>;

export const LinuxDeviceCgroupSchema = obj({
  allow: bool(),
  type: oneOf(["a", "c", "b"]).optional(),
  major: int64().optional(),
  minor: int64().optional(),
  // any string, as runc takes it: letters other than r, w and m are dropped by the v1 rules and refused by
  // the v2 device program (runc's devicefilter: "unknown device access")
  access: z.string().optional(),
});
export type LinuxDeviceCgroup = z.infer<typeof LinuxDeviceCgroupSchema>;

export const LinuxMemorySchema = obj({
  // Values in bytes; -1 means unlimited.
  limit: int64().optional(),
  reservation: int64().optional(),
  swap: int64().optional(),
  kernel: int64().optional(),
  kernelTCP: int64().optional(),
  swappiness: uint64().optional(),
  disableOOMKiller: bool().optional(),
  useHierarchy: bool().optional(),
  checkBeforeUpdate: bool().optional(),
});
export type LinuxMemory = z.infer<typeof LinuxMemorySchema>;

export const LinuxCPUSchema = obj({
  shares: uint64().optional(),
  quota: int64().optional(),
  burst: uint64().optional(),
  period: uint64().optional(),
  realtimeRuntime: int64().optional(),
  realtimePeriod: uint64().optional(),
  cpus: str().optional(),
  mems: str().optional(),
  idle: int64().optional(),
});
export type LinuxCPU = z.infer<typeof LinuxCPUSchema>;

export const LinuxPidsSchema = obj({
  // REQUIRED in runtime-spec 1.2, optional since 1.3 (an empty pids object sets nothing); 0 is a real limit
  // since 1.3 (runc >= 1.4 writes pids.max "1"), a negative one is "max".
  limit: int64().optional(),
});
export type LinuxPids = z.infer<typeof LinuxPidsSchema>;

export const LinuxWeightDeviceSchema = obj({
  major: int64(),
  minor: int64(),
  weight: uint16().optional(),
  leafWeight: uint16().optional(),
}).superRefine((d, ctx) => {
  if (d.weight === undefined && d.leafWeight === undefined) {
    ctx.addIssue({ code: "custom", message: "at least one of weight or leafWeight must be specified" });
  }
});
export type LinuxWeightDevice = z.infer<typeof LinuxWeightDeviceSchema>;

export const LinuxThrottleDeviceSchema = obj({
  major: int64(),
  minor: int64(),
  rate: uint64(),
});
export type LinuxThrottleDevice = z.infer<typeof LinuxThrottleDeviceSchema>;

const throttleList = () => list(LinuxThrottleDeviceSchema, "throttle device objects");

export const LinuxBlockIOSchema = obj({
  weight: uint16().optional(),
  leafWeight: uint16().optional(),
  weightDevice: list(LinuxWeightDeviceSchema, "weight device objects").optional(),
  throttleReadBpsDevice: throttleList().optional(),
  throttleWriteBpsDevice: throttleList().optional(),
  throttleReadIOPSDevice: throttleList().optional(),
  throttleWriteIOPSDevice: throttleList().optional(),
});
export type LinuxBlockIO = z.infer<typeof LinuxBlockIOSchema>;

export const LinuxHugepageLimitSchema = obj({
  pageSize: z.string().regex(/^[1-9][0-9]*[KMG]B$/, { error: "expected a page size such as 2MB" }),
  limit: uint64(),
});
export type LinuxHugepageLimit = z.infer<typeof LinuxHugepageLimitSchema>;

export const LinuxNetworkSchema = obj({
  classID: uint32().optional(),
  priorities: list(obj({ name: str(), priority: uint32() }), "interface priority objects").optional(),
});
export type LinuxNetwork = z.infer<typeof LinuxNetworkSchema>;

export const LinuxRdmaSchema = obj({
  hcaHandles: uint32().optional(),
  hcaObjects: uint32().optional(),
}).superRefine((r, ctx) => {
  if (r.hcaHandles === undefined && r.hcaObjects === undefined) {
    ctx.addIssue({ code: "custom", message: "at least one of hcaHandles or hcaObjects must be specified" });
  }
});
export type LinuxRdma = z.infer<typeof LinuxRdmaSchema>;

export const LinuxResourcesSchema = obj({
  devices: list(LinuxDeviceCgroupSchema, "device cgroup rules").optional(),
  memory: LinuxMemorySchema.optional(),
  cpu: LinuxCPUSchema.optional(),
  pids: LinuxPidsSchema.optional(),
  blockIO: LinuxBlockIOSchema.optional(),
  hugepageLimits: list(LinuxHugepageLimitSchema, "hugepage limit objects").optional(),
  network: LinuxNetworkSchema.optional(),
  rdma: z.record(z.string(), LinuxRdmaSchema).optional(),
  unified: stringMap().optional(),
});
export type LinuxResources = z.infer<typeof LinuxResourcesSchema>;

export const LinuxSeccompArgSchema = obj({
  index: integer(0, 5, "an integer from 0 to 5 (syscall argument index)"),
  value: uint64(),
  valueTwo: uint64().optional(),
  op: oneOf(SECCOMP_OPERATORS),
});
export type LinuxSeccompArg = z.infer<typeof LinuxSeccompArgSchema>;

export const LinuxSyscallSchema = obj({
  names: stringList().min(1, { error: "must contain at least one entry" }),
  action: oneOf(SECCOMP_ACTIONS),
  errnoRet: uint32().optional(),
  args: list(LinuxSeccompArgSchema, "syscall argument objects").optional(),
});
export type LinuxSyscall = z.infer<typeof LinuxSyscallSchema>;

export const LinuxSeccompSchema = obj({
  defaultAction: oneOf(SECCOMP_ACTIONS),
  defaultErrnoRet: uint32().optional(),
  architectures: list(oneOf(SECCOMP_ARCHES), "seccomp architectures").optional(),
  flags: list(oneOf(SECCOMP_FLAGS), "seccomp flags").optional(),
  listenerPath: str().optional(),
  listenerMetadata: str().optional(),
  syscalls: list(LinuxSyscallSchema, "syscall rules").optional(),
}).superRefine((s, ctx) => {
  if (s.listenerMetadata !== undefined && s.listenerMetadata !== "" && !s.listenerPath) {
    ctx.addIssue({
      code: "custom",
      path: ["listenerMetadata"],
      message: "must not be set when listenerPath is not set",
    });
  }
});
export type LinuxSeccomp = z.infer<typeof LinuxSeccompSchema>;

export const LinuxIntelRdtSchema = obj({
  closID: str().optional(),
  l3CacheSchema: str().optional(),
  memBwSchema: z
    .string()
    .regex(/^MB:[^\n]*$/, { error: 'expected a single line starting with "MB:"' })
    .optional(),
  enableCMT: bool().optional(),
  enableMBM: bool().optional(),
});
export type LinuxIntelRdt = z.infer<typeof LinuxIntelRdtSchema>;

export const LinuxPersonalitySchema = obj({
  domain: oneOf(PERSONALITY_DOMAINS),
  flags: stringList().optional(),
});
export type LinuxPersonality = z.infer<typeof LinuxPersonalitySchema>;

/** runtime-spec v1.3.0. */
// mode and flags are any string here: validateSpec refuses an unknown one in runc's words.
export const LinuxMemoryPolicySchema = obj({
  mode: str(),
  nodes: str().optional(),
  flags: list(str(), "memory policy flags").optional(),
});
export type LinuxMemoryPolicy = z.infer<typeof LinuxMemoryPolicySchema>;

/** runtime-spec v1.3.0: keyed by the device name on the host. */
export const LinuxNetDeviceSchema = obj({
  name: str().optional(),
});
export type LinuxNetDevice = z.infer<typeof LinuxNetDeviceSchema>;

const absPathList = () => list(absPath(), "absolute paths");

export const LinuxSchema = obj({
  uidMappings: idMappings().optional(),
  gidMappings: idMappings().optional(),
  sysctl: stringMap().optional(),
  resources: LinuxResourcesSchema.optional(),
  cgroupsPath: str().optional(),
  namespaces: namespaceList().optional(),
  devices: list(LinuxDeviceSchema, "device objects").optional(),
  netDevices: z.record(z.string(), LinuxNetDeviceSchema).optional(),
  seccomp: LinuxSeccompSchema.optional(),
  rootfsPropagation: oneOf(ROOTFS_PROPAGATIONS).optional(),
  maskedPaths: absPathList().optional(),
  readonlyPaths: absPathList().optional(),
  mountLabel: str().optional(),
  intelRdt: LinuxIntelRdtSchema.optional(),
  memoryPolicy: LinuxMemoryPolicySchema.optional(),
  personality: LinuxPersonalitySchema.optional(),
  // Only the clocks a time namespace can offset are valid keys.
  timeOffsets: z
    .partialRecord(oneOf(TIME_NAMESPACE_CLOCKS), TimeOffsetSchema, {
      // zod reports extra keys of a partial record as "unrecognized_keys".
      error: (iss: { code?: string; keys?: readonly string[] }) =>
        iss.code === "unrecognized_keys" && iss.keys
          ? `unknown clock ${iss.keys.map((k) => JSON.stringify(k)).join(", ")} (expected one of ${TIME_NAMESPACE_CLOCKS.join(", ")})`
          : undefined,
    })
    .optional(),
});
export type Linux = z.infer<typeof LinuxSchema>;

// ---------------------------------------------------------------------------
// annotations and the whole document

export const AnnotationsSchema = stringMap().superRefine((a, ctx) => {
  if (Object.prototype.hasOwnProperty.call(a, "")) {
    ctx.addIssue({ code: "custom", path: [""], message: "annotation keys must not be empty" });
  }
});

export const SpecSchema = obj({
  ociVersion: OciVersionSchema,
  process: ProcessSchema.optional(),
  // REQUIRED on every platform except Windows (config.md "Root").
  root: RootSchema,
  hostname: str().optional(),
  domainname: str().optional(),
  mounts: list(MountSchema, "mount objects").optional(),
  hooks: HooksSchema.optional(),
  annotations: AnnotationsSchema.optional(),
  linux: LinuxSchema.optional(),
});
export type Spec = z.infer<typeof SpecSchema>;

// ---------------------------------------------------------------------------
// Parsing with one-line errors

/** A config.json (or process.json) validation failure. */
export class SpecError extends Error {
  /** JSON path of the offending value, e.g. `linux.namespaces[2].type` ("" for the document). */
  readonly path: string;
  /** Name of the document, e.g. `config.json`. */
  readonly source: string;
  /** The reason alone, without source and path. */
  readonly reason: string;

  constructor(source: string, path: string, reason: string) {
    super(path ? `${source}: ${path}: ${reason}` : `${source}: ${reason}`);
    this.name = "SpecError";
    this.source = source;
    this.path = path;
    this.reason = reason;
  }
}

const IDENT_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Renders a zod path as `a.b[3]["c.d"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") {
      out += `[${seg}]`;
    } else {
      const key = String(seg);
      if (IDENT_RE.test(key)) out += out ? `.${key}` : key;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

const MISSING = Symbol("missing");

/** The value at `path` inside `root`, or MISSING when a step does not exist. */
function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return MISSING;
    const rec = cur as Record<PropertyKey, unknown>;
    if (!Object.prototype.hasOwnProperty.call(rec, seg)) return MISSING;
    cur = rec[seg];
  }
  return cur;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function show(v: unknown): string {
  if (v === MISSING || v === undefined) return "nothing";
  let s: string;
  try {
    s = JSON.stringify(v) ?? typeName(v);
  } catch {
    s = typeName(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const ARTICLE: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "a boolean",
  object: "an object",
  record: "an object",
  array: "an array",
  null: "null",
};

function describeIssue(issue: z.core.$ZodIssue, value: unknown): string {
  const custom = issue.message.startsWith("expected ");
  switch (issue.code) {
    case "invalid_type": {
      const expected = custom ? issue.message : `expected ${ARTICLE[issue.expected] ?? issue.expected}`;
      if (value === MISSING || value === undefined) {
        return `missing required field (${expected})`;
      }
      return `${expected}, got ${typeName(value)}`;
    }
    case "invalid_value": {
      const choices = issue.values.map((v) => String(v)).join(", ");
      if (value === MISSING || value === undefined) {
        return `missing required field (expected one of ${choices})`;
      }
      return `invalid value ${show(value)} (expected one of ${choices})`;
    }
    case "unrecognized_keys":
      // Only partial records with fixed key sets (timeOffsets) produce this;
      // their messages are already complete.
      return issue.message;
    default:
      break;
  }
  if (custom) return `${issue.message}, got ${show(value)}`;
  return issue.message;
}

function toSpecError(issues: readonly z.core.$ZodIssue[], input: unknown, source: string): SpecError {
  const first = issues[0];
  if (first === undefined) return new SpecError(source, "", "invalid document");
  const path = formatPath(first.path);
  let reason = describeIssue(first, valueAt(input, first.path));
  const more = issues.length - 1;
  if (more > 0) reason += ` (and ${more} more problem${more === 1 ? "" : "s"})`;
  return new SpecError(source, path, reason);
}

/**
 * Validates a parsed config.json.  Throws SpecError with a one-line message
 * naming the JSON path of the first problem.
 */
export function parseSpec(value: unknown, source = "config.json"): Spec {
  const r = SpecSchema.safeParse(value);
  if (r.success) return r.data;
  throw toSpecError(r.error.issues, value, source);
}

/** Validates a process object (e.g. `tsrun exec --process process.json`). */
export function parseProcess(value: unknown, source: string): Process {
  const r = ProcessSchema.safeParse(value);
  if (r.success) return r.data;
  throw toSpecError(r.error.issues, value, source);
}

/**
 * The resources `update -r FILE` takes: linux.resources, where (as in runc's update) pids.limit may be
 * left out to keep the current limit.
 */
export const UpdateResourcesSchema = LinuxResourcesSchema.extend({ pids: LinuxPidsSchema.partial().optional() });
export type UpdateResources = z.infer<typeof UpdateResourcesSchema>;

/** Validates the resources of `tsrun update -r`. */
export function parseResources(value: unknown, source: string): UpdateResources {
  const r = UpdateResourcesSchema.safeParse(value);
  if (r.success) return r.data;
  throw toSpecError(r.error.issues, value, source);
}
