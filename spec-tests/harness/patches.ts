// Patches on the base config: the objects cases reach into, mounts, namespaces, a user namespace.
import type { Config, Hook, HookName, Hooks, Linux, Mount, Process } from "./config";
import { fail } from "./check";

export function proc(c: Config): Process {
  if (!c.process) fail("the config has no process");
  return c.process;
}

export function linux(c: Config): Linux {
  return (c.linux ??= {});
}

export function hooks(c: Config): Hooks {
  return (c.hooks ??= {});
}

export function addHook(c: Config, kind: HookName, h: Hook): void {
  (hooks(c)[kind] ??= []).push(h);
}

export function addMount(c: Config, m: Mount): void {
  (c.mounts ??= []).push(m);
}

export function setNamespace(c: Config, type: string, nsPath?: string): void {
  const l = linux(c);
  l.namespaces = (l.namespaces ?? []).filter((n) => n.type !== type);
  l.namespaces.push(nsPath ? { type, path: nsPath } : { type });
}

// A user namespace mapping container ids 0..65535 to host ids 100000.., as rootless set-ups do.
export const USERNS_MAP = { containerID: 0, hostID: 100000, size: 65536 };

export function withUserNamespace(c: Config): void {
  setNamespace(c, "user");
  const l = linux(c);
  l.uidMappings = [{ ...USERNS_MAP }];
  l.gidMappings = [{ ...USERNS_MAP }];
}
