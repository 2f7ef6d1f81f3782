// Docker (Debian's docker.io, 20.10): its own dockerd with a private data-root, exec-root and socket, no
// iptables and no bridge (containers run with --network none), the runtime added with --add-runtime.
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { call, CliEngine, type Image, must, removeCgroupParent, type Result, unmountUnder } from "./engines";

export class Docker extends CliEngine {
  readonly name = "docker";
  private readonly sock: string;
  private readonly runtimeName: string;
  private readonly cgroupParent = `/tsrun-engines-docker-${process.pid}`;
  protected readonly image = "tsrun.local/engines:latest";
  private daemonPid = 0;

  constructor(
    private readonly dir: string,
    runtime: string,
    image: Image,
  ) {
    super(runtime);
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
    while (this.cli(["version", "--format", "{{.Server.Version}}"]).code !== 0) {
      if (Date.now() > deadline) throw new Error(`dockerd did not start: ${fs.readFileSync(path.join(dir, "dockerd.log"), "utf8").slice(-500)}`);
      spawnSync("sleep", ["0.2"]);
    }
    // Docker 20.10 loads docker-archive, not OCI: convert with skopeo
    const archive = path.join(dir, "image.docker.tar");
    must(call("skopeo", ["copy", "--quiet", `oci:${image.layout}:latest`, `docker-archive:${archive}:${this.image}`]), "skopeo copy");
    must(this.cli(["load", "--input", archive]), "docker load");
  }

  protected cli(args: string[], o: { input?: string } = {}): Result {
    return call("docker", ["--host", `unix://${this.sock}`, ...args], o);
  }

  protected cliCommand() {
    return { cmd: "docker", args: ["--host", `unix://${this.sock}`], env: process.env };
  }

  protected engineRunArgs(): string[] {
    return ["--runtime", this.runtimeName, "--network", "none"];
  }

  close(): void {
    const ids = this.cli(["ps", "--all", "--quiet"]).stdout.split("\n").filter((l) => l.trim());
    if (ids.length) this.cli(["rm", "--force", ...ids]);
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
