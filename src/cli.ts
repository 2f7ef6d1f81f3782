// The tsrun command line: runc's commands, flags, output and exit codes, as a thin shell over the
// library. Modules are loaded per command, so `state` or `kill` never pays for config validation.
import { Command, CommanderError, Option } from "commander";
import * as fs from "fs";
import * as path from "path";
import { TsrunError, messageOf } from "./errors";
import type { Runtime } from "./api";
import { type GlobalOpts, beforeCommand, cliContext, deleteVerb, failure, killVerb, listVerb, pauseVerb, logOptions, notifyOpts, rootOptions, startVerb, stateVerb, write } from "./cli-common";
import { Logger, oneLine } from "./log";
import type { Context } from "./runtime/context";

const VERSION = "0.1.0";
const SPEC_VERSION = "1.3.0";

let logger = new Logger();
let exitCode = 0;

// The context of the CLI-only verbs (exec's flags, run's foreground, events' exact JSON, ps, logs, attach).
function ctxOf(program: Command): Context {
  return cliContext(program.opts<GlobalOpts>(), logger);
}

// The library runtime the other verbs go through.
function runtimeOf(program: Command): Runtime {
  const g = program.opts<GlobalOpts>();
  const { Runtime } = require("./api") as typeof import("./api");
  return new Runtime({ ...rootOptions(g), log: logOptions(g), systemdCgroup: g.systemdCgroup === true });
}

function intOption(v: string): number {
  if (!/^\d+$/.test(v)) throw new TsrunError(`invalid number: ${v}`);
  return Number(v);
}

function commitOf(): string {
  for (const f of [path.resolve(__dirname, "..", "commit.txt"), path.resolve(__dirname, "commit.txt")]) {
    try {
      return fs.readFileSync(f, "utf8").trim();
    } catch {
      // next
    }
  }
  return "unknown";
}

export function buildProgram(): Command {
  const program = new Command("tsrun");
  // Set before the subcommands are added: they inherit these settings when created.
  program.exitOverride();
  program.configureOutput({
    writeOut: (s) => write(s),
    writeErr: (s) => {
      // commander's own usage errors go through the logger so --log gets them too
      if (/^error: /.test(s)) return;
      fs.writeSync(2, s);
    },
  });
  program
    .description("tsrun: a low-level OCI container runtime (runc-compatible)")
    .version(`tsrun version ${VERSION}\ncommit: ${commitOf()}\nspec: ${SPEC_VERSION}`, "-v, --version", "print the version")
    .option("--root <dir>", "root directory for storage of container state (this should be located in tmpfs) (default: \"/run/tsrun\", or \"$XDG_RUNTIME_DIR/tsrun\" for a non-root user)")
    .option("--log <file>", "set the log file to write tsrun logs to (default is stderr)")
    .addOption(new Option("--log-format <format>", "set the log format").choices(["text", "json"]).default("text"))
    .option("--debug", "enable debug logging")
    .option("--systemd-cgroup", "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:runc:434234\"")
    .addOption(new Option("--rootless <value>", "ignore cgroup permission errors ('true', 'false', or 'auto')").default("auto"))
    .addOption(new Option("--criu <path>", "path to the criu binary (unused)").hideHelp())
    .showSuggestionAfterError(false)
    .enablePositionalOptions()
    .hook("preAction", () => {
      logger = beforeCommand(program.opts<GlobalOpts>());
    });

  const createFlags = (c: Command) =>
    c
      .option("-b, --bundle <dir>", "path to the root of the bundle directory", ".")
      .option("--console-socket <path>", "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal (the socket itself: a symlink is refused)")
      .option("--pid-file <path>", "specify the file to write the process id to (written to a new file beside it, then renamed over it: a symlink there is replaced, never followed)")
      .option("--pidfd-socket <path>", "path to an AF_UNIX socket which will receive a file descriptor referencing the init process (a pidfd)")
      .option("--no-pivot", "do not use pivot root to jail process inside rootfs")
      .option("--no-new-keyring", "do not create a new session keyring for the container")
      .option("--preserve-fds <n>", "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total); each must be one the caller passed to tsrun", intOption, 0)
      .option("--init", "run a tiny init as PID 1 that reaps zombies and forwards signals to the process (docker run --init)");

  interface CreateCli {
    bundle: string;
    consoleSocket?: string;
    pidFile?: string;
    pidfdSocket?: string;
    pivot: boolean;
    newKeyring: boolean;
    preserveFds: number;
    init?: boolean;
  }
  const createOpts = (o: CreateCli) => ({
    bundle: o.bundle,
    ...(o.consoleSocket ? { consoleSocket: o.consoleSocket } : {}),
    ...(o.pidFile ? { pidFile: o.pidFile } : {}),
    ...(o.pidfdSocket ? { pidfdSocket: o.pidfdSocket } : {}),
    noPivot: !o.pivot,
    noNewKeyring: !o.newKeyring,
    preserveFds: o.preserveFds,
    init: o.init === true,
    ...notifyOpts(),
  });

  createFlags(program.command("create").argument("<container-id>").description("create a container"))
    .option("--shim", "supervise the container with a tsrun shim: its parent and subreaper, holding its stdio (tsrun logs) or pty (tsrun attach) and recording its exit in state")
    .action(async (id: string, o: CreateCli & { shim?: boolean }) => {
      await runtimeOf(program).create(id, { ...createOpts(o), shim: o.shim === true });
    });

  program
    .command("start")
    .argument("<container-id>")
    .description("executes the user defined process in a created container")
    .action(async (id: string) => {
      await startVerb(() => ctxOf(program), id);
    });

  createFlags(program.command("run").argument("<container-id>").description("create and run a container"))
    .option("-d, --detach", "detach from the container's process (it is then supervised by a tsrun shim)")
    .option("--no-shim", "with --detach: no shim; the container keeps tsrun's stdio, as runc's run -d")
    .option("--keep", "do not delete the container after it exits")
    .option("--no-subreaper", "disable the use of the subreaper used to reap reparented processes (accepted: tsrun's run is the init's parent and never a subreaper)")
    .action(async (id: string, o: CreateCli & { detach?: boolean; keep?: boolean; shim: boolean }) => {
      exitCode = await runtimeOf(program).run(id, { ...createOpts(o), detach: o.detach === true, keep: o.keep === true, noShim: o.shim === false });
    });

  program
    .command("logs")
    .argument("<container-id>")
    .description("print the output of a container supervised by a tsrun shim")
    .option("-f, --follow", "follow the output until the container exits")
    .option("-t, --timestamps", "prefix each chunk with its time")
    .action(async (id: string, o: { follow?: boolean; timestamps?: boolean }) => {
      const { logs } = require("./runtime/logs") as typeof import("./runtime/logs");
      await logs(ctxOf(program), id, { follow: o.follow === true, timestamps: o.timestamps === true });
    });

  program
    .command("attach")
    .argument("<container-id>")
    .description("connect this terminal to the pty of a container supervised by a tsrun shim")
    .action(async (id: string) => {
      const { attach } = require("./runtime/attach") as typeof import("./runtime/attach");
      await attach(ctxOf(program), id);
    });

  const collect = (v: string, prev: string[] = []) => [...prev, v];
  program
    .command("exec")
    .argument("<container-id>")
    .argument("[command...]", "the command and its arguments (or use --process)")
    .description("execute new process inside the container")
    .passThroughOptions()
    .option("--console-socket <path>", "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal (the socket itself: a symlink is refused)")
    .option("--cwd <dir>", "current working directory in the container")
    .option("-e, --env <KEY=value>", "set environment variables", collect)
    .option("-t, --tty", "allocate a pseudo-TTY")
    .option("-u, --user <uid[:gid]>", "UID (format: <uid>[:<gid>])")
    .option("-g, --additional-gids <gid>", "additional gids", collect)
    .option("-p, --process <file>", "path to the process.json")
    .option("-d, --detach", "detach from the container's process")
    .option("--pid-file <path>", "specify the file to write the process id to (written to a new file beside it, then renamed over it: a symlink there is replaced, never followed)")
    .option("--pidfd-socket <path>", "path to an AF_UNIX socket which will receive a file descriptor referencing the exec process (a pidfd)")
    .option("--process-label <label>", "set the asm process label for the process commonly used with selinux")
    .option("--apparmor <profile>", "set the apparmor profile for the process")
    .option("--no-new-privs", "set the no new privileges value for the process")
    .option("-c, --cap <cap>", "add a capability to the bounding, effective and permitted sets of the process (never inheritable, so a non-root process gains nothing from a file with +ei file capabilities; ambient too only when the process spec has an inheritable set)", collect)
    .option("--preserve-fds <n>", "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total); each must be one the caller passed to tsrun", intOption, 0)
    .option("--cgroup <path>", "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.", collect)
    .option("--ignore-paused", "allow exec in a paused container")
    .action(async (id: string, command: string[], o: { consoleSocket?: string; cwd?: string; env?: string[]; tty?: boolean; user?: string; additionalGids?: string[]; process?: string; detach?: boolean; pidFile?: string; pidfdSocket?: string; processLabel?: string; apparmor?: string; newPrivs?: boolean; cap?: string[]; preserveFds: number; cgroup?: string[]; ignorePaused?: boolean }) => {
      // As runc: whatever fails once the arguments are read is "exec failed: …" with exit status 255.
      try {
        const gids = (o.additionalGids ?? []).map((g) => {
          if (!/^\d+$/.test(g)) throw new TsrunError(`exec: --additional-gids: invalid gid "${g}"`);
          return Number(g);
        });
        const { exec } = require("./runtime/exec") as typeof import("./runtime/exec");
        exitCode = await exec(ctxOf(program), {
          id,
          args: command,
          ...(o.process ? { processFile: o.process } : {}),
          tty: o.tty === true,
          ...(o.consoleSocket ? { consoleSocket: o.consoleSocket } : {}),
          detach: o.detach === true,
          ...(o.pidFile ? { pidFile: o.pidFile } : {}),
          ...(o.pidfdSocket ? { pidfdSocket: o.pidfdSocket } : {}),
          ...(o.cwd ? { cwd: o.cwd } : {}),
          ...(o.env ? { env: o.env } : {}),
          ...(o.user ? { user: o.user } : {}),
          ...(gids.length ? { additionalGids: gids } : {}),
          ...(o.cap ? { caps: o.cap } : {}),
          noNewPrivs: o.newPrivs === false,
          ...(o.apparmor ? { apparmor: o.apparmor } : {}),
          ...(o.processLabel ? { processLabel: o.processLabel } : {}),
          preserveFds: o.preserveFds,
          ...(o.cgroup ? { cgroups: o.cgroup } : {}),
          ignorePaused: o.ignorePaused === true,
        });
      } catch (e) {
        throw new TsrunError(`exec failed: ${messageOf(e)}`, e instanceof TsrunError ? e.code : "SYSTEM", 255);
      }
    });

  program
    .command("state")
    .argument("<container-id>")
    .description("output the state of a container")
    .action((id: string) => {
      stateVerb(() => ctxOf(program), id);
    });

  program
    .command("list")
    .alias("ls")
    .description("lists containers started by tsrun with the given root")
    .addOption(new Option("-f, --format <format>", "select one of: table or json").choices(["table", "json"]).default("table"))
    .option("-q, --quiet", "display only container IDs")
    .action((o: { format: string; quiet?: boolean }) => {
      listVerb(() => ctxOf(program), o.format, o.quiet === true);
    });

  program
    .command("kill")
    .argument("<container-id>")
    .argument("[signal]", "signal name (with or without SIG) or number", "SIGTERM")
    .description("kill sends the specified signal (default: SIGTERM) to the container's init process")
    .option("-a, --all", "send the specified signal to all processes inside the container")
    .action(async (id: string, signal: string, o: { all?: boolean }) => {
      await killVerb(() => ctxOf(program), id, signal, o.all === true);
    });

  program
    .command("delete")
    .argument("<container-id>")
    .description("delete any resources held by the container often used with detached container")
    .option("-f, --force", "forcibly deletes the container if it is still running (uses SIGKILL)")
    .action(async (id: string, o: { force?: boolean }) => {
      await deleteVerb(() => ctxOf(program), id, o.force === true);
    });

  program
    .command("pause")
    .argument("<container-id>")
    .description("pause suspends all processes inside the container")
    .action(async (id: string) => {
      await pauseVerb(() => ctxOf(program), id, false);
    });

  program
    .command("resume")
    .argument("<container-id>")
    .description("resumes all processes that have been previously paused")
    .action(async (id: string) => {
      await pauseVerb(() => ctxOf(program), id, true);
    });

  program
    .command("ps")
    .argument("<container-id>")
    .argument("[ps-options...]", "options for ps(1) (default -ef)")
    .description("ps displays the processes running inside a container")
    .addOption(new Option("-f, --format <format>", "select one of: table or json").choices(["table", "json"]).default("table"))
    .passThroughOptions()
    .action(async (id: string, psArgs: string[], o: { format: "table" | "json" }) => {
      const { ps } = require("./runtime/ps") as typeof import("./runtime/ps");
      write(await ps(ctxOf(program), id, o.format, psArgs));
    });

  program
    .command("events")
    .argument("<container-id>")
    .description("display container events such as OOM notifications, cpu, memory, and IO usage statistics")
    .option("--interval <duration>", "set the stats collection interval", "5s")
    .option("--stats", "display the container's stats then exit")
    .action(async (id: string, o: { interval: string; stats?: boolean }) => {
      const ev = require("./runtime/events") as typeof import("./runtime/events");
      await ev.events(ctxOf(program), id, { stats: o.stats === true, intervalMs: ev.parseDuration(o.interval) }, write);
    });

  program
    .command("update")
    .argument("<container-id>")
    .description("update container resource constraints")
    .option("-r, --resources <file>", "path to the file containing the resources to update or '-' to read from the standard input (other options are then ignored)")
    .option("--blkio-weight <weight>", "Specifies per cgroup weight, range is from 10 to 1000")
    .option("--cpu-period <usecs>", "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default")
    .option("--cpu-quota <usecs>", "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period")
    .option("--cpu-burst <usecs>", "CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period")
    .option("--cpu-share <shares>", "CPU shares (relative weight vs. other containers)")
    .addOption(new Option("--cpu-shares <shares>", "the same as --cpu-share").hideHelp())
    .option("--cpu-rt-period <usecs>", "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default")
    .option("--cpu-rt-runtime <usecs>", "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period")
    .option("--cpuset-cpus <cpus>", "CPU(s) to use")
    .option("--cpuset-mems <mems>", "Memory node(s) to use")
    .option("--cpu-idle <0|1>", "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE")
    .addOption(new Option("--kernel-memory <bytes>", "(obsoleted; ignored with a warning)").hideHelp())
    .addOption(new Option("--kernel-memory-tcp <bytes>", "(obsoleted; ignored with a warning)").hideHelp())
    .option("--memory <bytes>", "Memory limit (in bytes)")
    .option("--memory-reservation <bytes>", "Memory reservation or soft_limit (in bytes)")
    .option("--memory-swap <bytes>", "Total memory usage (memory + swap); set '-1' to enable unlimited swap")
    .option("--pids-limit <n>", "Maximum number of pids allowed in the container")
    .option("--l3-cache-schema <schema>", "The string of Intel RDT/CAT L3 cache schema (not available)")
    .option("--mem-bw-schema <schema>", "The string of Intel RDT/MBA memory bandwidth schema (not available)")
    .action(async (id: string, o: import("./runtime/update").UpdateFlags & { resources?: string; cpuShares?: string }) => {
      const { update, resourcesFromOptions } = require("./runtime/update") as typeof import("./runtime/update");
      const { validateId } = require("./state/store") as typeof import("./state/store");
      validateId(id);
      const { resources, cpuShares, ...flags } = o;
      if (flags.cpuShare === undefined && cpuShares !== undefined) flags.cpuShare = cpuShares;
      await update(ctxOf(program), id, resourcesFromOptions(resources !== undefined ? { resources } : { flags }));
    });

  program
    .command("spec")
    .description("create a new specification file (config.json)")
    .option("-b, --bundle <dir>", "path to the root of the bundle directory")
    .option("--rootless", "generate a configuration for a rootless container")
    .action((o: { bundle?: string; rootless?: boolean }) => {
      const { defaultSpec, specJson } = require("./spec/default") as typeof import("./spec/default");
      const dir = path.resolve(o.bundle ?? ".");
      const file = path.join(dir, "config.json");
      // created, never opened through whatever is there (a file, or a symlink planted at the name)
      let fd: number;
      try {
        fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o666);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new TsrunError("File config.json exists. Remove it first");
        throw new TsrunError(`write ${file}: ${messageOf(e)}`);
      }
      try {
        fs.writeSync(fd, specJson(defaultSpec({ rootless: o.rootless === true })));
      } catch (e) {
        throw new TsrunError(`write ${file}: ${messageOf(e)}`);
      } finally {
        fs.closeSync(fd);
      }
    });

  program
    .command("features")
    .description("show the enabled features")
    .action(() => {
      const { features } = require("./runtime/features") as typeof import("./runtime/features");
      write(JSON.stringify(features(), null, "    ") + "\n");
    });

  program
    .command("check")
    .description("check what this host offers tsrun: namespaces, cgroups, kernel interfaces, seccomp, LSMs, systemd (status 1 when the default config cannot run)")
    .addOption(new Option("--format <format>", "output format").choices(["text", "json"]).default("text"))
    .action((o: { format: "text" | "json" }) => {
      const { gatherFacts } = require("./check/facts") as typeof import("./check/facts");
      const { buildReport, renderText, useColour } = require("./check/report") as typeof import("./check/report");
      const report = buildReport(gatherFacts());
      write(o.format === "json" ? JSON.stringify(report, null, 2) + "\n" : renderText(report, useColour(process.stdout.isTTY === true, process.env)));
      exitCode = report.exitCode;
    });

  return program;
}

// The first argument that is not a global option (or its value): the command name.
function commandName(program: Command, args: readonly string[]): string | undefined {
  const takesValue = new Set(program.options.filter((o) => o.required || o.optional).flatMap((o) => [o.long, o.short].filter((x): x is string => !!x)));
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") return args[i + 1];
    if (!a.startsWith("-")) return a;
    if (takesValue.has(a)) i++;
  }
  return undefined;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // As runc (urfave/cli): an unknown command, with or without -h, is "No help topic for 'NAME'", status 3.
  const name = commandName(program, argv.slice(2));
  if (name !== undefined && name !== "help" && !program.commands.some((c) => c.name() === name || c.aliases().includes(name))) {
    logger.error(`No help topic for '${name}'`);
    logger.close();
    return 3;
  }
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0 || e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      const g = program.opts<GlobalOpts>();
      logger = new Logger({ ...(g.log ? { file: g.log } : {}), format: g.logFormat ?? "text" });
      logger.error(e.message.replace(/^error: /, ""));
      return 1;
    }
    return failure(logger, e);
  } finally {
    logger.close();
  }
}

// The bin entry: run and exit with the command's code.
export function runCli(): void {
  main(process.argv).then(
    (code) => process.exit(code),
    (e) => {
      fs.writeSync(2, `${oneLine(messageOf(e))}\n`);
      process.exit(1);
    },
  );
}
