// `tsrun features`: the runtime-spec features.md document, listing only what tsrun implements.
import { CAPABILITIES, NAMESPACES } from "../plan/linux";
import { MOUNT_OPTIONS } from "../plan/mounts";

export function features(): Record<string, unknown> {
  return {
    ociVersionMin: "1.0.0",
    ociVersionMax: "1.2.0",
    hooks: ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
    mountOptions: MOUNT_OPTIONS,
    linux: {
      namespaces: Object.keys(NAMESPACES),
      capabilities: [...CAPABILITIES],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: true },
      seccomp: { enabled: false },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
    },
    annotations: { "org.opencontainers.runtime-spec.features": "tsrun" },
  };
}
