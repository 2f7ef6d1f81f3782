/**
 * The example config.json written by `tsrun spec`, matching what `runc spec`
 * (runc 1.2, libcontainer/specconv Example() and ToRootless()) writes, with
 * properties in the same order as runc's Go structs so the JSON text is the
 * same too.
 */
import * as fs from "node:fs";
import type { Mount, Spec } from "./schema";

export interface DefaultSpecOptions {
  /** Produce the `runc spec --rootless` variant. */
  rootless?: boolean;
  /**
   * Whether to add a cgroup namespace.  runc adds one exactly when the host
   * runs cgroup v2 in unified mode; that is what happens when this is left
   * undefined.  Set it to make the output independent of the host.
   */
  cgroupNamespace?: boolean;
}

/** CGROUP2_SUPER_MAGIC from <linux/magic.h>. */
const CGROUP2_SUPER_MAGIC = 0x63677270;

/** True when /sys/fs/cgroup is a cgroup2 mount (what runc checks). */
export function isCgroup2UnifiedMode(): boolean {
  try {
    return fs.statfsSync("/sys/fs/cgroup").type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/** The `runc spec` config.json, as an object. */
export function defaultSpec(opts: DefaultSpecOptions = {}): Spec {
  const caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
  const spec: Spec = {
    ociVersion: "1.3.0",
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ["sh"],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      cwd: "/",
      capabilities: {
        bounding: [...caps],
        effective: [...caps],
        permitted: [...caps],
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    hostname: "runc",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      {
        destination: "/dev/mqueue",
        type: "mqueue",
        source: "mqueue",
        options: ["nosuid", "noexec", "nodev"],
      },
      {
        destination: "/sys",
        type: "sysfs",
        source: "sysfs",
        options: ["nosuid", "noexec", "nodev", "ro"],
      },
      {
        destination: "/sys/fs/cgroup",
        type: "cgroup",
        source: "cgroup",
        options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
      },
    ],
    linux: {
      resources: {
        devices: [{ allow: false, access: "rwm" }],
      },
      namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
      maskedPaths: [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };

  const linux = spec.linux!;
  const cgroupns = opts.cgroupNamespace ?? isCgroup2UnifiedMode();
  if (cgroupns) linux.namespaces!.push({ type: "cgroup" });

  if (!opts.rootless) return spec;

  // --- ToRootless ---------------------------------------------------------
  // Drop the network namespace (and any user namespace), then add a user one.
  const namespaces = linux.namespaces!.filter((ns) => ns.type !== "network" && ns.type !== "user");
  namespaces.push({ type: "user" });

  // Map container root to the invoking user, as runc does with its effective
  // uid/gid (os.Geteuid/os.Getegid).
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;

  // Rebuild linux in Go field order: uidMappings and gidMappings come first,
  // resources are removed.
  spec.linux = {
    uidMappings: [{ containerID: 0, hostID: uid, size: 1 }],
    gidMappings: [{ containerID: 0, hostID: gid, size: 1 }],
    namespaces,
    maskedPaths: linux.maskedPaths,
    readonlyPaths: linux.readonlyPaths,
  };

  // /sys becomes a recursive bind of the host's /sys; uid=/gid= options are
  // dropped from every other mount.
  spec.mounts = spec.mounts!.map((m): Mount => {
    if (cleanPath(m.destination) === "/sys") {
      return {
        destination: "/sys",
        type: "none",
        source: "/sys",
        options: ["rbind", "nosuid", "noexec", "nodev", "ro"],
      };
    }
    if (m.options === undefined) return m;
    const options = m.options.filter((o) => !o.startsWith("gid=") && !o.startsWith("uid="));
    const out: Mount = { ...m };
    if (options.length > 0) out.options = options;
    else delete out.options;
    return out;
  });

  return spec;
}

/** Lexical path cleaning equivalent to Go's filepath.Clean. */
function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}

/** Characters Go's encoding/json escapes by default (HTML-safe output). */
const GO_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

/**
 * Serialises a spec as `runc spec` writes it: json.MarshalIndent(spec, "",
 * "\t") with Go's HTML-safe string escaping and no trailing newline.  Key order
 * is the object's own order (defaultSpec and parseSpec both produce runc's).
 */
export function specJson(spec: Spec): string {
  // These characters can only occur inside JSON strings, so a textual
  // replacement is safe.
  return JSON.stringify(spec, null, "\t").replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c] ?? c);
}
