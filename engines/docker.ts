// Docker (Debian's docker.io, 20.10): its own dockerd with a private data-root, exec-root and socket, no
// iptables and no bridge (containers run with --network none), the runtime added with --add-runtime.
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { call, type Engine, type Image, must, removeCgroupParent, type Result, type RunOptions, unmountUnder } from "./engines";

export class Docker implements Engine {
  readonly name = "docker";
  private readonly sock: string;
  private readonly runtimeName: string;
  private readonly cgroupParent = `/tsrun-engines-docker-${process.pid}`;
  private readonly image = "tsrun.local/engines:latest";
  private daemonPid = 0;

  constructor(
    private readonly dir: string,
    readonly runtime: string,
    image: Image,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.sock = path.join(dir, "docker.sock");
    // "runc" is Docker's built-in runtime name: the reference runc gets another
    this.runtimeName = `engines-${path.basename(runtime)}`;
    const log = fs.openSync(path.join(dir, "dockerd.log"), "w");
    const d = spawn(
      "dockerd",
      ["--data-root", `${dir}/root`, "--exec-root", `${dir}/exec`, "--host", `unix://${this.sock}`, "--pidfile", `${dir}/dockerd.pid`, "--iptables=false", "--ip6tables=false", "--bridge=none", "--cgroup-parent", this.cgroupParent, "--add-runtime", `${this.runtimeName}=${runtime}`],
      { stdio: ["ignore", log, log], detached: true },
    );
    fs.closeSync(log);
    this.daemonPid = d.pid ?? 0;
    const deadline = Date.now() + 30_000;
    while (this.docker(["version", "--format", "{{.Server.Version}}"]).code !== 0) {
      if (Date.now() > deadline) throw new Error(`dockerd did not start: ${fs.readFileSync(path.join(dir, "dockerd.log"), "utf8").slice(-500)}`);
      spawnSync("sleep", ["0.2"]);
    }
    // Docker 20.10 loads docker-archive, not OCI: convert with skopeo
    const archive = path.join(dir, "image.docker.tar");
    must(call("skopeo", ["copy", "--quiet", `oci:${image.layout}:latest`, `docker-archive:${archive}:${this.image}`]), "skopeo copy");
    must(this.docker(["load", "--input", archive]), "docker load");
  }

  private docker(args: string[], o: { input?: string; timeout?: number } = {}): Result {
    return call("docker", ["--host", `unix://${this.sock}`, ...args], o);
  }

  private runArgs(o: RunOptions): string[] {
    return [
      "--runtime",
      this.runtimeName,
      "--network",
      "none",
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
    const r = this.docker(["run", "--rm", "--name", name, ...this.runArgs(o), this.image, ...args], o.input !== undefined ? { input: o.input } : {});
    this.docker(["rm", "--force", name]);
    return r;
  }

  runDetached(name: string, args: string[], o: RunOptions = {}): void {
    must(this.docker(["run", "--detach", "--name", name, ...this.runArgs(o), this.image, ...args]), `docker run -d ${name}`);
  }

  exec(name: string, args: string[], o: { user?: string; cwd?: string; env?: string[] } = {}): Result {
    return this.docker(["exec", ...(o.user ? ["--user", o.user] : []), ...(o.cwd ? ["--workdir", o.cwd] : []), ...(o.env ?? []).flatMap((e) => ["--env", e]), name, ...args]);
  }

  status(name: string): string {
    const s = this.docker(["inspect", "--format", "{{.State.Status}}", name]).stdout.trim();
    return s === "exited" ? "stopped" : s || "unknown";
  }

  pause(name: string): void {
    must(this.docker(["pause", name]), "docker pause");
  }
  resume(name: string): void {
    must(this.docker(["unpause", name]), "docker unpause");
  }
  kill(name: string, signal: string): void {
    must(this.docker(["kill", "--signal", signal, name]), "docker kill");
  }
  stop(name: string): void {
    must(this.docker(["stop", "--time", "5", name]), "docker stop");
  }
  remove(name: string): void {
    this.docker(["rm", "--force", name]);
  }

  ttyCommand(name: string, args: string[]): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } {
    return { cmd: "docker", args: ["--host", `unix://${this.sock}`, "run", "--rm", "--interactive", "--name", name, ...this.runArgs({ tty: true }), this.image, ...args], env: process.env };
  }

  close(): void {
    const ids = this.docker(["ps", "--all", "--quiet"]).stdout.split("\n").filter((l) => l.trim());
    if (ids.length) this.docker(["rm", "--force", ...ids]);
    if (this.daemonPid) {
      try {
        process.kill(this.daemonPid, "SIGTERM");
      } catch {
        // gone
      }
      for (let i = 0; i < 100 && fs.existsSync(`/proc/${this.daemonPid}`) && !/\) Z/.test(fs.readFileSync(`/proc/${this.daemonPid}/stat`, "utf8")); i++) spawnSync("sleep", ["0.1"]);
    }
    unmountUnder(this.dir);
    removeCgroupParent(this.cgroupParent.slice(1));
  }
}
