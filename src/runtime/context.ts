// What every operation needs: the state store under --root and the logger.
import { Logger } from "../log";
import { Store } from "../state/store";

export interface RuntimeOptions {
  root?: string; // default /run/tsrun
  logger?: Logger;
  systemdCgroup?: boolean;
}

export interface Context {
  store: Store;
  logger: Logger;
  systemdCgroup: boolean;
}

export const DEFAULT_ROOT = "/run/tsrun";

export function makeContext(o: RuntimeOptions = {}): Context {
  return { store: new Store(o.root ?? DEFAULT_ROOT), logger: o.logger ?? new Logger(), systemdCgroup: o.systemdCgroup === true };
}
