// linux.netDevices (runtime-spec 1.3): each host interface named there is moved into the container's network
// namespace and renamed there, as runc's devChangeNetNamespace does it: the link set down, its addresses
// read, moved and renamed in one RTM_NEWLINK (IFLA_NET_NS_FD + IFLA_IFNAME), then in the container's
// namespace the permanent addresses of global scope added back (the kernel drops them on a move) and the
// link set up. Done by tsrun at the init's SYNC_HOOKS, before the prestart/createRuntime hooks.
// Nothing is moved back on delete (runc): a device in a namespace that goes away returns to the host by
// the kernel's rules (a physical one comes back, a virtual one is destroyed); one in a namespace joined by
// a path stays there, its owner's to handle.
// The messages are built and read here; native/netlink.cc only opens the sockets and exchanges bytes.
import * as fs from "fs";
import * as util from "util";
import { TsrunError, messageOf } from "../errors";
import { native } from "../native";
import type { Spec } from "../spec/schema";

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLM_F_DUMP = 0x300;
const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_GETADDR = 22;
const IFLA_IFNAME = 3;
const IFLA_NET_NS_FD = 28;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_BROADCAST = 4;
const IFA_FLAGS = 8;
const IFA_F_PERMANENT = 0x80;
const RT_SCOPE_UNIVERSE = 0;
const IFF_UP = 0x1;
const AF_UNSPEC = 0;
const AF_INET = 2;

const align = (n: number) => (n + 3) & ~3;

export function rtattr(type: number, data: Buffer): Buffer {
  const b = Buffer.alloc(align(4 + data.length));
  b.writeUInt16LE(4 + data.length, 0);
  b.writeUInt16LE(type, 2);
  data.copy(b, 4);
  return b;
}

const cstring = (s: string) => Buffer.concat([Buffer.from(s), Buffer.alloc(1)]);
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};

let seq = Math.floor(Date.now() / 1000) >>> 0;

export function nlmsg(type: number, flags: number, body: Buffer[], sequence: number): Buffer {
  const payload = Buffer.concat(body);
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + payload.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(sequence, 8);
  return Buffer.concat([h, payload]);
}

// struct ifinfomsg
export function ifinfomsg(index: number, flags = 0, change = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(AF_UNSPEC, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

// struct ifaddrmsg
function ifaddrmsg(family: number, prefixlen: number, scope: number, index: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixlen, 1);
  b.writeUInt8(scope, 3);
  b.writeUInt32LE(index, 4);
  return b;
}

export function parseAttrs(buf: Buffer, offset: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let o = offset;
  while (o + 4 <= buf.length) {
    const len = buf.readUInt16LE(o);
    if (len < 4 || o + len > buf.length) break;
    out.set(buf.readUInt16LE(o + 2) & 0x3fff, buf.subarray(o + 4, o + len));
    o += align(len);
  }
  return out;
}

function errnoText(errno: number): string {
  return util.getSystemErrorMap().get(-errno)?.[1] ?? `errno ${errno}`;
}

// One request on the socket: the answers before its end; an nlmsgerr with an error throws its text.
function talk(sock: number, type: number, flags: number, body: Buffer[]): Buffer[] {
  seq = (seq + 1) >>> 0;
  const answers = native().netlinkTalk(sock, nlmsg(type, flags | NLM_F_REQUEST, body, seq));
  const out: Buffer[] = [];
  for (const m of answers) {
    const t = m.readUInt16LE(4);
    if (t === NLMSG_DONE) break;
    if (t === NLMSG_ERROR) {
      const e = m.readInt32LE(16);
      if (e !== 0) throw new Error(errnoText(e));
      break;
    }
    out.push(m);
  }
  return out;
}

function linkIndex(sock: number, name: string): number {
  const [m] = talk(sock, RTM_GETLINK, NLM_F_ACK, [ifinfomsg(0), rtattr(IFLA_IFNAME, cstring(name))]);
  if (!m) throw new Error("Link not found");
  return m.readInt32LE(16 + 4);
}

interface Address {
  family: number;
  prefixlen: number;
  flags: number;
  scope: number;
  local: Buffer; // IFA_LOCAL, else IFA_ADDRESS
  text: string;
}

function addresses(sock: number, index: number): Address[] {
  const out: Address[] = [];
  for (const m of talk(sock, RTM_GETADDR, NLM_F_DUMP, [ifaddrmsg(AF_UNSPEC, 0, 0, 0)])) {
    if (m.readUInt16LE(4) !== RTM_NEWADDR || m.readUInt32LE(16 + 4) !== index) continue;
    const attrs = parseAttrs(m, 16 + 8);
    const local = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
    if (!local) continue;
    const family = m.readUInt8(16);
    const prefixlen = m.readUInt8(17);
    const flags = attrs.get(IFA_FLAGS)?.readUInt32LE(0) ?? m.readUInt8(18);
    const text = family === AF_INET ? [...local].join(".") : (local.toString("hex").match(/.{4}/g) ?? []).join(":");
    out.push({ family, prefixlen, flags, scope: m.readUInt8(19), local: Buffer.from(local), text: `${text}/${prefixlen}` });
  }
  return out;
}

// The IPv4 broadcast address of an address/prefix (the netlink library runc uses sets it when it adds one).
function broadcast(a: Address): Buffer | undefined {
  if (a.family !== AF_INET || a.prefixlen >= 31) return undefined;
  const v = a.local.readUInt32BE(0) | (0xffffffff >>> a.prefixlen);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

// Which addresses go with the device (runc): permanent ones of global scope; dynamic and host/link-scoped
// ones depend on the namespace they were made in.
export function keptAddress(a: { flags: number; scope: number }): boolean {
  return (a.flags & IFA_F_PERMANENT) !== 0 && a.scope === RT_SCOPE_UNIVERSE;
}

function moveOne(host: number, nsFd: number, nsPath: string, name: string, newName: string, debug: (m: string) => void): void {
  let index: number;
  try {
    index = linkIndex(host, name);
  } catch (e) {
    throw new Error(`link not found for interface ${name} on runtime namespace: ${messageOf(e)}`);
  }
  try {
    talk(host, RTM_NEWLINK, NLM_F_ACK, [ifinfomsg(index, 0, IFF_UP)]);
  } catch (e) {
    throw new Error(`fail to set link down: ${messageOf(e)}`);
  }
  let addrs: Address[];
  try {
    addrs = addresses(host, index);
  } catch (e) {
    throw new Error(`fail to get ip addresses: ${messageOf(e)}`);
  }
  try {
    talk(host, RTM_NEWLINK, NLM_F_ACK, [ifinfomsg(index), rtattr(IFLA_IFNAME, cstring(newName)), rtattr(IFLA_NET_NS_FD, u32(nsFd))]);
  } catch (e) {
    throw new Error(`fail to move network device ${name} to network namespace ${nsPath}: ${messageOf(e)}`);
  }
  const inner = native().netlinkSocket(nsFd);
  try {
    let nsIndex: number;
    try {
      nsIndex = linkIndex(inner, newName);
    } catch (e) {
      throw new Error(`link not found for interface ${newName} on namespace ${nsPath} : ${messageOf(e)}`);
    }
    for (const a of addrs) {
      if (!keptAddress(a)) {
        debug(`skipping address ${a.text} from network device ${name}: not a permanent address of global scope`);
        continue;
      }
      const bcast = broadcast(a);
      try {
        talk(inner, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, [
          ifaddrmsg(a.family, a.prefixlen, RT_SCOPE_UNIVERSE, nsIndex),
          rtattr(IFA_LOCAL, a.local),
          rtattr(IFA_ADDRESS, a.local),
          ...(bcast ? [rtattr(IFA_BROADCAST, bcast)] : []),
        ]);
      } catch (e) {
        throw new Error(`fail to set up address ${a.text} on namespace ${nsPath}: ${messageOf(e)}`);
      }
    }
    try {
      talk(inner, RTM_NEWLINK, NLM_F_ACK, [ifinfomsg(nsIndex, IFF_UP, IFF_UP)]);
    } catch (e) {
      throw new Error(`fail to set up interface ${newName} on namespace ${nsPath}: ${messageOf(e)}`);
    }
  } finally {
    fs.closeSync(inner);
  }
}

// Moves spec.linux.netDevices into the network namespace of `pid` (the container's init, waiting at its
// SYNC_HOOKS). validateSpec has checked the names, the namespace and root. On a failure, what was moved
// stays moved (runtime-spec: the kernel takes it back with the namespace), as in runc.
export function moveNetDevices(spec: Spec, pid: number, debug: (m: string) => void): void {
  const devices = Object.entries(spec.linux?.netDevices ?? {});
  if (devices.length === 0) return;
  const nsPath = `/proc/${pid}/ns/net`;
  let nsFd: number;
  try {
    nsFd = fs.openSync(nsPath, "r");
  } catch (e) {
    throw new TsrunError(`error creating network interfaces: open ${nsPath}: ${messageOf(e)}`);
  }
  const host = native().netlinkSocket(-1);
  try {
    for (const [name, d] of devices) {
      try {
        moveOne(host, nsFd, nsPath, name, d.name || name, debug);
      } catch (e) {
        throw new TsrunError(`error creating network interfaces: move netDevice ${name} to namespace ${nsPath}: ${messageOf(e)}`);
      }
    }
  } finally {
    fs.closeSync(host);
    fs.closeSync(nsFd);
  }
}
