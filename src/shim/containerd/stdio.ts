// A process's stdio as containerd hands it to a shim: paths of FIFOs it reads and writes (or files), and a
// pty. stdout/stderr: the FIFO itself becomes the process's fd (a fresh blocking open, so the process never
// sees O_NONBLOCK). stdin: the shim reads the FIFO and copies into a socket whose other end is the process's
// stdin, so CloseIO can end it (EOF) while containerd's side stays open. A pty: the master bridged to the
// FIFOs.
import * as fs from "fs";
import * as net from "net";
import * as tty from "tty";
import { native } from "../../native";
import { Code, RpcError } from "./ttrpc";

export interface Stdio {
  fds: [number, number, number]; // for the process (closed by close() once it has been started)
  closeStdin(): void;
  attachTerminal(master: number): void;
  resize(rows: number, cols: number): void;
  close(): void; // the shim's copies of the process's fds
  dispose(): void; // everything (the process is gone)
}

function openOutput(p: string): number {
  if (!p) return fs.openSync("/dev/null", "w");
  if (/^[a-z]+:\/\//.test(p) && !p.startsWith("file://")) throw new RpcError(Code.UNIMPLEMENTED, `tsrun shim: stdio URI ${p.split(":")[0]} not supported`);
  const file = p.replace(/^file:\/\//, "");
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(file);
  } catch {
    // a file to create
  }
  if (!st || !st.isFIFO()) return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o640);
  // no reader yet: open read-write (which never blocks on a FIFO), else write-only
  let first: number;
  try {
    first = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    first = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  }
  try {
    return fs.openSync(`/proc/self/fd/${first}`, fs.constants.O_WRONLY); // blocking, a reader exists
  } finally {
    fs.closeSync(first);
  }
}

export function openStdio(o: { stdin: string; stdout: string; stderr: string; terminal: boolean }): Stdio {
  const opened: number[] = [];
  const streams: { destroy(): void }[] = [];
  let stdinWriter: net.Socket | undefined;
  let stdinFifo: net.Socket | undefined;
  let master: number | undefined;
  let stdoutFd: number | undefined;
  try {
    let stdin: number;
    if (o.stdin && !o.terminal) {
      const [mine, theirs] = native().socketpair();
      opened.push(theirs);
      stdinWriter = new net.Socket({ fd: mine, readable: false, writable: true });
      stdinWriter.on("error", () => {});
      // read-write: the open does not wait for containerd's writer, and the FIFO never reads as ended
      stdinFifo = new net.Socket({ fd: fs.openSync(o.stdin, fs.constants.O_RDWR | fs.constants.O_NONBLOCK), readable: true, writable: false });
      stdinFifo.on("error", () => {});
      stdinFifo.pipe(stdinWriter);
      streams.push(stdinFifo, stdinWriter);
      stdin = theirs;
    } else {
      stdin = fs.openSync("/dev/null", "r");
      opened.push(stdin);
    }
    const stdout = openOutput(o.stdout);
    opened.push(stdout);
    stdoutFd = stdout;
    const stderr = o.stderr && o.stderr !== o.stdout ? openOutput(o.stderr) : stdout;
    if (stderr !== stdout) opened.push(stderr);
    const fds: [number, number, number] = [stdin, stdout, stderr];
    let closed = false;
    const s: Stdio = {
      fds,
      closeStdin() {
        stdinFifo?.unpipe();
        stdinFifo?.destroy();
        stdinWriter?.end();
      },
      attachTerminal(m: number) {
        master = m;
        const rd = new tty.ReadStream(m); // owns the master: closed when the pty hangs up
        rd.on("error", () => {});
        rd.on("close", () => (master = undefined));
        if (stdoutFd !== undefined) {
          const out = fs.createWriteStream("", { fd: fs.openSync(`/proc/self/fd/${stdoutFd}`, "w") });
          out.on("error", () => {});
          rd.pipe(out);
          streams.push(out);
        }
        streams.push(rd);
        if (o.stdin) {
          const inFifo = new net.Socket({ fd: fs.openSync(o.stdin, fs.constants.O_RDWR | fs.constants.O_NONBLOCK), readable: true, writable: false });
          inFifo.on("error", () => {});
          inFifo.on("data", (d: Buffer) => {
            try {
              if (master !== undefined) fs.writeSync(master, d);
            } catch {
              // the pty is gone, or full
            }
          });
          streams.push(inFifo);
          stdinFifo = inFifo;
        }
      },
      resize(rows: number, cols: number) {
        if (master === undefined) return; // (the process has exited: nothing to resize, as runc's shim)
        try {
          native().setWinsize(master, rows, cols);
        } catch {
          // the pty hung up
        }
      },
      close() {
        if (closed) return;
        closed = true;
        for (const fd of opened) fs.closeSync(fd);
      },
      dispose() {
        s.close();
        for (const st of streams) st.destroy();
      },
    };
    return s;
  } catch (e) {
    for (const fd of opened) fs.closeSync(fd);
    for (const st of streams) st.destroy();
    throw e;
  }
}
