// Framed messages (u32 length | u32 type | payload) over a socket with tsrun-init. A frame is read once the
// event loop has seen the socket readable (the helper writes each frame whole), so waiting for the helper
// never blocks the loop.
import * as fs from "fs";
import { TsrunError } from "../errors";
import { native } from "../native";

// The largest frame (length field: type + payload) either side accepts (native/helper/io.cc: 64 MiB).
export const MAX_FRAME = 64 << 20;

export interface Frame {
  type: number;
  payload: Buffer;
  fds: number[]; // passed with the frame (SCM_RIGHTS, close-on-exec): only MSG_SECCOMP_FD carries one
}

export class Channel {
  constructor(readonly fd: number) {}

  send(type: number, payload: Buffer = Buffer.alloc(0)): void {
    if (4 + payload.length > MAX_FRAME) throw new TsrunError(`message of ${payload.length} bytes to tsrun-init is larger than it accepts (${MAX_FRAME})`);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(4 + payload.length, 0);
    head.writeUInt32LE(type, 4);
    writeAll(this.fd, Buffer.concat([head, payload]));
  }

  // undefined at end of stream (the peer exited or closed). The header is read with recvmsg(2), so fds the
  // peer attached to the frame come with it (a frame's fds ride on its first bytes).
  async recv(): Promise<Frame | undefined> {
    await native().readable(this.fd);
    const fds: number[] = [];
    const head = readHead(this.fd, fds);
    if (!head) {
      for (const fd of fds) fs.closeSync(fd);
      return undefined;
    }
    const len = head.readUInt32LE(0);
    if (len < 4 || len > MAX_FRAME) throw new Error(`tsrun-init sent a malformed message (length ${len})`);
    const payload = len > 4 ? readExactly(this.fd, len - 4) : Buffer.alloc(0);
    if (!payload) return undefined;
    return { type: head.readUInt32LE(4), payload, fds };
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}

export function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

function readHead(fd: number, fds: number[]): Buffer | undefined {
  const n = native();
  const parts: Buffer[] = [];
  let got = 0;
  while (got < 8) {
    let m: { data: Buffer; fds: number[] };
    try {
      m = n.recvMsg(fd, 8 - got);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN" || code === "EINTR") continue;
      if (code === "ECONNRESET") return undefined;
      throw e;
    }
    fds.push(...m.fds);
    if (m.data.length === 0) return undefined;
    parts.push(m.data);
    got += m.data.length;
  }
  return Buffer.concat(parts);
}

function readExactly(fd: number, n: number): Buffer | undefined {
  const buf = Buffer.alloc(n);
  let off = 0;
  while (off < n) {
    let got: number;
    try {
      got = fs.readSync(fd, buf, off, n - off, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN" || (e as NodeJS.ErrnoException).code === "EINTR") continue;
      if ((e as NodeJS.ErrnoException).code === "ECONNRESET") return undefined;
      throw e;
    }
    if (got === 0) return undefined;
    off += got;
  }
  return buf;
}
