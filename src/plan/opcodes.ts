// Mirrors native/helper/plan.h (test/plan.test.ts keeps the two in step).
export const Msg = {
  PLAN: 1,
  ERROR: 2,
  LOG: 3,
  USERMAP_REQ: 4,
  ACK: 5,
  PID: 6,
  HOOKS_REQ: 7,
  READY: 8,
  START: 9,
  ABORT: 10,
} as const;

export const Op = {
  CLOSE_FROM: 1,
  CGROUP_JOIN: 2,
  OPEN_NS: 3,
  SETNS: 4,
  UNSHARE: 5,
  USERMAP_SYNC: 6,
  BECOME_ROOT: 7,
  WRITE_FILE: 8,
  RLIMIT: 9,
  CLONE_INIT: 10,
  BIND_START_SOCKET: 11,
  PDEATHSIG: 12,
  MOUNT: 20,
  ROOT_PROPAGATION: 21,
  ROOTFS: 22,
  DEVICE: 23,
  SYMLINK: 24,
  SYNC_HOOKS: 25,
  HOOK: 26,
  PIVOT_ROOT: 27,
  MOVE_ROOT: 28,
  LOOPBACK_UP: 29,
  MKDIR: 30,
  MASK_PATH: 40,
  READONLY_PATH: 41,
  REMOUNT_RO: 42,
  HOSTNAME: 43,
  DOMAINNAME: 44,
  CONSOLE: 45,
  KEYRING: 46,
  PERSONALITY: 47,
  UMASK: 48,
  CAPS_BOUNDING: 49,
  KEEPCAPS: 50,
  SET_USER: 51,
  CAPS: 52,
  CHDIR: 53,
  NO_NEW_PRIVS: 54,
  LOOKUP_EXEC: 55,
  READY: 56,
  SECCOMP: 57,
  CLOEXEC_FROM: 58,
  RESET_SIGNALS: 59,
  EXEC: 60,
  CLEAR_NONBLOCK: 61,
  CAPSET: 62,
} as const;

export type OpName = keyof typeof Op;
export type OpCode = (typeof Op)[OpName];

const names = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v, k]));
export function opName(code: number): string {
  return names.get(code) ?? `OP_${code}`;
}
