// attach: connect this terminal to the pty a shim holds for a container (raw mode, window size followed).
// Output and input go through the shim (which also logs the output); the shim also hands over the pty
// master, used here only to set the window size.
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { TsrunError, messageOf } from "../errors";
import { native } from "../native";
import type { Context } from "./context";
import { validateId } from "../state/store";

export async function attach(ctx: Context, id: string): Promise<void> {
  validateId(id);
  const n = native();
  const record = ctx.store.read(id);
  if (ctx.store.status(record) === "stopped") throw new TsrunError("cannot attach to a stopped container");
  const sockPath = path.join(ctx.store.dir(id), "attach.sock");
  if (!record.shimPid || !fs.existsSync(sockPath)) throw new TsrunError(`container ${id} has no terminal held by a tsrun shim (run -d or create --shim, with process.terminal)`);
  let fd: number;
  try {
    fd = n.connectUnix(sockPath);
  } catch (e) {
    throw new TsrunError(`attach to ${id}: ${messageOf(e)}`);
  }
  const master = n.recvFd(fd);
  const resize = () => {
    const size = n.getWinsize(1) ?? n.getWinsize(0);
    if (size && master >= 0) n.setWinsize(master, size[0], size[1]);
  };
  resize();
  process.on("SIGWINCH", resize);
  const raw = process.stdin.isTTY === true;
  if (raw) process.stdin.setRawMode(true);
  const sock = new net.Socket({ fd, readable: true, writable: true });
  process.stdin.pipe(sock);
  sock.pipe(process.stdout);
  await new Promise<void>((resolve) => {
    sock.on("end", resolve);
    sock.on("close", resolve);
    sock.on("error", () => resolve());
  });
  process.off("SIGWINCH", resize);
  process.stdin.unpipe(sock);
  if (raw) process.stdin.setRawMode(false);
  process.stdin.destroy();
  if (master >= 0) fs.closeSync(master);
}
