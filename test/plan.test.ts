// The plan's wire format and the pure spec -> plan pieces, without starting containers.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { MS, parseSignal } from "../src/plan/linux";
import { containerPath, parseMountOptions } from "../src/plan/mounts";
import { Msg, Op } from "../src/plan/opcodes";
import { Plan } from "../src/plan/writer";

const header = fs.readFileSync(path.resolve(__dirname, "..", "..", "native", "helper", "plan.h"), "utf8");

function fromHeader(prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of header.matchAll(new RegExp(`X\\(${prefix}_([A-Z_]+), (\\d+)\\)`, "g"))) out.set(m[1]!, Number(m[2]));
  return out;
}

describe("plan", () => {
  test("opcodes and message types agree with native/helper/plan.h", () => {
    assert.deepEqual(new Map(Object.entries(Op)), fromHeader("OP"));
    assert.deepEqual(new Map(Object.entries(Msg)), fromHeader("MSG"));
  });

  test("encoding: count, then code/argc and tagged args", () => {
    const p = new Plan().add(Op.HOSTNAME, "box").add(Op.RLIMIT, 7, -1, 2n ** 40n, "RLIMIT_NOFILE");
    const b = p.encode();
    assert.equal(b.readUInt32LE(0), 2);
    assert.equal(b.readUInt16LE(4), Op.HOSTNAME);
    assert.equal(b.readUInt16LE(6), 1);
    assert.equal(b.readUInt8(8), 1);
    assert.equal(b.readUInt32LE(9), 3);
    assert.equal(b.toString("utf8", 13, 16), "box");
    let off = 16;
    assert.equal(b.readUInt16LE(off), Op.RLIMIT);
    assert.equal(b.readUInt16LE(off + 2), 4);
    off += 4;
    assert.equal(b.readUInt8(off), 0);
    assert.equal(b.readBigInt64LE(off + 1), 7n);
    assert.equal(b.readBigInt64LE(off + 10), -1n);
    assert.equal(b.readBigInt64LE(off + 19), 2n ** 40n);
    assert.throws(() => new Plan().add(Op.HOSTNAME, "a\0b").encode(), /NUL/);
    assert.throws(() => new Plan().add(Op.UMASK, 1.5).encode(), /non-integer/);
  });

  test("mount options: flags, clearing flags, propagation, data, refusals", () => {
    const m = parseMountOptions(["rbind", "ro", "nosuid", "rw", "ro", "rslave", "mode=755", "size=1m"], undefined, "m");
    assert.equal(m.bind, true);
    assert.equal(m.recursive, true);
    assert.equal(m.flags, MS.BIND | MS.REC | MS.RDONLY | MS.NOSUID);
    assert.equal(m.propagation, MS.SLAVE | MS.REC);
    assert.equal(m.data, "mode=755,size=1m");
    assert.equal(parseMountOptions([], "bind", "m").bind, true);
    assert.equal(parseMountOptions(["suid", "nosuid", "suid"], "tmpfs", "m").flags & MS.NOSUID, 0);
    assert.throws(() => parseMountOptions(["idmap"], "bind", "config.json: mounts[3]"), /mounts\[3\]: mount option "idmap" is not supported/);
  });

  test("container paths: normalised, never above the root", () => {
    assert.equal(containerPath("/a/./b//c/", "x"), "/a/b/c/");
    assert.equal(containerPath("a/b/../c", "x"), "/a/c");
    assert.throws(() => containerPath("/a/../../etc", "mounts[0]"), /mounts\[0\]: "\/a\/..\/..\/etc" escapes/);
  });

  test("signals by name, SIG name, number, real-time offset", () => {
    assert.equal(parseSignal("KILL"), 9);
    assert.equal(parseSignal("sigterm"), 15);
    assert.equal(parseSignal("10"), 10);
    assert.equal(parseSignal("RTMIN+2"), 36);
    assert.throws(() => parseSignal("0"), /invalid signal/);
    assert.throws(() => parseSignal("NOPE"), /unknown signal/);
  });
});
