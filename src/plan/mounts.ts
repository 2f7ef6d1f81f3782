// runtime-spec mount options -> mount(2) flags, propagation flags and the data string, as runc reads them.
import * as path from "path";
import { MS } from "./linux";

// option -> [clear?, flag]
const FLAGS: Record<string, [boolean, number]> = {
  async: [true, MS.SYNCHRONOUS],
  atime: [true, MS.NOATIME],
  bind: [false, MS.BIND],
  defaults: [false, 0],
  dev: [true, MS.NODEV],
  diratime: [true, MS.NODIRATIME],
  dirsync: [false, MS.DIRSYNC],
  exec: [true, MS.NOEXEC],
  iversion: [false, MS.I_VERSION],
  lazytime: [false, MS.LAZYTIME],
  loud: [true, MS.SILENT],
  mand: [false, MS.MANDLOCK],
  noatime: [false, MS.NOATIME],
  nodev: [false, MS.NODEV],
  nodiratime: [false, MS.NODIRATIME],
  noexec: [false, MS.NOEXEC],
  noiversion: [true, MS.I_VERSION],
  nolazytime: [true, MS.LAZYTIME],
  nomand: [true, MS.MANDLOCK],
  norelatime: [true, MS.RELATIME],
  nostrictatime: [true, MS.STRICTATIME],
  nosuid: [false, MS.NOSUID],
  nosymfollow: [false, MS.NOSYMFOLLOW],
  rbind: [false, MS.BIND | MS.REC],
  relatime: [false, MS.RELATIME],
  remount: [false, MS.REMOUNT],
  ro: [false, MS.RDONLY],
  rw: [true, MS.RDONLY],
  silent: [false, MS.SILENT],
  strictatime: [false, MS.STRICTATIME],
  suid: [true, MS.NOSUID],
  sync: [false, MS.SYNCHRONOUS],
  symfollow: [true, MS.NOSYMFOLLOW],
};

const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

// Options this runtime recognises but does not implement: refused with a clear error, never ignored.
const UNSUPPORTED = new Set([
  "idmap",
  "ridmap",
  "rro",
  "rrw",
  "rnosuid",
  "rsuid",
  "rnodev",
  "rdev",
  "rnoexec",
  "rexec",
  "rnodiratime",
  "rdiratime",
  "rrelatime",
  "rnorelatime",
  "rnoatime",
  "ratime",
  "rstrictatime",
  "rnostrictatime",
  "rnosymfollow",
  "rsymfollow",
]);

export const MOUNT_OPTIONS = [...Object.keys(FLAGS), ...Object.keys(PROPAGATION), "tmpcopyup"].sort();

export interface ParsedMount {
  tmpcopyup: boolean; // runc's extension: a tmpfs starts with the contents of the directory it covers
  flags: number;
  propagation: number;
  data: string;
  bind: boolean;
  recursive: boolean;
}

export function parseMountOptions(options: readonly string[] | undefined, type: string | undefined, where: string): ParsedMount {
  let flags = 0;
  let propagation = 0;
  const data: string[] = [];
  let tmpcopyup = false;
  for (const o of options ?? []) {
    if (o.startsWith("x-")) {
      // mount(8) treats x-* options as comments for userspace tools: never passed to the kernel
    } else if (o === "tmpcopyup") {
      if (type !== "tmpfs") throw new Error(`${where}: mount option "tmpcopyup" is for tmpfs mounts only`);
      tmpcopyup = true;
    } else if (o in FLAGS) {
      const [clear, f] = FLAGS[o]!;
      flags = clear ? flags & ~f : flags | f;
    } else if (o in PROPAGATION) {
      propagation |= PROPAGATION[o]!;
    } else if (UNSUPPORTED.has(o)) {
      throw new Error(`${where}: mount option "${o}" is not supported by tsrun`);
    } else {
      data.push(o);
    }
  }
  const bind = isBindMount(options, type);
  if (bind) flags |= MS.BIND;
  return { tmpcopyup, flags, propagation, data: data.join(","), bind, recursive: (flags & MS.REC) !== 0 };
}

// A bind mount: type "bind" or a "bind"/"rbind" option (no option clears MS_BIND once set).
export function isBindMount(options: readonly string[] | undefined, type: string | undefined): boolean {
  return type === "bind" || (options ?? []).some((o) => o === "bind" || o === "rbind");
}

// A destination inside the rootfs, as a clean absolute path. ".." may not climb above the root:
// such a destination is refused rather than silently clamped.
export function containerPath(dest: string, where: string): string {
  const abs = dest.startsWith("/") ? dest : `/${dest}`;
  let depth = 0;
  for (const part of abs.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      depth--;
      if (depth < 0) throw new Error(`${where}: "${dest}" escapes the container's root filesystem`);
    } else depth++;
  }
  return path.posix.normalize(abs);
}

// A mount destination: a clean absolute path inside the rootfs, without a trailing slash.
export function mountPoint(destination: string, where: string): string {
  const p = containerPath(destination, where);
  return p.length > 1 ? p.replace(/\/+$/, "") : p;
}
