// Where a container's cgroups go: one directory per v1 hierarchy (keyed by its controllers joined by ",")
// and "" for the v2 tree — the `dirs` of state.json's cgroup record, decoded by CgroupManager.fromRecord.
import * as path from "path";
import { type CgroupLayout, detectLayout } from "./layout";

// runc's rules: an absolute cgroupsPath is taken from each hierarchy's root. A relative one (and the default,
// the container id) goes:
//   v1 hierarchies  under the cgroup tsrun itself runs in (runc's fs subsysPath);
//   v2-only host    under that cgroup's parent (runc's fs2 defaultDirPath): tsrun's own cgroup (a login
//                   session's scope, a service) holds processes, so by v2's no-internal-process rule no
//                   controller could be enabled below it. Run from the root cgroup, the parent is the root;
//   hybrid v2 tree  under the tree's root (runc's GetOwnCgroupPath("") is the hybrid mount point itself).
export function resolveCgroupPaths(cgroupsPath: string | undefined, id: string, layout: CgroupLayout = detectLayout()): Record<string, string> {
  const inner = cgroupsPath && cgroupsPath.length > 0 ? cgroupsPath : id;
  if (/^[^/:]*:[^:]*:[^:]*$/.test(inner) && !inner.startsWith("/")) {
    throw new Error(`cgroupsPath "${inner}" is in systemd's slice:prefix:name form; give --systemd-cgroup for a systemd unit`);
  }
  // Cleaned lexically as if rooted (runc's LexicallyCleanPath): ".." never climbs above the hierarchy's root
  // for an absolute path, nor above the cgroup a relative one is placed under.
  const cleaned = path.posix.normalize(`/${inner}`);
  const dirs: Record<string, string> = {};
  const place = (mountPoint: string, mountRoot: string, own: string | undefined, rule: "own" | "parent" | "root" = "own"): string => {
    const base = rule === "root" ? mountRoot : rule === "parent" ? path.posix.dirname(own ?? "/") : (own ?? "/");
    const rel = inner.startsWith("/") ? cleaned : path.posix.join(base, cleaned);
    // Paths in /proc/self/cgroup are relative to the hierarchy's root; the mount may show a sub-tree.
    const under = mountRoot !== "/" && rel.startsWith(mountRoot) ? rel.slice(mountRoot.length) : rel;
    return path.join(mountPoint, under);
  };
  for (const h of layout.v1) {
    const key = h.controllers.join(",");
    dirs[key] = place(h.mountPoint, h.root, layout.own.get(key));
  }
  if (layout.unified) dirs[""] = place(layout.unified.mountPoint, layout.unified.root, layout.own.get(""), layout.mode === "v2" ? "parent" : "root");
  return dirs;
}
