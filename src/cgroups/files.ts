// Reading and writing cgroup interface files. Every failure is an Error whose one-line message names the
// file and the value, with `code` set to the errno name (ENOENT, EBUSY, EINVAL, ...), so callers can tell a
// missing file (the host lacks the knob) from a refused value.
import * as fs from "fs";
import * as path from "path";
import { errnoCode, messageOf } from "../errors";

export class CgroupFileError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly file: string,
  ) {
    super(message);
    this.name = "CgroupFileError";
  }
}

// The text of an errno-carrying Node error without Node's "ENOENT: ... , open '/x'" decoration.
function reason(e: unknown): string {
  const m = messageOf(e);
  const stripped = /^E[A-Z0-9]+: (.*?)(?:, \w+(?: '.*')?)?$/.exec(m);
  return stripped ? stripped[1]! : m;
}

// One write(2) of the whole value: cgroup files take one setting per write. No O_CREAT, no O_TRUNC
// (cgroupfs ignores both, and a missing file must fail rather than create a regular file in a fake tree).
export function writeCgroupFile(dir: string, file: string, value: string): void {
  const p = path.join(dir, file);
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_WRONLY);
  } catch (e) {
    throw new CgroupFileError(`write ${JSON.stringify(value)} to ${p}: ${reason(e)}`, errnoCode(e), p);
  }
  try {
    fs.writeSync(fd, value);
  } catch (e) {
    throw new CgroupFileError(`write ${JSON.stringify(value)} to ${p}: ${reason(e)}`, errnoCode(e), p);
  } finally {
    fs.closeSync(fd);
  }
}

export function readCgroupFile(dir: string, file: string): string {
  const p = path.join(dir, file);
  try {
    return fs.readFileSync(p, "utf8");
  } catch (e) {
    throw new CgroupFileError(`read ${p}: ${reason(e)}`, errnoCode(e), p);
  }
}

export function cgroupFileExists(dir: string, file: string): boolean {
  return fs.existsSync(path.join(dir, file));
}

// A file holding one unsigned number ("max" reads as 2^64-1, as runc's GetCgroupParamUint). Negative values
// (some memory stats underflow in the kernel) read as 0, as runc's ParseUint.
export const UINT64_MAX = (1n << 64n) - 1n;
export function parseUint(text: string, where: string): bigint {
  const t = text.trim();
  if (t === "max") return UINT64_MAX;
  if (/^-\d+$/.test(t)) return 0n;
  if (!/^\d+$/.test(t)) throw new Error(`unable to parse ${where}: ${JSON.stringify(t)} is not a number`);
  return BigInt(t);
}

export function readUint(dir: string, file: string): bigint {
  return parseUint(readCgroupFile(dir, file), path.join(dir, file));
}

// "key value" lines (memory.stat, cpu.stat, memory.events, ...) as a map; values parsed as parseUint.
export function readKeyValues(dir: string, file: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  const where = path.join(dir, file);
  for (const line of readCgroupFile(dir, file).split("\n")) {
    if (!line.trim()) continue;
    const sp = line.indexOf(" ");
    if (sp <= 0) throw new Error(`unable to parse ${where}: line ${JSON.stringify(line)} is not in "key value" format`);
    out.set(line.slice(0, sp), parseUint(line.slice(sp + 1), where));
  }
  return out;
}

// A JSON number (from config.json or an update) as the decimal text the kernel expects; exact for any
// integer a double holds (String() would switch to exponent form past 1e21).
export function num(v: number): string {
  return Number.isInteger(v) ? BigInt(v).toString() : String(v);
}
