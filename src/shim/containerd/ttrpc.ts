// ttrpc (github.com/containerd/ttrpc), the RPC containerd speaks to its shims: frames on a unix socket, a
// 10-byte header — payload length (u32 BE), stream id (u32 BE), type (u8: 1 request, 2 response), flags
// (u8) — then a protobuf ttrpc.Request / ttrpc.Response. A client's stream ids are odd and grow by 2; a
// server answers on the request's stream id. A server and a client, both small.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as net from "net";
import { RequestSchema, ResponseSchema, type Response } from "./gen/ttrpc/ttrpc_pb";

export const HEADER = 10;
export const MAX_MESSAGE = 4 << 20; // ttrpc's messageLengthMax
export const TYPE_REQUEST = 1;
export const TYPE_RESPONSE = 2;

// gRPC status codes containerd branches on (errdefs).
export const Code = {
  OK: 0,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
} as const;

// An error that goes back to the caller as a status (code and message).
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "RpcError";
  }
}

export interface Frame {
  streamId: number;
  type: number;
  flags: number;
  payload: Buffer;
}

export function encodeFrame(f: Frame): Buffer {
  if (f.payload.length > MAX_MESSAGE) throw new RpcError(Code.INVALID_ARGUMENT, `message length ${f.payload.length} exceed maximum message size of ${MAX_MESSAGE}`);
  const h = Buffer.alloc(HEADER);
  h.writeUInt32BE(f.payload.length, 0);
  h.writeUInt32BE(f.streamId >>> 0, 4);
  h.writeUInt8(f.type, 8);
  h.writeUInt8(f.flags, 9);
  return Buffer.concat([h, f.payload]);
}

// Splits a byte stream into frames: push() what arrived, it returns the complete frames.
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(data: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    const out: Frame[] = [];
    while (this.buf.length >= HEADER) {
      const len = this.buf.readUInt32BE(0);
      if (len > MAX_MESSAGE) throw new RpcError(Code.INVALID_ARGUMENT, `message length ${len} exceed maximum message size of ${MAX_MESSAGE}`);
      if (this.buf.length < HEADER + len) break;
      out.push({ streamId: this.buf.readUInt32BE(4), type: this.buf.readUInt8(8), flags: this.buf.readUInt8(9), payload: Buffer.from(this.buf.subarray(HEADER, HEADER + len)) });
      this.buf = this.buf.subarray(HEADER + len);
    }
    return out;
  }
}

export type Handler = (payload: Uint8Array) => Promise<Uint8Array>;

// A ttrpc server: "service/method" -> handler. Requests on one connection run concurrently (a Wait must not
// hold up a Kill), each answered when its handler settles.
export class Server {
  private readonly server: net.Server;
  private readonly conns = new Set<net.Socket>();

  constructor(private readonly handlers: ReadonlyMap<string, Handler>) {
    this.server = net.createServer((s) => this.serve(s));
  }

  listen(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(path, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
  }

  close(): void {
    this.server.close();
    for (const c of this.conns) c.destroy();
  }

  private serve(sock: net.Socket): void {
    this.conns.add(sock);
    const reader = new FrameReader();
    sock.on("data", (d: Buffer) => {
      let frames: Frame[];
      try {
        frames = reader.push(d);
      } catch {
        sock.destroy();
        return;
      }
      for (const f of frames) if (f.type === TYPE_REQUEST) void this.dispatch(sock, f);
    });
    sock.on("error", () => sock.destroy());
    sock.on("close", () => this.conns.delete(sock));
  }

  private async dispatch(sock: net.Socket, f: Frame): Promise<void> {
    let res: Response;
    try {
      const req = fromBinary(RequestSchema, f.payload);
      const h = this.handlers.get(`${req.service}/${req.method}`);
      if (!h) throw new RpcError(Code.UNIMPLEMENTED, `${req.service}.${req.method} not implemented`);
      res = create(ResponseSchema, { payload: await h(req.payload) });
    } catch (e) {
      const code = e instanceof RpcError ? e.code : Code.UNKNOWN;
      res = create(ResponseSchema, { status: { code, message: e instanceof Error ? e.message : String(e) } });
    }
    if (!sock.destroyed) sock.write(encodeFrame({ streamId: f.streamId, type: TYPE_RESPONSE, flags: 0, payload: Buffer.from(toBinary(ResponseSchema, res)) }));
  }
}

// A ttrpc client on one connection (containerd's TTRPC_ADDRESS, for events).
export class Client {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }>();
  private readonly reader = new FrameReader();
  private closed: Error | undefined;

  private constructor(private readonly sock: net.Socket) {
    sock.on("data", (d: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.reader.push(d);
      } catch (e) {
        this.fail(e as Error);
        return;
      }
      for (const fr of frames) {
        const p = this.pending.get(fr.streamId);
        if (!p || fr.type !== TYPE_RESPONSE) continue;
        this.pending.delete(fr.streamId);
        try {
          const r = fromBinary(ResponseSchema, fr.payload);
          if (r.status && r.status.code !== Code.OK) p.reject(new RpcError(r.status.code, r.status.message));
          else p.resolve(r.payload);
        } catch (e) {
          p.reject(e as Error);
        }
      }
    });
    sock.on("error", (e) => this.fail(e));
    sock.on("close", () => this.fail(new Error("ttrpc: closed")));
  }

  static connect(path: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect(path.replace(/^unix:\/\//, ""));
      s.once("error", reject);
      s.once("connect", () => {
        s.off("error", reject);
        resolve(new Client(s));
      });
    });
  }

  get isClosed(): boolean {
    return this.closed !== undefined;
  }

  call(service: string, method: string, payload: Uint8Array, timeoutMs = 10_000): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.next;
    this.next += 2;
    const req = create(RequestSchema, { service, method, payload, timeoutNano: BigInt(timeoutMs) * 1_000_000n });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError(Code.UNKNOWN, `ttrpc: ${service}/${method}: timed out`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, {
        resolve: (b) => {
          clearTimeout(timer);
          resolve(b);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.sock.write(encodeFrame({ streamId: id, type: TYPE_REQUEST, flags: 0, payload: Buffer.from(toBinary(RequestSchema, req)) }));
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private fail(e: Error): void {
    this.closed ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}
