// Compiled filters cached by content, as crun does: <cacheDir>/<sha256>.bpf, where the hash covers the
// canonical JSON of the profile (keys sorted), the compiler version (which includes the syscall tables'
// id) and the native architecture. A hit skips compilation; a miss compiles and stores the result
// atomically (tmp + rename), so concurrent creates never see half a file. Only profiles that compiled are
// stored, so a hit needs no new validation. A cache that cannot be written is not an error: the program
// is used all the same.
//
// File format: "TSRUNBPF" | u32 format version | u32 flags | u32 meta length | meta JSON | struct sock_filter[]
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import type { LinuxSeccomp } from "../spec/schema";
import { nativeArch } from "./arch";
import { type CompileOptions, type Compiled, COMPILER_VERSION, compile } from "./compile";
import { BPF_MAXINSNS, SOCK_FILTER_SIZE } from "./kernel";

const MAGIC = Buffer.from("TSRUNBPF");
const FORMAT = 1;
const HEADER = MAGIC.length + 12;
const MAX_ENTRIES = 64; // the oldest entries beyond this are removed when one is added

export interface CachedCompile extends Compiled {
  cache: "hit" | "miss" | "unavailable";
  cacheFile: string;
  cacheError?: string; // why the result could not be stored (cache "unavailable")
}

export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const rec = v as Record<string, unknown>;
    const keys = Object.keys(rec)
      .filter((k) => rec[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(rec[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

export function cacheKey(profile: LinuxSeccomp, native: string): string {
  return crypto.createHash("sha256").update(`${COMPILER_VERSION}\n${native}\n${canonicalJson(profile)}`).digest("hex");
}

interface Meta {
  skipped: Compiled["skipped"];
  unsupportedArches: Compiled["unsupportedArches"];
  listener?: Compiled["listener"];
}

function serialize(c: Compiled): Buffer {
  const meta: Meta = { skipped: c.skipped, unsupportedArches: c.unsupportedArches, ...(c.listener ? { listener: c.listener } : {}) };
  const metaBuf = Buffer.from(JSON.stringify(meta));
  const head = Buffer.alloc(12);
  head.writeUInt32LE(FORMAT, 0);
  head.writeUInt32LE(c.flags >>> 0, 4);
  head.writeUInt32LE(metaBuf.length, 8);
  return Buffer.concat([MAGIC, head, metaBuf, c.program]);
}

function deserialize(b: Buffer): Compiled | undefined {
  if (b.length < HEADER || !b.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  if (b.readUInt32LE(MAGIC.length) !== FORMAT) return undefined;
  const flags = b.readUInt32LE(MAGIC.length + 4);
  const metaLen = b.readUInt32LE(MAGIC.length + 8);
  if (HEADER + metaLen > b.length) return undefined;
  const program = Buffer.from(b.subarray(HEADER + metaLen));
  if (program.length === 0 || program.length % SOCK_FILTER_SIZE !== 0 || program.length > BPF_MAXINSNS * SOCK_FILTER_SIZE) return undefined;
  let meta: Meta;
  try {
    meta = JSON.parse(b.subarray(HEADER, HEADER + metaLen).toString("utf8")) as Meta;
  } catch {
    return undefined;
  }
  if (!Array.isArray(meta.skipped) || !Array.isArray(meta.unsupportedArches)) return undefined;
  return { program, flags, skipped: meta.skipped, unsupportedArches: meta.unsupportedArches, ...(meta.listener ? { listener: meta.listener } : {}) };
}

export function compileCached(profile: LinuxSeccomp, cacheDir: string, o: CompileOptions = {}): CachedCompile {
  const native = o.native ?? nativeArch();
  const file = path.join(cacheDir, `${cacheKey(profile, native)}.bpf`);
  let data: Buffer | undefined;
  try {
    data = fs.readFileSync(file);
  } catch {
    // a miss
  }
  const hit = data ? deserialize(data) : undefined;
  if (hit) return { ...hit, cache: "hit", cacheFile: file };

  const compiled = compile(profile, { ...o, native });
  try {
    fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`;
    fs.writeFileSync(tmp, serialize(compiled), { mode: 0o600 });
    fs.renameSync(tmp, file);
    prune(cacheDir);
  } catch (e) {
    return { ...compiled, cache: "unavailable", cacheFile: file, cacheError: e instanceof Error ? e.message : String(e) };
  }
  return { ...compiled, cache: "miss", cacheFile: file };
}

// Keeps the cache bounded: the least recently written entries go first.
function prune(dir: string): void {
  const entries = fs.readdirSync(dir).filter((n) => n.endsWith(".bpf"));
  if (entries.length <= MAX_ENTRIES) return;
  const aged = entries
    .map((n) => {
      try {
        return { n, t: fs.statSync(path.join(dir, n)).mtimeMs };
      } catch {
        return { n, t: 0 };
      }
    })
    .sort((a, b) => a.t - b.t);
  for (const { n } of aged.slice(0, entries.length - MAX_ENTRIES)) fs.rmSync(path.join(dir, n), { force: true });
}
