// Where a container's cgroups go: one directory per v1 hierarchy (keyed by its controllers joined by ",")
// and "" for the v2 tree — the `dirs` of state.json's cgroup record, decoded by CgroupManager.fromRecord.
import * as path from "path";
import { type CgroupLayout, detectLayout } from "./layout";

// runc's rules: an absolute cgroupsPath is taken from each hierarchy's root; a relative one (and the
// default, the container id) is placed under the cgroup tsrun itself runs in.
export function resolveCgroupPaths(cgroupsPath: string | undefined, id: string, layout: CgroupLayout = detectLayout()): Record<string, string> {
  const inner = cgroupsPath && cgroupsPath.length > 0 ? cgroupsPath : id;
  if (/^[^/:]*:[^:]*:[^:]*$/.test(inner) && !inner.startsWith("/")) {
    throw new Error(`cgroupsPath "${inner}" is in systemd's slice:prefix:name form; give --systemd-cgroup for a systemd unit`);
  }
  // Cleaned lexically as if rooted (runc's LexicallyCleanPath): ".." never climbs above the hierarchy's root
  // for an absolute path, nor above our own cgroup for a relative one.
  const cleaned = path.posix.normalize(`/${inner}`);
  const dirs: Record<string, string> = {};
  const place = (mountPoint: string, mountRoot: string, own: string | undefined): string => {
    const rel = inner.startsWith("/") ? cleaned : path.posix.join(own ?? "/", cleaned);
    // Paths in /proc/self/cgroup are relative to the hierarchy's root; the mount may show a sub-tree.
    const under = mountRoot !== "/" && rel.startsWith(mountRoot) ? rel.slice(mountRoot.length) : rel;
    return path.join(mountPoint, under);
  };
  for (const h of layout.v1) {
    const key = h.controllers.join(",");
    dirs[key] = place(h.mountPoint, h.root, layout.own.get(key));
  }
  if (layout.unified) dirs[""] = place(layout.unified.mountPoint, layout.unified.root, layout.own.get(""));
  return dirs;
}
