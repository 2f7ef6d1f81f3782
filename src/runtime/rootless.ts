// Rootless operation, as runc decides it (runc's main.go, rootless_linux.go, utils.go):
// - the default --root: $XDG_RUNTIME_DIR/tsrun for a non-root user (or root inside a user namespace whose
//   $USER is not root), made 0700 with the sticky bit so the XDG cleaner leaves it; /run/tsrun otherwise;
// - the global --rootless true|false|auto: whether cgroup permission errors are tolerated ("rootless
//   cgroups"); auto is true for a non-root euid and for root inside a user namespace;
// - rootless EUID: tsrun itself runs as a non-root user, so the container needs a user namespace.
import * as fs from "fs";
import * as path from "path";
import { TsrunError, messageOf } from "../errors";
import { outsideUid, runningInUserNamespace } from "../userns";

// Whether this process runs inside a user namespace (its uid map is not the initial namespace's identity map).
export const inUserNamespace = runningInUserNamespace;

function euid(): number {
  return process.geteuid?.() ?? 0;
}

// runc's shouldHonorXDGRuntimeDir.
function honorXdg(env: NodeJS.ProcessEnv): boolean {
  if (euid() !== 0) return true;
  if (!inUserNamespace()) return false; // the real root keeps /run/tsrun even when XDG_RUNTIME_DIR is set
  return env.USER === undefined || env.USER !== "root";
}

export interface DefaultRoot {
  root: string;
  xdg: boolean; // taken from $XDG_RUNTIME_DIR (made on first use, 0700 + sticky)
}

export function defaultRoot(env: NodeJS.ProcessEnv = process.env): DefaultRoot {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && honorXdg(env)) return { root: path.join(xdg, "tsrun"), xdg: true };
  return { root: "/run/tsrun", xdg: false };
}

// runc's Before hook: the XDG root is created by the user (0700) and marked sticky (the XDG spec: files
// without it may be pruned). Only when --root was not given.
export function prepareXdgRoot(root: string): void {
  try {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new TsrunError(`the path in $XDG_RUNTIME_DIR must be writable by the user: ${root}: ${messageOf(e)}`);
  }
  try {
    const st = fs.lstatSync(root);
    if (!st.isDirectory()) throw new Error("not a directory");
    fs.chmodSync(root, 0o1700);
  } catch (e) {
    throw new TsrunError(`you should check permission of the path in $XDG_RUNTIME_DIR: ${root}: ${messageOf(e)}`);
  }
}

// runc's parseBoolOrAuto (Go's strconv.ParseBool spellings); undefined stands for auto.
export function parseRootless(value: string | undefined): boolean | undefined {
  if (value === undefined || value === "" || value.toLowerCase() === "auto") return undefined;
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw new TsrunError(`--rootless: invalid value "${value}" (want true, false or auto)`, "INVALID_ARGUMENT");
}

// runc's shouldUseRootlessCgroupManager: the flag when given; else a non-root euid, or root inside a user
// namespace. With the systemd driver runc asks the user's bus for its owner (DetectUID) and treats no answer
// as owner 0 (the system's systemd): tsrun takes the user instance when a user bus is there
// (DBUS_SESSION_BUS_ADDRESS, or $XDG_RUNTIME_DIR/bus) and this process's root is not the host's root
// (a uid other than 0 outside the namespace: rootless podman), without starting busctl.
export function rootlessCgroups(flag: boolean | undefined, systemd: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (flag !== undefined) return flag;
  if (euid() !== 0) return true;
  if (!inUserNamespace()) return false;
  if (!systemd) return true;
  return userBusPresent(env) && outsideRoot() !== 0;
}

function userBusPresent(env: NodeJS.ProcessEnv): boolean {
  if (env.DBUS_SESSION_BUS_ADDRESS) return true;
  return !!env.XDG_RUNTIME_DIR && fs.existsSync(path.join(env.XDG_RUNTIME_DIR, "bus"));
}

// The uid this namespace's root is outside it (undefined: not mapped).
function outsideRoot(): number | undefined {
  try {
    return outsideUid(0, fs.readFileSync("/proc/self/uid_map", "utf8"));
  } catch {
    return undefined;
  }
}

// runc's RootlessEUID: tsrun runs as a non-root user.
export function rootlessEuid(): boolean {
  return euid() !== 0;
}
