// The engines tsrun exists to serve, driven for real: containerd 1.6 (its own daemon, private root, state
// and sockets; containers through ctr with --runc-binary) and podman 4.3 (private root, runroot and tmpdir,
// cgroupfs, file events, no network). Every engine call has a timeout; everything made is removed at the end.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const REPO = path.resolve(__dirname, "..", "..");
export const TSRUN = path.join(REPO, "bin", "tsrun");
const CALL_TIMEOUT = 60_000;

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function call(cmd: string, args: string[], o: { input?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Result {
  const r = spawnSync(cmd, args, { encoding: "utf8", input: o.input ?? "", env: o.env ?? process.env, timeout: o.timeout ?? CALL_TIMEOUT, maxBuffer: 16 << 20 });
  if (r.error) return { code: -1, stdout: r.stdout ?? "", stderr: `${r.stderr ?? ""}${String(r.error)}` };
  return { code: r.status ?? 128 + (r.signal ? os.constants.signals[r.signal] : 0), stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

export function must(r: Result, what: string): Result {
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}: ${r.stderr.trim()}`);
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// The image: a hand-made OCI layout (umoci), no registry. The static probe plus a few host binaries with
// their libraries (scripts/mkbundle.js), so scenarios have a shell too.

export interface Image {
  layout: string; // OCI layout directory (tag "latest")
  archive: string; // the same as a tar (oci-archive), for `ctr images import`
  rootfs: string; // the same files unpacked (for `ctr run --config`, which takes no image)
}

export function buildImage(work: string): Image {
  const layout = path.join(work, "image");
  const unpacked = path.join(work, "image-bundle");
  must(call("umoci", ["init", "--layout", layout]), "umoci init");
  must(call("umoci", ["new", "--image", `${layout}:latest`]), "umoci new");
  must(call("umoci", ["unpack", "--image", `${layout}:latest`, unpacked]), "umoci unpack");
  const staged = path.join(work, "image-files");
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  (require(path.join(REPO, "scripts", "mkbundle.js")) as { makeBundle(dir: string, bins: string[]): string }).makeBundle(staged, ["sh", "cat", "sleep", "id", "pwd", "env", "true", "echo", "head"]);
  execFileSync("cp", ["-a", `${path.join(staged, "rootfs")}/.`, path.join(unpacked, "rootfs")]);
  execFileSync("cc", ["-static", "-O2", "-o", path.join(unpacked, "rootfs", "probe"), path.join(REPO, "spec-tests", "probe", "probe.c")]);
  fs.mkdirSync(path.join(unpacked, "rootfs", "work"), { recursive: true });
  must(call("umoci", ["repack", "--image", `${layout}:latest`, unpacked]), "umoci repack");
  must(call("umoci", ["config", "--image", `${layout}:latest`, "--config.cmd", "/probe", "--config.env", "PATH=/bin:/usr/bin:/"]), "umoci config");
  const archive = path.join(work, "image.tar");
  execFileSync("tar", ["-C", layout, "-cf", archive, "."]);
  return { layout, archive, rootfs: path.join(unpacked, "rootfs") };
}

// ---------------------------------------------------------------------------------------------------------

export interface RunOptions {
  tty?: boolean;
  input?: string; // stdin, then EOF
  user?: string; // uid[:gid]
  readOnly?: boolean;
  memoryBytes?: number;
  pidsLimit?: number;
  env?: string[];
  cwd?: string;
}

export interface Engine {
  readonly name: string;
  readonly runtime: string; // path of the runtime binary
  run(name: string, args: string[], o?: RunOptions): Result; // foreground, removed afterwards
  runDetached(name: string, args: string[], o?: RunOptions): void;
  exec(name: string, args: string[], o?: { user?: string; cwd?: string; env?: string[] }): Result;
  status(name: string): string; // "running", "paused", "stopped", …
  pause(name: string): void;
  resume(name: string): void;
  kill(name: string, signal: string): void;
  stop(name: string): void;
  remove(name: string): void;
  // The command line that runs a container in the foreground with a tty (for the pty driver).
  ttyCommand(name: string, args: string[]): { cmd: string; args: string[]; env: NodeJS.ProcessEnv };
  close(): void;
}

// ---------------------------------------------------------------------------------------------------------
// containerd

export class Containerd implements Engine {
  readonly name = "containerd";
  // with `shim`: containers go through tsrun's own shim (containerd-shim-tsrun-v2, io.containerd.tsrun.v2)
  // instead of runc's shim running `runtime`; the shim's bin/ is on containerd's PATH and its tsrun root
  // private (TSRUN_SHIM_ROOT)
  private daemon: ChildProcess | undefined;
  private readonly sock: string;
  private readonly ns = `tsrun-engines-${process.pid}`;
  private readonly runcRoot: string;
  private readonly image = "tsrun.local/engines:latest";

  constructor(
    private readonly dir: string,
    readonly runtime: string,
    private readonly img: Image,
    private readonly shim = false,
  ) {
    const image = img;
    fs.mkdirSync(dir, { recursive: true });
    this.sock = path.join(dir, "containerd.sock");
    this.runcRoot = path.join(dir, "runc-root");
    const config = [
      "version = 2",
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = "${this.sock}"`,
      "[ttrpc]",
      `  address = "${dir}/containerd-ttrpc.sock"`,
      "[debug]",
      '  level = "warn"',
    ].join("\n");
    fs.writeFileSync(path.join(dir, "config.toml"), config + "\n");
    const log = fs.openSync(path.join(dir, "containerd.log"), "w");
    const env = shim ? { ...process.env, PATH: `${path.join(REPO, "bin")}:${process.env.PATH ?? "/usr/bin:/bin"}`, TSRUN_SHIM_ROOT: path.join(dir, "tsrun-shim-root") } : process.env;
    this.daemon = spawn("containerd", ["--config", path.join(dir, "config.toml")], { stdio: ["ignore", log, log], detached: true, env });
    fs.closeSync(log);
    const deadline = Date.now() + 20_000;
    while (!this.ctr(["version"]).stdout.includes("Server")) {
      if (Date.now() > deadline) throw new Error(`containerd did not start: ${fs.readFileSync(path.join(dir, "containerd.log"), "utf8").slice(-500)}`);
      spawnSync("sleep", ["0.1"]);
    }
    must(this.ctr(["images", "import", "--base-name", "tsrun.local/engines", image.archive]), "ctr images import");
  }

  private ctr(args: string[], o: { input?: string; timeout?: number } = {}): Result {
    return call("ctr", ["--address", this.sock, "--namespace", this.ns, ...args], o);
  }

  // ctr run has no --user or pids flag, and its default spec no cgroup mount: those go through a full spec
  // (--config, made from ctr's default), which takes no image: the image's files, unpacked, read-only.
  private specFile(name: string, args: string[], o: RunOptions): string | undefined {
    if (o.user === undefined && o.pidsLimit === undefined && o.memoryBytes === undefined) return undefined;
    const spec = JSON.parse(must(this.ctr(["oci", "spec"]), "ctr oci spec").stdout) as {
      process: { args: string[]; user: { uid: number; gid: number }; env: string[]; cwd: string; terminal?: boolean };
      root: { path: string; readonly?: boolean };
      mounts: { destination: string; type: string; source: string; options: string[] }[];
      linux: { resources?: { pids?: { limit: number }; memory?: { limit: number } }; cgroupsPath?: string };
    };
    spec.process.args = args;
    spec.process.env = ["PATH=/bin:/usr/bin:/", ...(o.env ?? [])];
    if (o.cwd) spec.process.cwd = o.cwd;
    if (o.user !== undefined) {
      const [uid, gid] = o.user.split(":");
      spec.process.user = { uid: Number(uid), gid: Number(gid ?? 0) };
    }
    spec.linux.resources = { ...(spec.linux.resources ?? {}) };
    if (o.pidsLimit !== undefined) spec.linux.resources.pids = { limit: o.pidsLimit };
    if (o.memoryBytes !== undefined) spec.linux.resources.memory = { limit: o.memoryBytes };
    spec.root = { path: this.img.rootfs, readonly: true };
    spec.mounts.push({ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] });
    spec.linux.cgroupsPath = `/${this.ns}/${name}`;
    const file = path.join(this.dir, `${name}.spec.json`);
    fs.writeFileSync(file, JSON.stringify(spec));
    return file;
  }

  private runArgs(name: string, args: string[], o: RunOptions, mode: string[]): string[] {
    const spec = this.specFile(name, args, o);
    return [
      "run",
      ...mode,
      ...(this.shim ? ["--runtime", "io.containerd.tsrun.v2"] : ["--runc-binary", this.runtime, "--runc-root", this.runcRoot]),
      ...(spec ? ["--config", spec] : []),
      ...(o.tty ? ["--tty"] : []),
      ...(o.readOnly && !spec ? ["--read-only"] : []),
      ...(o.memoryBytes !== undefined && !spec ? ["--memory-limit", String(o.memoryBytes)] : []),
      ...(!spec ? (o.env ?? []).flatMap((e) => ["--env", e]) : []),
      ...(o.cwd && !spec ? ["--cwd", o.cwd] : []),
      ...(spec ? [name] : [this.image, name, ...args]),
    ];
  }

  // Note: `ctr run` passes stdin through but never closes it at end of input (with runc just the same), so
  // a process waiting for EOF would wait forever; the stdin scenario reads one line here.
  run(name: string, args: string[], o: RunOptions = {}): Result {
    const r = this.ctr(this.runArgs(name, args, o, ["--rm"]), o.input !== undefined ? { input: o.input } : {});
    this.remove(name);
    return r;
  }

  runDetached(name: string, args: string[], o: RunOptions = {}): void {
    must(this.ctr(this.runArgs(name, args, o, ["--detach"])), `ctr run -d ${name}`);
  }

  exec(name: string, args: string[], o: { user?: string; cwd?: string; env?: string[] } = {}): Result {
    const env = o.env ?? [];
    // ctr task exec has no --env: run through env(1) in the image
    const argv = env.length ? ["/bin/env", ...env, ...args] : args;
    return this.ctr(["task", "exec", "--exec-id", `x${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`, ...(o.user ? ["--user", o.user] : []), ...(o.cwd ? ["--cwd", o.cwd] : []), name, ...argv]);
  }

  status(name: string): string {
    const line = this.ctr(["task", "ls"]).stdout.split("\n").find((l) => l.split(/\s+/)[0] === name);
    return (line?.split(/\s+/)[2] ?? "unknown").toLowerCase();
  }

  pause(name: string): void {
    must(this.ctr(["task", "pause", name]), "ctr task pause");
  }
  resume(name: string): void {
    must(this.ctr(["task", "resume", name]), "ctr task resume");
  }
  kill(name: string, signal: string): void {
    must(this.ctr(["task", "kill", "--signal", signal, name]), "ctr task kill");
  }
  stop(name: string): void {
    this.kill(name, "SIGTERM");
  }

  // `ctr task metrics` (the shim's Stats: cgroup v1 Metrics), as printed
  metrics(name: string): Result {
    return this.ctr(["task", "metrics", name]);
  }

  // one `ctr run --rm` of /bin/true, in milliseconds (for a quick comparison of shims)
  timeRun(name: string): number {
    const t = process.hrtime.bigint();
    must(this.ctr(this.runArgs(name, ["/bin/true"], {}, ["--rm"])), "ctr run --rm /bin/true");
    return Number(process.hrtime.bigint() - t) / 1e6;
  }

  // the resident memory (kB) of the shims containerd started for this suite (containerd-shim-* processes
  // whose command line names this containerd's address)
  shimRss(): { pid: number; rssKb: number }[] {
    const out: { pid: number; rssKb: number }[] = [];
    for (const d of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const cmd = fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
        if (!cmd.some((a) => a.includes("containerd-shim") || a.endsWith("shim/containerd/main.js")) || !cmd.includes(this.sock)) continue;
        const rss = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${d}/status`, "utf8"));
        if (rss) out.push({ pid: Number(d), rssKb: Number(rss[1]) });
      } catch {
        // gone
      }
    }
    return out;
  }

  remove(name: string): void {
    this.ctr(["task", "kill", "--signal", "SIGKILL", name]);
    for (let i = 0; i < 50 && !["stopped", "unknown"].includes(this.status(name)); i++) spawnSync("sleep", ["0.1"]);
    this.ctr(["task", "rm", "--force", name]);
    this.ctr(["containers", "rm", name]);
  }

  ttyCommand(name: string, args: string[]): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } {
    return { cmd: "ctr", args: ["--address", this.sock, "--namespace", this.ns, ...this.runArgs(name, args, { tty: true }, ["--rm"])], env: process.env };
  }

  close(): void {
    for (const line of this.ctr(["containers", "ls", "-q"]).stdout.split("\n")) if (line.trim()) this.remove(line.trim());
    // (a shared tsrun shim stays for the next container: it goes with its containerd)
    if (this.shim) for (const s of this.shimRss()) process.kill(s.pid, "SIGKILL");
    if (this.daemon?.pid) {
      try {
        process.kill(this.daemon.pid, "SIGTERM");
      } catch {
        // gone
      }
      for (let i = 0; i < 50 && this.daemon.exitCode === null && fs.existsSync(`/proc/${this.daemon.pid}`); i++) spawnSync("sleep", ["0.1"]);
      try {
        process.kill(this.daemon.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    unmountUnder(this.dir);
    removeCgroupParent(this.ns);
  }
}

// ---------------------------------------------------------------------------------------------------------
// podman and Docker: the same command line shape; each says how it is invoked and its extra run flags.

export abstract class CliEngine implements Engine {
  abstract readonly name: string;
  protected abstract readonly image: string;
  protected abstract cli(args: string[], o?: { input?: string }): Result;
  protected abstract cliCommand(): { cmd: string; args: string[]; env: NodeJS.ProcessEnv };
  protected abstract engineRunArgs(): string[];

  constructor(readonly runtime: string) {}

  protected runArgs(o: RunOptions): string[] {
    return [
      ...this.engineRunArgs(),
      ...(o.tty ? ["--tty"] : []),
      ...(o.input !== undefined ? ["--interactive"] : []),
      ...(o.user ? ["--user", o.user] : []),
      ...(o.readOnly ? ["--read-only"] : []),
      ...(o.memoryBytes !== undefined ? ["--memory", String(o.memoryBytes), "--memory-swap", String(o.memoryBytes)] : []),
      ...(o.pidsLimit !== undefined ? ["--pids-limit", String(o.pidsLimit)] : []),
      ...(o.env ?? []).flatMap((e) => ["--env", e]),
      ...(o.cwd ? ["--workdir", o.cwd] : []),
    ];
  }

  run(name: string, args: string[], o: RunOptions = {}): Result {
    const r = this.cli(["run", "--rm", "--name", name, ...this.runArgs(o), this.image, ...args], o.input !== undefined ? { input: o.input } : {});
    this.remove(name);
    return r;
  }

  runDetached(name: string, args: string[], o: RunOptions = {}): void {
    must(this.cli(["run", "--detach", "--name", name, ...this.runArgs(o), this.image, ...args]), `${this.name} run -d ${name}`);
  }

  exec(name: string, args: string[], o: { user?: string; cwd?: string; env?: string[] } = {}): Result {
    return this.cli(["exec", ...(o.user ? ["--user", o.user] : []), ...(o.cwd ? ["--workdir", o.cwd] : []), ...(o.env ?? []).flatMap((e) => ["--env", e]), name, ...args]);
  }

  status(name: string): string {
    const s = this.cli(["inspect", "--format", "{{.State.Status}}", name]).stdout.trim();
    return s === "exited" ? "stopped" : s || "unknown";
  }

  pause(name: string): void {
    must(this.cli(["pause", name]), `${this.name} pause`);
  }
  resume(name: string): void {
    must(this.cli(["unpause", name]), `${this.name} unpause`);
  }
  kill(name: string, signal: string): void {
    must(this.cli(["kill", "--signal", signal, name]), `${this.name} kill`);
  }
  stop(name: string): void {
    must(this.cli(["stop", "--time", "5", name]), `${this.name} stop`);
  }
  remove(name: string): void {
    this.cli(["rm", "--force", name]);
  }

  ttyCommand(name: string, args: string[]): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } {
    const c = this.cliCommand();
    return { ...c, args: [...c.args, "run", "--rm", "--interactive", "--name", name, ...this.runArgs({ tty: true }), this.image, ...args] };
  }

  abstract close(): void;
}

export class Podman extends CliEngine {
  readonly name = "podman";
  private readonly env: NodeJS.ProcessEnv;
  private readonly base: string[];
  private readonly cgroupParent = `/tsrun-engines-podman-${process.pid}`;
  protected readonly image = "localhost/tsrun-engines:latest";

  constructor(
    private readonly dir: string,
    runtime: string,
    image: Image,
  ) {
    super(runtime);
    fs.mkdirSync(dir, { recursive: true });
    const runtimeName = path.basename(runtime);
    // podman passes --log-format=json --log only to runtimes listed in runtime_supports_json. The nofile and
    // nproc limits it would ask for (1048576) cannot be granted here (no CAP_SYS_RESOURCE), and conmon runs
    // the runtime with lower ones still: containers keep the runtime's own limits (--ulimit host).
    fs.writeFileSync(
      path.join(dir, "containers.conf"),
      ["[containers]", "default_ulimits = []", "[engine]", `runtime_supports_json = ["${runtimeName}", "runc", "crun"]`, 'events_logger = "file"', 'cgroup_manager = "cgroupfs"', ""].join("\n"),
    );
    fs.writeFileSync(path.join(dir, "storage.conf"), ["[storage]", 'driver = "overlay"', `runroot = "${dir}/runroot"`, `graphroot = "${dir}/root"`, ""].join("\n"));
    this.env = { ...process.env, CONTAINERS_CONF: path.join(dir, "containers.conf"), CONTAINERS_STORAGE_CONF: path.join(dir, "storage.conf") };
    // podman passes no --root to the runtime: give it a private one, so nothing lands in /run/<runtime>
    this.base = ["--root", `${dir}/root`, "--runroot", `${dir}/runroot`, "--tmpdir", `${dir}/tmp`, "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", runtime, "--runtime-flag", `root=${dir}/runtime-root`];
    must(this.cli(["pull", "-q", `oci:${image.layout}:latest`]), "podman pull oci:");
    must(this.cli(["tag", must(this.cli(["images", "-q"]), "images").stdout.trim().split("\n")[0]!, this.image]), "podman tag");
  }

  protected cli(args: string[], o: { input?: string } = {}): Result {
    return call("podman", [...this.base, ...args], { ...o, env: this.env });
  }

  protected cliCommand() {
    return { cmd: "podman", args: [...this.base], env: this.env };
  }

  protected engineRunArgs(): string[] {
    return ["--network", "none", "--ulimit", "host", "--cgroup-parent", this.cgroupParent];
  }

  close(): void {
    this.cli(["rm", "--all", "--force"]);
    this.cli(["rmi", "--all", "--force"]);
    this.cli(["system", "reset", "--force"]);
    unmountUnder(this.dir);
    removeCgroupParent(this.cgroupParent.slice(1));
  }
}

// ---------------------------------------------------------------------------------------------------------

export function unmountUnder(dir: string): void {
  const mounts = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m.startsWith(dir))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync("umount", ["-l", m]);
}

// Removes a cgroup parent this suite's containers were placed under (and anything left inside it).
export function removeCgroupParent(name: string): void {
  for (const c of fs.readdirSync("/sys/fs/cgroup")) {
    const d = path.join("/sys/fs/cgroup", c, name);
    if (!fs.existsSync(d)) continue;
    const rm = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rm(path.join(dir, e.name));
      for (let i = 0; i < 50; i++) {
        try {
          fs.rmdirSync(dir);
          return;
        } catch {
          spawnSync("sleep", ["0.05"]);
        }
      }
    };
    rm(d);
  }
}

export function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}
