// Capability names by number, and which of them the harness (and so a runtime it starts) holds.
import * as fs from "fs";

export const CAP_NAMES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
];

function boundingSet(): bigint {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync("/proc/self/status", "utf8"));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

// Whether the harness's bounding set holds the capability (a runtime it starts can grant it).
export function holdsCapability(cap: string): boolean {
  const bit = CAP_NAMES.indexOf(cap);
  return bit >= 0 && ((boundingSet() >> BigInt(bit)) & 1n) === 1n;
}

// A capability the kernel knows that the harness's bounding set lacks, if any.
export function missingCapability(): string | undefined {
  const lastCap = Number(fs.readFileSync("/proc/sys/kernel/cap_last_cap", "utf8").trim());
  return CAP_NAMES.slice(0, lastCap + 1).find((c) => !holdsCapability(c));
}
