// `tsrun features`: the runtime-spec features.md document, listing only what tsrun implements.
import * as fs from "fs";
import * as os from "os";
import { lsmFacts } from "../plan/host";
import { CAPABILITIES, MPOL_FLAGS, MPOL_MODES, NAMESPACES } from "../plan/linux";
import { MOUNT_OPTIONS } from "../plan/mounts";
import { SUPPORTED_ARCHES } from "../seccomp/arch";
import { SECCOMP_ACTIONS, SECCOMP_FLAGS, SECCOMP_OPERATORS, type SeccompAction } from "../spec/seccomp-enums";

// The kernel's names (/proc/sys/kernel/seccomp/actions_avail) of what each action returns.
const KERNEL_ACTION: Record<SeccompAction, string> = {
  SCMP_ACT_KILL: "kill_thread",
  SCMP_ACT_KILL_PROCESS: "kill_process",
  SCMP_ACT_KILL_THREAD: "kill_thread",
  SCMP_ACT_TRAP: "trap",
  SCMP_ACT_ERRNO: "errno",
  SCMP_ACT_TRACE: "trace",
  SCMP_ACT_ALLOW: "allow",
  SCMP_ACT_LOG: "log",
  SCMP_ACT_NOTIFY: "user_notif",
};

// The kernel release that introduced each filter flag.
const FLAG_SINCE: Record<(typeof SECCOMP_FLAGS)[number], [number, number]> = {
  SECCOMP_FILTER_FLAG_TSYNC: [3, 17],
  SECCOMP_FILTER_FLAG_LOG: [4, 14],
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: [4, 17],
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: [5, 19],
};

// The OCI actions the kernel offers (also `tsrun check`'s).
export function seccompActions(): SeccompAction[] {
  let avail: string[];
  try {
    avail = fs.readFileSync("/proc/sys/kernel/seccomp/actions_avail", "utf8").trim().split(/\s+/);
  } catch {
    return [...SECCOMP_ACTIONS];
  }
  return SECCOMP_ACTIONS.filter((a) => avail.includes(KERNEL_ACTION[a]));
}

function seccompSupportedFlags(): string[] {
  const m = /^(\d+)\.(\d+)/.exec(os.release());
  const [major, minor] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  return SECCOMP_FLAGS.filter((f) => {
    const [ma, mi] = FLAG_SINCE[f];
    return major > ma || (major === ma && minor >= mi);
  });
}

export function features(): Record<string, unknown> {
  const lsm = lsmFacts(); // apparmor.enabled and selinux.enabled as runc reports them
  return {
    ociVersionMin: "1.0.0",
    ociVersionMax: "1.3.0",
    hooks: ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
    mountOptions: MOUNT_OPTIONS,
    linux: {
      namespaces: Object.keys(NAMESPACES),
      capabilities: [...CAPABILITIES],
      cgroup: { v1: true, v2: true, systemd: true, systemdUser: false, rdma: true },
      seccomp: {
        enabled: true,
        actions: seccompActions(),
        operators: [...SECCOMP_OPERATORS],
        archs: [...SUPPORTED_ARCHES],
        knownFlags: [...SECCOMP_FLAGS],
        supportedFlags: seccompSupportedFlags(),
      },
      apparmor: { enabled: lsm.apparmor },
      selinux: { enabled: lsm.selinux },
      intelRdt: { enabled: false },
      memoryPolicy: { modes: Object.keys(MPOL_MODES).sort(), flags: Object.keys(MPOL_FLAGS).sort() },
      mountExtensions: { idmap: { enabled: true } },
      netDevices: { enabled: true },
    },
    // runc's checkpoint annotation (types/features: third-party runtimes MAY use it): tsrun has no
    // checkpoint/restore
    annotations: { "org.opencontainers.runtime-spec.features": "tsrun", "org.opencontainers.runc.checkpoint.enabled": "false" },
  };
}
