// A process's stdio as containerd hands it to a shim: paths of FIFOs it reads and writes (or files), a log
// URI, and a pty. stdout/stderr: the FIFO itself becomes the process's fd (a fresh blocking open, so the
// process never sees O_NONBLOCK). stdin: the shim reads the FIFO and copies into a socket whose other end is
// the process's stdin, so CloseIO can end it (EOF) while containerd's side stays open. A pty: the master
// bridged to the FIFOs. As containerd's runc shim (pkg/process/io.go), stdout's URI scheme decides for both
// outputs: none (a FIFO or file path); file:///path (stdout and stderr appended to that one file, its
// directory made); binary:///path/to/logger?k=v (and binary-v2): the logger started with fds 3 and 4 the
// read ends of the process's stdout and stderr pipes and fd 5 a pipe it closes (binary-v2: writes a byte
// to) once ready, args k v from the query, only CONTAINER_ID and CONTAINER_NAMESPACE in its environment;
// stopped with SIGTERM (SIGKILL 12 s later) when the process is deleted.
import { type ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import * as tty from "tty";
import { native } from "../../native";
import { Code, RpcError } from "./ttrpc";

export interface Stdio {
  fds: [number, number, number]; // for the process (closed by close() once it has been started)
  closeStdin(): void;
  attachTerminal(master: number): void;
  resize(rows: number, cols: number): void;
  close(): void; // the shim's copies of the process's fds
  dispose(): Promise<void>; // everything (the process is gone); resolves once a logger binary has exited
}

// Whose stdio: CONTAINER_ID (the container's id, an exec's id for an exec, as containerd's shim) and
// CONTAINER_NAMESPACE of a logger binary.
export interface StdioOwner {
  id: string;
  namespace: string;
}

export const LOGGER_TERM_TIMEOUT_MS = 12_000;

function schemeOf(uri: string): string {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri);
  return m ? m[1]!.toLowerCase() : "";
}

// A logging binary with its pipes; resolves once it is ready.
async function startLogger(uri: string, owner: StdioOwner): Promise<{ child: ChildProcess; out: number; err: number }> {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new RpcError(Code.INVALID_ARGUMENT, `unable to parse stdout uri: ${uri}`);
  }
  const bin = decodeURIComponent(u.pathname);
  const args: string[] = [];
  const seen = new Set<string>();
  for (const [k, v] of u.searchParams) {
    if (seen.has(k)) continue; // (Go's Query: the first value of each key)
    seen.add(k);
    args.push(k, v);
  }
  const n = native();
  const fds: number[] = [];
  const pipe = () => {
    const p = n.pipe();
    fds.push(...p);
    return p;
  };
  let child: ChildProcess | undefined;
  try {
    const out = pipe();
    const err = pipe();
    const ready = pipe();
    child = spawn(bin, args, { stdio: ["ignore", "ignore", "ignore", out[0], err[0], ready[1]], env: { CONTAINER_ID: owner.id, CONTAINER_NAMESPACE: owner.namespace } });
    const started = child;
    if (started.pid === undefined) {
      const e = await new Promise<Error>((resolve) => started.once("error", resolve));
      throw new RpcError(Code.UNKNOWN, `failed to start binary process: ${e.message}`);
    }
    started.on("error", () => {});
    for (const fd of [out[0], err[0], ready[1]]) {
      fs.closeSync(fd);
      fds.splice(fds.indexOf(fd), 1);
    }
    // ready: a byte, or the end of the pipe (binary: either; binary-v2: the byte)
    await n.readable(ready[0], -1);
    const b = Buffer.alloc(1);
    let got = 0;
    try {
      got = fs.readSync(ready[0], b, 0, 1, null);
    } catch (e) {
      throw new RpcError(Code.UNKNOWN, `failed to read from logging binary: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (u.protocol === "binary-v2:" && got === 0) throw new RpcError(Code.UNKNOWN, "logging binary did not call ready (it may have crashed or exited prematurely)");
    fs.closeSync(ready[0]);
    fds.splice(fds.indexOf(ready[0]), 1);
    return { child: started, out: out[1], err: err[1] };
  } catch (e) {
    for (const fd of fds) fs.closeSync(fd);
    child?.kill("SIGKILL");
    throw e;
  }
}

// SIGTERM, then SIGKILL when it has not exited after LOGGER_TERM_TIMEOUT_MS; resolves once it has exited.
function stopLogger(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill("SIGKILL"), LOGGER_TERM_TIMEOUT_MS);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

function openOutput(p: string): number {
  if (!p) return fs.openSync("/dev/null", "w");
  const file = p;
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

export async function openStdio(o: { stdin: string; stdout: string; stderr: string; terminal: boolean }, owner: StdioOwner): Promise<Stdio> {
  const opened: number[] = [];
  const streams: { destroy(): void }[] = [];
  let logger: ChildProcess | undefined;
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
    const scheme = schemeOf(o.stdout);
    let stdout: number;
    let stderr: number;
    if (scheme === "binary" || scheme === "binary-v2") {
      const l = await startLogger(o.stdout, owner);
      logger = l.child;
      stdout = l.out;
      stderr = l.err;
      opened.push(stdout, stderr);
    } else if (scheme === "file") {
      let file: string;
      try {
        file = decodeURIComponent(new URL(o.stdout).pathname);
      } catch {
        throw new RpcError(Code.INVALID_ARGUMENT, `unable to parse stdout uri: ${o.stdout}`);
      }
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
      stdout = stderr = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o644);
      opened.push(stdout);
    } else if (scheme && scheme !== "fifo") {
      throw new RpcError(Code.INVALID_ARGUMENT, `unknown STDIO scheme ${scheme}`);
    } else {
      const plain = (p: string) => (schemeOf(p) === "fifo" ? p.replace(/^fifo:\/\//i, "") : p);
      stdout = openOutput(plain(o.stdout));
      opened.push(stdout);
      stderr = o.stderr && o.stderr !== o.stdout ? openOutput(plain(o.stderr)) : stdout;
      if (stderr !== stdout) opened.push(stderr);
    }
    stdoutFd = stdout;
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
        const l = logger;
        logger = undefined;
        return l ? stopLogger(l) : Promise.resolve();
      },
    };
    return s;
  } catch (e) {
    for (const fd of opened) fs.closeSync(fd);
    for (const st of streams) st.destroy();
    if (logger) void stopLogger(logger);
    throw e;
  }
}
