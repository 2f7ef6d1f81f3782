// REQUIRED properties of config.md and config-linux.md: a config without one is invalid, and a runtime MUST
// generate an error for it (config.md#valid-values) and create nothing. One case per property; each leaves
// out just that property from an object that is otherwise valid.
import type { Case } from "../harness/case";
import { deleteRaw, type Config } from "../harness/config";
import { addHook, addMount, linux, proc, refusedAtCreate, refusedAtCreateOrStart, setNamespace, USERNS_MAP } from "../harness/dsl";

interface RequiredField {
  field: string; // the property's JSON path, as the spec names it
  spec: string;
  process?: boolean; // a process property: the runtime may refuse it at start
  since?: string;
  patch: (c: Config) => void;
}

const NULL_DEVICE = () => ({ type: "c", path: "/dev/spec-null", major: 1, minor: 3 });

const without = <T extends object>(o: T, key: string): T => {
  deleteRaw(o, key);
  return o;
};

export const REQUIRED_FIELDS: RequiredField[] = [
  { field: "root.path", spec: "config.md#root", patch: (c) => void without(c.root!, "path") },
  { field: "mounts[].destination", spec: "config.md#mounts", patch: (c) => addMount(c, without({ destination: "/spec-mnt", type: "tmpfs", source: "tmpfs" }, "destination")) },
  { field: "process.cwd", spec: "config.md#process", process: true, patch: (c) => void without(proc(c), "cwd") },
  { field: "process.consoleSize.height", spec: "config.md#process", process: true, patch: (c) => void (proc(c).consoleSize = without({ height: 10, width: 10 }, "height")) },
  { field: "process.rlimits[].type", spec: "config.md#posix-process", process: true, patch: (c) => void (proc(c).rlimits = [without({ type: "RLIMIT_CORE", soft: 0, hard: 0 }, "type")]) },
  { field: "process.rlimits[].soft", spec: "config.md#posix-process", process: true, patch: (c) => void (proc(c).rlimits = [without({ type: "RLIMIT_CORE", soft: 0, hard: 0 }, "soft")]) },
  { field: "process.rlimits[].hard", spec: "config.md#posix-process", process: true, patch: (c) => void (proc(c).rlimits = [without({ type: "RLIMIT_CORE", soft: 0, hard: 0 }, "hard")]) },
  { field: "process.user.uid", spec: "config.md#posix-platform-user", process: true, patch: (c) => void (proc(c).user = without({ uid: 0, gid: 0 }, "uid")) },
  { field: "process.user.gid", spec: "config.md#posix-platform-user", process: true, patch: (c) => void (proc(c).user = without({ uid: 0, gid: 0 }, "gid")) },
  { field: "process.scheduler.policy", spec: "config.md#linux-process", process: true, since: "1.1.0", patch: (c) => void (proc(c).scheduler = without({ policy: "SCHED_OTHER", nice: 1 }, "policy")) },
  { field: "process.ioPriority.class", spec: "config.md#linux-process", process: true, since: "1.1.0", patch: (c) => void (proc(c).ioPriority = without({ class: "IOPRIO_CLASS_BE", priority: 4 }, "class")) },
  { field: "hooks.*[].path", spec: "config.md#posix-platform-hooks", patch: (c) => addHook(c, "prestart", without({ path: "/bin/true", args: ["true"] }, "path")) },
  { field: "linux.namespaces[].type", spec: "config-linux.md#namespaces", patch: (c) => void linux(c).namespaces!.push(without({ type: "ipc" }, "type")) },
  {
    field: "linux.uidMappings[].size",
    spec: "config-linux.md#user-namespace-mappings",
    patch: (c) => {
      setNamespace(c, "user");
      linux(c).uidMappings = [without({ ...USERNS_MAP }, "size")];
      linux(c).gidMappings = [{ ...USERNS_MAP }];
    },
  },
  { field: "linux.devices[].type", spec: "config-linux.md#devices", patch: (c) => void (linux(c).devices = [without(NULL_DEVICE(), "type")]) },
  { field: "linux.devices[].path", spec: "config-linux.md#devices", patch: (c) => void (linux(c).devices = [without(NULL_DEVICE(), "path")]) },
  { field: "linux.devices[].major", spec: "config-linux.md#devices", patch: (c) => void (linux(c).devices = [without(NULL_DEVICE(), "major")]) },
  { field: "linux.resources.devices[].allow", spec: "config-linux.md#allowed-device-list", patch: (c) => void (linux(c).resources = { devices: [without({ allow: false, access: "rwm" }, "allow")] }) },
  // (linux.resources.pids.limit was REQUIRED until runtime-spec 1.3, which made it OPTIONAL)
  {
    field: "linux.resources.hugepageLimits[].pageSize",
    spec: "config-linux.md#huge-page-limits",
    patch: (c) => void (linux(c).resources = { hugepageLimits: [without({ pageSize: "2MB", limit: 4194304 }, "pageSize")] }),
  },
  {
    field: "linux.resources.blockIO.throttleReadBpsDevice[].rate",
    spec: "config-linux.md#block-io",
    patch: (c) => void (linux(c).resources = { blockIO: { throttleReadBpsDevice: [without({ major: 254, minor: 0, rate: 1 }, "rate")] } }),
  },
  {
    field: "linux.resources.network.priorities[].name",
    spec: "config-linux.md#network",
    patch: (c) => void (linux(c).resources = { network: { priorities: [without({ name: "lo", priority: 1 }, "name")] } }),
  },
  { field: "linux.seccomp.defaultAction", spec: "config-linux.md#seccomp", patch: (c) => void (linux(c).seccomp = without({ defaultAction: "SCMP_ACT_ALLOW" }, "defaultAction")) },
  {
    field: "linux.seccomp.syscalls[].action",
    spec: "config-linux.md#seccomp",
    patch: (c) => void (linux(c).seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [without({ names: ["reboot"], action: "SCMP_ACT_ERRNO" }, "action")] }),
  },
  {
    field: "linux.seccomp.syscalls[].args[].op",
    spec: "config-linux.md#seccomp",
    patch: (c) => void (linux(c).seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["reboot"], action: "SCMP_ACT_ERRNO", args: [without({ index: 0, value: 1, op: "SCMP_CMP_EQ" }, "op")] }] }),
  },
  { field: "linux.personality.domain", spec: "config-linux.md#personality", patch: (c) => void (linux(c).personality = without({ domain: "LINUX" }, "domain")) },
];

export const requiredCaseId = (field: string): string => `config.required.${field.replace(/\[\]/g, "").replace(/\*/g, "any")}`;

export const configRequired: Case[] = REQUIRED_FIELDS.map((f) => ({
  id: requiredCaseId(f.field),
  spec: f.spec,
  level: "MUST",
  title: `${f.field} is REQUIRED: a config without it is an error${f.process ? " (at create or start)" : ""}`,
  ...(f.since ? { since: f.since } : {}),
  bundle: f.patch,
  steps: f.process ? refusedAtCreateOrStart(`without ${f.field}`) : refusedAtCreate(),
}));
