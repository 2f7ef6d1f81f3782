// The architectures the compiler has syscall tables for, as libseccomp describes them: the AUDIT_ARCH
// value the kernel reports in seccomp_data.arch, the argument width libseccomp compares (32-bit ABIs
// compare only the low word of an argument), and the syscall numbers the ABI owns under that token
// (x86_64 and x32 share AUDIT_ARCH_X86_64; x32 numbers carry __X32_SYSCALL_BIT).
import type { SeccompArch } from "../spec/seccomp-enums";
import { AUDIT_ARCH, X32_SYSCALL_BIT } from "./kernel";
import type { TableArch } from "./syscalls";

export interface ArchDef {
  name: SeccompArch;
  table: TableArch;
  token: number;
  bits: 32 | 64;
  // [lo, hi): the values of seccomp_data.nr this ABI owns under its token
  lo: number;
  hi: number;
}

const FULL = 2 ** 32;

export const ARCHES: Readonly<Partial<Record<SeccompArch, ArchDef>>> = {
  SCMP_ARCH_X86_64: { name: "SCMP_ARCH_X86_64", table: "x86_64", token: AUDIT_ARCH.X86_64, bits: 64, lo: 0, hi: X32_SYSCALL_BIT },
  SCMP_ARCH_X32: { name: "SCMP_ARCH_X32", table: "x32", token: AUDIT_ARCH.X86_64, bits: 32, lo: X32_SYSCALL_BIT, hi: FULL },
  SCMP_ARCH_X86: { name: "SCMP_ARCH_X86", table: "x86", token: AUDIT_ARCH.I386, bits: 32, lo: 0, hi: FULL },
  SCMP_ARCH_AARCH64: { name: "SCMP_ARCH_AARCH64", table: "aarch64", token: AUDIT_ARCH.AARCH64, bits: 64, lo: 0, hi: FULL },
  SCMP_ARCH_ARM: { name: "SCMP_ARCH_ARM", table: "arm", token: AUDIT_ARCH.ARM, bits: 32, lo: 0, hi: FULL },
};

export const SUPPORTED_ARCHES = Object.keys(ARCHES) as SeccompArch[];

// The architecture of the machine tsrun runs on (libseccomp's SCMP_ARCH_NATIVE): always covered.
export function nativeArch(nodeArch: string = process.arch): SeccompArch {
  switch (nodeArch) {
    case "x64":
      return "SCMP_ARCH_X86_64";
    case "arm64":
      return "SCMP_ARCH_AARCH64";
    case "arm":
      return "SCMP_ARCH_ARM";
    case "ia32":
      return "SCMP_ARCH_X86";
    default:
      throw new Error(`seccomp: tsrun has no syscall table for this machine's architecture (${nodeArch})`);
  }
}
