// The addon's typed surface, loaded on first use so commands that need no native call stay fast.
import * as fs from "fs";
import * as path from "path";

export interface WaitResult {
  pid: number;
  code?: number;
  signal?: number;
}

export interface NativeApi {
  spawn(file: string, argv: string[], env: string[], fds: number[]): number;
  sealedCopy(file: string): number;
  socketpair(seqpacket?: boolean): [number, number];
  // pipe2(O_CLOEXEC): [read end, write end]
  pipe(): [number, number];
  // eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK)
  eventfd(): number;
  connectUnix(file: string, seqpacket?: boolean): number;
  // non-blocking, close-on-exec datagram sockets: bound to a path (nothing may be there), or connected to one
  // ("@name": an abstract socket); long paths are reached through their directory
  bindUnixgram(file: string): number;
  connectUnixgram(file: string): number;
  // an O_PATH|O_NOFOLLOW fd of the path itself (a final symlink is not followed), close-on-exec
  openPath(file: string): number;
  // a socket connected through /proc/self/fd/N of an O_PATH fd (no second lookup of the path)
  connectUnixAt(fd: number, seqpacket?: boolean): number;
  sendFd(sock: number, fd: number, name?: string): void;
  sendFds(sock: number, data: Buffer, fds: number[]): void;
  recvFd(sock: number): number;
  // one recvmsg(2) of at most `length` bytes, with the fds it carried (data empty at end of stream)
  recvMsg(sock: number, length: number): { data: Buffer; fds: number[] };
  flock(fd: number, exclusive: boolean, wait: boolean): boolean;
  waitpid(pid: number, nohang?: boolean): WaitResult;
  waitAsync(pid: number): Promise<WaitResult>;
  // prctl(PR_SET_CHILD_SUBREAPER / PR_GET_CHILD_SUBREAPER)
  setChildSubreaper(on: boolean): void;
  isChildSubreaper(): boolean;
  // a child that has exited, not reaped (waitid WNOWAIT): its pid, or 0 when there is none
  zombieChild(): number;
  // true once fd is readable or hung up (a pidfd: the process exited), false after timeoutMs (< 0: none);
  // watched on the event loop, no thread held
  readable(fd: number, timeoutMs?: number): Promise<boolean>;
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, signal: number): void;
  getWinsize(fd: number): [number, number] | null;
  setWinsize(fd: number, rows: number, cols: number): void;
  // mount(2) and umount2(2) as given ("" source, fstype or data: NULL); errors name the step and the path
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
  // native/bpf.cc: cgroup v2 device programs (fds are close-on-exec)
  bpfLoadDeviceProgram(insns: Buffer, license: string): number;
  bpfQueryDevicePrograms(cgroupFd: number): number[];
  bpfProgramFdById(id: number): number;
  bpfAttachDeviceProgram(cgroupFd: number, progFd: number, replaceFd: number): void;
  bpfDetachDeviceProgram(cgroupFd: number, progFd: number): void;
  // native/netlink.cc: a NETLINK_ROUTE socket (of the network namespace of netnsFd; -1: the current one),
  // and one request with its answers (those with the request's sequence number, up to DONE or ERROR)
  netlinkSocket(netnsFd: number): number;
  netlinkTalk(fd: number, request: Buffer): Buffer[];
}

let buildDir: string | undefined;

// build/Release of the package: dist/src/native.js sits two levels below the package root.
export function nativeBuildDir(): string {
  if (buildDir) return buildDir;
  // dist/src/native.js, or the bundle dist/tsrun-snapshot.js
  const candidates = [process.env.TSRUN_NATIVE_DIR, path.resolve(__dirname, "..", "..", "build", "Release"), path.resolve(__dirname, "..", "build", "Release")];
  for (const c of candidates) {
    if (c && fs.existsSync(path.join(c, "tsrun_native.node"))) return (buildDir = c);
  }
  throw new Error("tsrun's native addon is not built: run `npm ci` (or `npm run install`) in the package directory");
}

let api: NativeApi | undefined;
export function native(): NativeApi {
  if (!api) {
    // process.dlopen rather than require: it also works from a bundle or a startup snapshot.
    const mod = { exports: {} as NativeApi };
    process.dlopen(mod, path.join(nativeBuildDir(), "tsrun_native.node"));
    api = mod.exports;
  }
  return api;
}

export function helperBinary(): string {
  return path.join(nativeBuildDir(), "tsrun-init");
}

// One sealed copy per tsrun process: it is executed through /proc/self/fd/N.
let sealedFd: number | undefined;
export function sealedHelper(): string {
  if (sealedFd === undefined) sealedFd = native().sealedCopy(helperBinary());
  return `/proc/self/fd/${sealedFd}`;
}
