// Failures a runtime is known to have, with the reason, by runtime name (as given to --runtime) and case id.
// They are still failures: TAP marks them "# TODO", the matrix shows the reason. With --allow-known, those of
// the first runtime do not fail the run, and one that passes does (so this list cannot go stale).

const IDMAP_DIRECTION =
  "The case expects a file of host uid 1000 to show as 0 through containerID 0 -> hostID 1000. tsrun maps as runc does (runc's idmap.bats, the kernel's MOUNT_ATTR_IDMAP): ids on disk are the containerID side and show as the hostID side, so host root's files show as 1000 and uid 1000's as the overflow id.";

const tsrun: Record<string, string> = {
  "runtime.delete.created":
    "tsrun deletes a created container without --force, as runc does (engines rely on it); runtime.md says delete of a container that is not stopped is an error.",
  "config.hooks.state-pid.container-namespace": "createContainer and startContainer hooks get the container process's host pid in their state; the spec wants the pid as seen in the container.",
  "config.mounts.option.idmap": IDMAP_DIRECTION,
  "features.idmap": IDMAP_DIRECTION,
  "config.mounts.option.ridmap": IDMAP_DIRECTION,
  "config.linux.rootfsPropagation.slave-receives":
    "The host's mount does reach the container (rootfsPropagation slave works); the case itself mounts on the host under the rootfs, and its nothingLeft step then finds that mount on the host.",
  "config.process.capabilities.ungrantable": "A capability the runtime itself lacks (CAP_SYS_RESOURCE on this host) makes capset fail; the spec wants a warning and the others applied.",
  "config.process.user.umask-unset": "tsrun sets umask 0022 when user.umask is unset (as runc does); the spec says the caller's umask should be kept.",
};

const KMEM = "tsrun accepts this kernel memory limit and writes nothing (the kernel no longer offers kmem limits); a value that cannot be applied should be refused.";
tsrun["config.linux.resources.memory.kernel"] = KMEM;
tsrun["config.linux.resources.memory.kernelTCP"] = KMEM;

// crun through spec-tests/wrappers/crun-v2 on a host whose sandbox withholds CAP_SYS_RESOURCE.
const MEMLOCK =
  "crun 1.8 raises RLIMIT_MEMLOCK before it loads its device-cgroup eBPF program; this host withholds CAP_SYS_RESOURCE, so create fails (and leaves its cgroup behind). The base config carries no device rule for this reason.";
const crun: Record<string, string> = {
  "config.linux.resources.devices.order": MEMLOCK,
  "config.linux.resources.devices.deny-all": MEMLOCK,
};

export const KNOWN_FAILURES: Record<string, Record<string, string>> = { tsrun, crun };
