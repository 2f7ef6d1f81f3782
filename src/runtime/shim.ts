// The client side of tsrun's shim (tsrun-init in shim mode; see native/helper/shim.cc): it is started
// detached, then asked to start the set-up helper as its own child, so the container's init is the shim's
// child and the shim can supervise it after tsrun exits.
import * as fs from "fs";
import { TsrunError } from "../errors";
import { native, sealedHelper } from "../native";
import { FLAGS, Msg } from "../plan/protocol";

export class ShimClient {
  private constructor(
    private ctl: number,
    readonly pid: number,
  ) {}

  static start(stateDir: string): ShimClient {
    const n = native();
    const [ours, theirs] = n.socketpair(true);
    const dirFd = fs.openSync(stateDir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    const devnull = fs.openSync("/dev/null", "r+");
    try {
      const pid = n.spawn(sealedHelper(), ["tsrun-shim", "shim", "3", "4"], [], [devnull, devnull, devnull, theirs, dirFd]);
      return new ShimClient(ours, pid);
    } finally {
      fs.closeSync(theirs);
      fs.closeSync(dirFd);
      fs.closeSync(devnull);
    }
  }

  // A running shim's control socket (for exec --detach, whose process the shim then reaps).
  static connect(stateDir: string): ShimClient | undefined {
    const sock = `${stateDir}/shim.sock`;
    if (!fs.existsSync(sock)) return undefined;
    try {
      return new ShimClient(native().connectUnix(sock, true), 0);
    } catch {
      return undefined;
    }
  }

  // Starts `argv` (the sealed helper) as the shim's child with child fd i = fds[i]. With `logs`, fds 0-2
  // are replaced by /dev/null and pipes to the container log; with `consoleIndex`, that fd by a socket
  // whose peer (the shim) receives the pty master.
  async spawn(argv: string[], fds: number[], o: { logs: boolean; consoleIndex?: number }): Promise<number> {
    const args = Buffer.from(argv.map((a) => `${a}\0`).join(""));
    const head = Buffer.alloc(12);
    head.writeUInt32LE(Msg.SHIM_SPAWN, 0);
    const flag = FLAGS.SHIM_SPAWN.values;
    head.writeUInt32LE((o.logs ? flag.LOGS : 0) | (o.consoleIndex !== undefined ? flag.CONSOLE : 0), 4);
    head.writeInt32LE(o.consoleIndex ?? -1, 8);
    native().sendFds(this.ctl, Buffer.concat([head, args]), fds);
    const reply = Buffer.alloc(512);
    await native().readable(this.ctl);
    const got = fs.readSync(this.ctl, reply, 0, reply.length, null);
    if (got < 8) throw new TsrunError("shim: no reply to spawn");
    const type = reply.readUInt32LE(0);
    if (type === Msg.SHIM_SPAWNED) return reply.readInt32LE(4);
    throw new TsrunError(type === Msg.ERROR ? reply.toString("utf8", 4, got) : `shim: unexpected reply ${type}`);
  }

  setInit(pid: number): void {
    const m = Buffer.alloc(8);
    m.writeUInt32LE(Msg.SHIM_INIT, 0);
    m.writeInt32LE(pid, 4);
    fs.writeSync(this.ctl, m);
  }

  close(): void {
    if (this.ctl >= 0) fs.closeSync(this.ctl);
    this.ctl = -1;
  }
}
