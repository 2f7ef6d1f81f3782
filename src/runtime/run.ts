// run: create + start, then (unless detached) wait for the init, forwarding signals, and exit with its
// status (128+N when killed by signal N). With a terminal and no --console-socket, tsrun holds the pty
// itself and connects it to its own stdin/stdout, raw, as runc does.
import * as fs from "fs";
import { TsrunError, messageOf } from "../errors";
import { native } from "../native";
import type { Context } from "./context";
import { loadBundle } from "./bundle";
import { create, type CreateOptions } from "./create";
import { remove } from "./delete";
import { start } from "./start";

export interface RunOptions extends Omit<CreateOptions, "consoleFd" | "loaded"> {
  detach?: boolean;
  keep?: boolean;
}

// (not SIGPROF: V8's profiler uses it, and a handler removed afterwards would leave it fatal)
const FORWARDED: NodeJS.Signals[] = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGVTALRM", "SIGXCPU", "SIGXFSZ", "SIGPWR"];

// Returns the exit code tsrun should exit with.
export async function run(ctx: Context, o: RunOptions): Promise<number> {
  const n = native();
  let ptyPair: [number, number] | undefined;
  const loaded = loadBundle(o.bundle ?? ".");
  const wantsTty = loaded.spec.process?.terminal === true;
  if (wantsTty && !o.consoleSocket) {
    if (o.detach) throw new TsrunError("cannot allocate tty if runc will detach without setting console socket");
    ptyPair = n.socketpair();
  }
  let created;
  try {
    created = create(ctx, { ...o, loaded, ...(ptyPair ? { consoleFd: ptyPair[1] } : {}) });
  } finally {
    if (ptyPair) fs.closeSync(ptyPair[1]);
  }
  const master = ptyPair ? n.recvFd(ptyPair[0]) : undefined;
  if (ptyPair) fs.closeSync(ptyPair[0]);
  try {
    start(ctx, o.id);
  } catch (e) {
    try {
      remove(ctx, o.id, { force: true });
    } catch (e2) {
      ctx.logger.warn(messageOf(e2));
    }
    throw e;
  }
  if (o.detach) return 0;

  const pid = created.pid;
  const forward = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // exited
    }
  };
  for (const s of FORWARDED) process.on(s, forward);
  const bridge = master !== undefined && master >= 0 ? attachTerminal(master) : undefined;
  const result = await n.waitAsync(pid);
  for (const s of FORWARDED) process.off(s, forward);
  if (bridge) await bridge.done();
  if (!o.keep) {
    try {
      remove(ctx, o.id, { force: true });
    } catch (e) {
      ctx.logger.warn(messageOf(e));
    }
  }
  return result.code ?? 255;
}

// Connects tsrun's stdin/stdout to the pty master; raw mode on a terminal; window size followed.
function attachTerminal(master: number): { done(): Promise<void> } {
  const n = native();
  const stdinTty = process.stdin.isTTY === true;
  const size = n.getWinsize(1) ?? n.getWinsize(0);
  if (size) n.setWinsize(master, size[0], size[1]);
  const onResize = () => {
    const s = n.getWinsize(1) ?? n.getWinsize(0);
    if (s) n.setWinsize(master, s[0], s[1]);
  };
  process.on("SIGWINCH", onResize);
  if (stdinTty) process.stdin.setRawMode(true);
  const out = fs.createReadStream("", { fd: master, autoClose: false, highWaterMark: 16384 });
  const input = fs.createWriteStream("", { fd: master, autoClose: false });
  process.stdin.pipe(input);
  const finished = new Promise<void>((resolve) => {
    out.on("data", (chunk) => process.stdout.write(chunk));
    out.on("error", () => resolve()); // EIO once the last slave fd closes
    out.on("end", () => resolve());
  });
  return {
    async done() {
      await finished;
      process.off("SIGWINCH", onResize);
      process.stdin.unpipe(input);
      if (stdinTty) process.stdin.setRawMode(false);
      process.stdin.pause();
      process.stdin.destroy();
      try {
        fs.closeSync(master);
      } catch {
        // closed
      }
    },
  };
}
