// runtime-spec mount options -> mount(2) flags, propagation flags and the data string, as runc reads them.
import * as path from "path";
import type { Mount, Spec } from "../spec/schema";
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

// One word of the flag table above: [clear?, flag], or undefined for a word that is not in it. Shared with
// the containerd shim's rootfs mounts (src/shim/containerd/service.ts), whose table is a subset of this one.
export function mountFlagOption(option: string): readonly [boolean, number] | undefined {
  return Object.hasOwn(FLAGS, option) ? FLAGS[option] : undefined;
}

// Propagation names (mount options, linux.rootfsPropagation) -> mount(2) flags, as runc's
// mountPropagationMapping: only the r* values recurse.
export const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

// mount_setattr(2) attributes (linux/mount.h).
export const MOUNT_ATTR = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  _ATIME: 0x70,
  RELATIME: 0x0,
  NOATIME: 0x10,
  STRICTATIME: 0x20,
  NODIRATIME: 0x80,
  IDMAP: 0x100000,
  NOSYMFOLLOW: 0x200000,
} as const;

// The recursive options (runc's recAttrFlags): option -> [clear?, attribute], set on the mount and every
// mount under it with mount_setattr(AT_RECURSIVE).
const REC_ATTRS: Record<string, [boolean, number]> = {
  rro: [false, MOUNT_ATTR.RDONLY],
  rrw: [true, MOUNT_ATTR.RDONLY],
  rnosuid: [false, MOUNT_ATTR.NOSUID],
  rsuid: [true, MOUNT_ATTR.NOSUID],
  rnodev: [false, MOUNT_ATTR.NODEV],
  rdev: [true, MOUNT_ATTR.NODEV],
  rnoexec: [false, MOUNT_ATTR.NOEXEC],
  rexec: [true, MOUNT_ATTR.NOEXEC],
  rnodiratime: [false, MOUNT_ATTR.NODIRATIME],
  rdiratime: [true, MOUNT_ATTR.NODIRATIME],
  rrelatime: [false, MOUNT_ATTR.RELATIME],
  rnorelatime: [true, MOUNT_ATTR.RELATIME],
  rnoatime: [false, MOUNT_ATTR.NOATIME],
  ratime: [true, MOUNT_ATTR.NOATIME],
  rstrictatime: [false, MOUNT_ATTR.STRICTATIME],
  rnostrictatime: [true, MOUNT_ATTR.STRICTATIME],
  rnosymfollow: [false, MOUNT_ATTR.NOSYMFOLLOW],
  rsymfollow: [true, MOUNT_ATTR.NOSYMFOLLOW],
};

export const MOUNT_OPTIONS = [...Object.keys(FLAGS), ...Object.keys(PROPAGATION), ...Object.keys(REC_ATTRS), "tmpcopyup", "idmap", "ridmap"].sort();

export interface ParsedMount {
  tmpcopyup: boolean; // runc's extension: a tmpfs starts with the contents of the directory it covers
  flags: number;
  propagation: number;
  data: string;
  bind: boolean;
  recursive: boolean;
  // the r* options: attributes to set and to clear recursively (applied to bind mounts only, as runc)
  recSet: number;
  recClr: number;
  // "idmap" (the mapping on the top mount) or "ridmap" (on every mount of the tree); undefined: neither
  idmap: "idmap" | "ridmap" | undefined;
}

export function parseMountOptions(options: readonly string[] | undefined, type: string | undefined, where: string): ParsedMount {
  let flags = 0;
  let propagation = 0;
  const data: string[] = [];
  let tmpcopyup = false;
  let recSet = 0;
  let recClr = 0;
  let idmap: "idmap" | "ridmap" | undefined;
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
    } else if (o in REC_ATTRS) {
      const [clear, a] = REC_ATTRS[o]!;
      if (clear) {
        recClr |= a;
        recSet &= ~a;
      } else {
        recSet |= a;
        recClr &= ~a;
      }
      // an access-time mode is set by clearing the whole access-time field with it (mount_setattr(2))
      if ((a & MOUNT_ATTR._ATIME) === a) recClr |= MOUNT_ATTR._ATIME;
    } else if (o === "idmap" || o === "ridmap") {
      idmap = o;
    } else {
      data.push(o);
    }
  }
  const bind = isBindMount(options, type);
  if (bind) flags |= MS.BIND;
  return { tmpcopyup, flags, propagation, data: data.join(","), bind, recursive: (flags & MS.REC) !== 0, recSet, recClr, idmap };
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

// The id mapping of an idmapped mount (runc): its own uidMappings/gidMappings; else, with "idmap" or
// "ridmap" alone, the container's mappings, or the user namespace it joins.
export function idmapOf(spec: Spec, m: Mount, option: "idmap" | "ridmap" | undefined): { uid: string; gid: string; userns: string; recursive: boolean } | undefined {
  if (!option && !m.uidMappings && !m.gidMappings) return undefined;
  const recursive = option === "ridmap";
  if (m.uidMappings || m.gidMappings) return { uid: mapText(m.uidMappings ?? []), gid: mapText(m.gidMappings ?? []), userns: "", recursive };
  const joined = (spec.linux?.namespaces ?? []).find((n) => n.type === "user" && n.path);
  if (joined) return { uid: "", gid: "", userns: joined.path!, recursive };
  return { uid: mapText(spec.linux?.uidMappings ?? []), gid: mapText(spec.linux?.gidMappings ?? []), userns: "", recursive };
}

function mapText(maps: readonly { containerID: number; hostID: number; size: number }[]): string {
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join("");
}
