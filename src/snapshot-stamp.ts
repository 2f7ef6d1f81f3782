// The startup snapshot's stamp, dist/tsrun.blob.node (written by scripts/snapshot.js, read by bin/tsrun with
// shell builtins):
//   line 1: the real path of the node binary that made the blob,
//   line 2: the boot id (/proc/sys/kernel/random/boot_id) of the boot on which it was last found loadable,
//   line 3: "node VERSION v8-tag TAG": what node checks before it loads a blob.
// node refuses a blob (status 14, "Failed to load the startup snapshot ...", before any JavaScript runs) made by
// another node version, or whose V8 cached-data tag differs from its own: the tag hashes V8's version, its flags
// and the CPU features it detected. bin/tsrun hands the blob over only when line 1 is this node, line 2 this boot
// and NODE_OPTIONS is empty. On a new boot (or another machine sharing the files) it runs the plain entry once,
// which checks here, in-process and exactly, that this node's version and tag are the stamp's and then records the
// boot: the command itself is never run twice, and a blob this node would refuse is never handed to it.
import * as fs from "fs";
import * as path from "path";
import * as v8 from "v8";

export function snapshotTag(): string {
  return `node ${process.version} v8-tag ${v8.cachedDataVersionTag().toString(16).padStart(8, "0")}`;
}

export function bootId(): string {
  try {
    return fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "";
  }
}

// The stamp's text for this node and boot.
export function stampText(): string {
  return `${fs.realpathSync(process.execPath)}\n${bootId()}\n${snapshotTag()}\n`;
}

// Called by the plain entry when bin/tsrun found the stamp from another boot: when this node would load the blob,
// the stamp is rewritten for this boot (atomically; a read-only dist/ keeps the plain entry). Returns why not, or
// null when the next create/run/exec will start from the snapshot.
export function recheckStamp(stamp: string): string | null {
  let lines: string[];
  try {
    lines = fs.readFileSync(stamp, "utf8").split("\n");
  } catch (e) {
    return `cannot read ${stamp}: ${(e as Error).message}`;
  }
  const want = snapshotTag();
  if (lines[2] !== want) return `made for ${lines[2] ?? "another node"}, this node is ${want}: npm run build remakes it`;
  let self: string;
  try {
    self = fs.realpathSync(process.execPath);
  } catch {
    self = process.execPath;
  }
  if (lines[0] !== self) return `made by ${lines[0]}, this node is ${self}: npm run build remakes it`;
  const tmp = path.join(path.dirname(stamp), `.${path.basename(stamp)}.${process.pid}`);
  try {
    fs.writeFileSync(tmp, stampText());
    fs.renameSync(tmp, stamp);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    return `loadable, but the stamp cannot be updated (${(e as Error).message})`;
  }
  return null;
}
