// What every operation needs: the state store under --root, the logger, and how cgroups are managed.
import { Logger } from "../log";
import { Store } from "../state/store";
import { defaultRoot, prepareXdgRoot, rootlessCgroups } from "./rootless";

export interface RuntimeOptions {
  root?: string; // default /run/tsrun, or $XDG_RUNTIME_DIR/tsrun when rootless (src/runtime/rootless.ts)
  logger?: Logger;
  systemdCgroup?: boolean;
  // runc's --rootless: true or false; undefined is auto (rootless.ts).
  rootless?: boolean;
}

export interface Context {
  store: Store;
  logger: Logger;
  systemdCgroup: boolean;
  // Cgroup permission errors tolerated where runc's rootless cgroup manager tolerates them.
  rootlessCgroups: boolean;
}

export function makeContext(o: RuntimeOptions = {}): Context {
  let root = o.root;
  if (root === undefined) {
    const d = defaultRoot();
    if (d.xdg) prepareXdgRoot(d.root);
    root = d.root;
  }
  const systemdCgroup = o.systemdCgroup === true;
  return { store: new Store(root), logger: o.logger ?? new Logger(), systemdCgroup, rootlessCgroups: rootlessCgroups(o.rootless, systemdCgroup) };
}
