// A process in the foreground of tsrun (run, exec): signals tsrun receives are forwarded to it, a pty it
// has is connected to tsrun's own terminal (raw mode, window size followed), and tsrun learns its exit
// status (it is tsrun's child: tsrun-init clones it with CLONE_PARENT).
import * as fs from "fs";
import { native } from "../native";

// (not SIGPROF: V8's profiler uses it, and a handler removed afterwards would leave it fatal)
const FORWARDED: NodeJS.Signals[] = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGVTALRM", "SIGXCPU", "SIGXFSZ", "SIGPWR"];

// Catches the signals tsrun forwards from now on (as runc's signal handler is set up before the container
// starts: a signal sent while it is being started is not lost, nor fatal to tsrun); they are queued until
// the pid is known, then delivered.
export class SignalForwarder {
  private pid = 0;
  private readonly queued: NodeJS.Signals[] = [];
  private readonly handler = (sig: NodeJS.Signals) => {
    if (this.pid > 0) this.send(sig);
    else this.queued.push(sig);
  };

  constructor() {
    for (const s of FORWARDED) process.on(s, this.handler);
  }

  to(pid: number): void {
    this.pid = pid;
    for (const sig of this.queued.splice(0)) this.send(sig);
  }

  private send(sig: NodeJS.Signals): void {
    try {
      process.kill(this.pid, sig);
    } catch {
      // exited
    }
  }

  stop(): void {
    for (const s of FORWARDED) process.off(s, this.handler);
  }
}

// Resolves to the exit code (128+N when killed by signal N).
export async function waitForeground(pid: number, master?: number, forwarder: SignalForwarder = new SignalForwarder()): Promise<number> {
  forwarder.to(pid);
  const bridge = master !== undefined && master >= 0 ? attachTerminal(master) : undefined;
  try {
    const result = await native().waitAsync(pid);
    return result.code ?? 255;
  } finally {
    forwarder.stop();
    if (bridge) await bridge.done();
  }
}

// Connects tsrun's stdin/stdout to the pty master; raw mode on a terminal; window size followed.
export function attachTerminal(master: number): { done(): Promise<void> } {
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
