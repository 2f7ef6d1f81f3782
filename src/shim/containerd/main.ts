// containerd-shim-tsrun-v2: containerd's runtime v2 shim for tsrun (io.containerd.tsrun.v2). containerd runs
//   containerd-shim-tsrun-v2 -namespace NS -address ADDR -publish-binary BIN -id ID [-debug] start|delete
// in the bundle directory. `start` prints the ttrpc address of a running shim server, starting one (this
// binary with `serve`, daemonized) unless one serves the container's group already: the pod
// (io.kubernetes.cri.sandbox-id) or, with the annotation io.containerd.tsrun.shim-group, any group named
// there; else one shim per container. `delete` cleans up a container whose shim is gone. `serve` is the
// long-lived server: every container of the group in this one Node process (src/shim/containerd/service.ts).
// start and delete load nothing of tsrun's runtime until they need it: start runs once per container.
// bin/containerd-shim-tsrun-v2 is a native launcher (native/shim-launcher.cc) in front of this file: it
// answers start (and spawns serve, from the startup snapshot src/shim/containerd/snapshot.ts), delete's
// usual case and -v itself, with the same results, and execs node with this file for everything else. A
// change here to parseFlags, groupOf, socketPath, start, remove or deleteResponse must be made there too:
// test/shim-launcher.test.ts runs both on a table of bundles and fails when they differ.
import { spawn } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";

export const SOCKET_DIR = "/run/containerd/s";
// tsrun's root for containers of containerd namespace NS: DEFAULT_ROOT/NS (or runc Options' Root/NS);
// TSRUN_SHIM_ROOT in containerd's environment sets another
export const DEFAULT_ROOT = process.env.TSRUN_SHIM_ROOT || "/run/containerd/tsrun";
// what the shim remembers in the bundle for the `delete` subcommand (the container's tsrun root)
export const BUNDLE_STATE = "tsrun-shim.json";
// TSRUN_SHIM_SHARED=1 in containerd's environment: one long-lived shim for every container of a namespace
export const shared = (): boolean => process.env.TSRUN_SHIM_SHARED === "1";

export interface Flags {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  debug: boolean;
  socket: string;
  action: string;
}

// Go's flag package forms: -name value, -name=value, --name value; -debug alone.
export function parseFlags(argv: string[]): Flags {
  const f: Flags = { namespace: "", address: "", publishBinary: "", id: "", debug: false, socket: "", action: "" };
  const keys: Record<string, keyof Flags> = { namespace: "namespace", address: "address", "publish-binary": "publishBinary", id: "id", socket: "socket", bundle: "action" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("-")) {
      f.action = a;
      continue;
    }
    const [name, inline] = a.replace(/^--?/, "").split(/=(.*)/s, 2) as [string, string | undefined];
    if (name === "debug" || name === "v") {
      f.debug = inline === undefined || inline === "true";
      continue;
    }
    const value = inline ?? argv[++i] ?? "";
    const k = keys[name];
    if (k && k !== "action" && k !== "debug") (f[k] as string) = value;
  }
  return f;
}

// The shim's socket, as runc's shim names it: a hash of containerd's address, the namespace and the group.
export function socketPath(address: string, namespace: string, group: string): string {
  const h = createHash("sha256").update(path.join(address, namespace, group) + "#tsrun").digest("hex");
  return path.join(SOCKET_DIR, h);
}

// Which shim serves a container: its pod's, a named group's, or its own.
export function groupOf(bundle: string, id: string): string {
  try {
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as { annotations?: Record<string, string> };
    const a = spec.annotations ?? {};
    if (shared()) return "tsrun-shared";
    return a["io.containerd.tsrun.shim-group"] || a["io.kubernetes.cri.sandbox-id"] || id;
  } catch {
    return id;
  }
}

function alive(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(sock);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

async function start(f: Flags): Promise<number> {
  const bundle = process.cwd();
  const sock = socketPath(f.address, f.namespace, groupOf(bundle, f.id));
  const address = `unix://${sock}`;
  if (!(await alive(sock))) {
    fs.mkdirSync(SOCKET_DIR, { recursive: true, mode: 0o711 });
    fs.rmSync(sock, { force: true });
    // the shim's stderr: TSRUN_SHIM_LOG, else the bundle's "log" FIFO, which containerd copies to its own log
    let log: number | "ignore" = "ignore";
    try {
      log = process.env.TSRUN_SHIM_LOG ? fs.openSync(process.env.TSRUN_SHIM_LOG, "a") : fs.openSync(path.join(bundle, "log"), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch {
      // no reader: no log
    }
    const args = [__filename, "-namespace", f.namespace, "-address", f.address, "-publish-binary", f.publishBinary, "-id", f.id, "-socket", sock, ...(f.debug ? ["-debug"] : []), "serve"];
    const child = spawn(process.execPath, args, { cwd: bundle, detached: true, stdio: ["ignore", "pipe", log] });
    if (typeof log === "number") fs.closeSync(log);
    const ready = await new Promise<string>((resolve) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("\n")) resolve(out);
      });
      child.once("exit", (code) => resolve(`exit ${code}`));
    });
    if (!ready.startsWith("ready")) {
      process.stderr.write(`tsrun shim: the shim server did not start: ${ready.trim()}\n`);
      return 1;
    }
    child.stdout!.destroy();
    child.unref();
  }
  fs.writeFileSync(path.join(bundle, "address"), address);
  process.stdout.write(address);
  return 0;
}

// A DeleteResponse {pid, exit_status, exited_at} through the library's wire writer alone (loading the whole
// runtime would double this command's time: containerd waits for it after each shim's disconnect).
export function deleteResponse(pid: number, exitStatus: number, at: Date): Uint8Array {
  const { BinaryWriter, WireType } = require("@bufbuild/protobuf/wire") as typeof import("@bufbuild/protobuf/wire");
  const ms = at.getTime();
  const w = new BinaryWriter();
  if (pid) w.tag(1, WireType.Varint).uint32(pid);
  if (exitStatus) w.tag(2, WireType.Varint).uint32(exitStatus);
  w.tag(3, WireType.LengthDelimited).fork();
  w.tag(1, WireType.Varint).int64(Math.floor(ms / 1000));
  const nanos = (ms % 1000) * 1_000_000;
  if (nanos) w.tag(2, WireType.Varint).int32(nanos);
  w.join();
  return w.finish();
}

async function remove(f: Flags): Promise<number> {
  const bundle = process.cwd();
  let root = path.join(DEFAULT_ROOT, f.namespace);
  try {
    root = (JSON.parse(fs.readFileSync(path.join(bundle, BUNDLE_STATE), "utf8")) as { root: string }).root;
  } catch {
    // never created by a shim, or the bundle is gone
  }
  let pid = 0;
  // (the usual case: the shim deleted the container before it exited; nothing to load)
  if (fs.existsSync(path.join(root, f.id))) {
    const { Runtime } = await import("../../api");
    try {
      const c = await new Runtime({ root }).get(f.id);
      pid = (await c.state()).pid;
      await c.delete({ force: true });
    } catch (e) {
      process.stderr.write(`tsrun shim: delete ${f.id}: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }
  const rootfs = path.join(bundle, "rootfs");
  if (isMountPoint(rootfs)) {
    try {
      unmountAll(rootfs);
    } catch (e) {
      process.stderr.write(`tsrun shim: delete ${f.id}: failed to clean up rootfs mount: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }
  // a dead shim's socket (a live one serves other containers of the group)
  const sock = socketPath(f.address, f.namespace, groupOf(bundle, f.id));
  if (fs.existsSync(sock) && !(await alive(sock))) fs.rmSync(sock, { force: true });
  process.stdout.write(deleteResponse(pid, 128 + 9, new Date()));
  return 0;
}

// Whether p is a mount point: a directory (a symlink is none, and is never unmounted through) whose
// device differs from its parent's, or that /proc/self/mountinfo names as a mount point (the 5th field,
// octal escapes undone, equal to p): a bind mount from the same filesystem keeps the device.
function isMountPoint(p: string): boolean {
  try {
    const st = fs.lstatSync(p);
    if (!st.isDirectory()) return false;
    if (st.dev !== fs.statSync(path.dirname(p)).dev) return true;
    for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
      const field = line.split(" ")[4];
      if (field !== undefined && field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) === p) return true;
    }
    return false;
  } catch {
    return false;
  }
}

const MNT_DETACH = 2;
const UMOUNT_NOFOLLOW = 8;

// containerd's mount.UnmountAll: umount2 until EINVAL (nothing mounted there any more), which undoes a
// stack of mounts on one target; nothing when the path does not exist. Never through a symlink
// (UMOUNT_NOFOLLOW, which containerd does not pass). A busy mount is detached (MNT_DETACH) at once, where
// containerd retries EBUSY for 2.5 s: the shim used `umount -l` before, and the mount leaves the
// namespace either way.
export function unmountAll(target: string): void {
  try {
    fs.lstatSync(target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  const n = (require("../../native") as typeof import("../../native")).native();
  for (;;) {
    try {
      n.umount2(target, UMOUNT_NOFOLLOW);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EINVAL") return;
      if (code !== "EBUSY") throw e;
      n.umount2(target, UMOUNT_NOFOLLOW | MNT_DETACH);
    }
  }
}

async function serve(f: Flags): Promise<number> {
  const { TaskService } = await import("./service");
  const { Server } = await import("./ttrpc");
  (await import("./reaper")).startReaper(); // the containers' subreaper (src/shim/containerd/reaper.ts)
  let server: InstanceType<typeof Server> | undefined;
  const service = new TaskService(f.namespace, process.env.TTRPC_ADDRESS, () => {
    void service.events.flush().then(() => {
      server?.close();
      fs.rmSync(f.socket, { force: true });
      process.exit(0);
    });
  }, f.debug);
  server = new Server(service.handlers());
  await server.listen(f.socket);
  fs.chmodSync(f.socket, 0o600);
  process.on("SIGPIPE", () => {});
  process.stderr.on("error", () => {}); // the log FIFO's reader (containerd) may go away first
  process.on("SIGTERM", () => {});
  process.on("SIGINT", () => {});
  process.stdout.write("ready\n");
  // stdout goes to start's pipe, closed once start has read the line
  process.stdout.on("error", () => {});
  return -1; // keeps running
}

export async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv);
  switch (f.action) {
    case "start":
      return start(f);
    case "delete":
      return remove(f);
    case "serve":
      return serve(f);
    default:
      if (argv.includes("-v") || argv.includes("--version")) {
        process.stdout.write("containerd-shim-tsrun-v2: tsrun\n");
        return 0;
      }
      process.stderr.write(`containerd-shim-tsrun-v2: unknown action ${JSON.stringify(f.action)} (start, delete)\n`);
      return 1;
  }
}

// (bundled into the server's startup snapshot, src/shim/containerd/snapshot.ts, there is no `module`)
if (typeof module !== "undefined" && require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`containerd-shim-tsrun-v2: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
