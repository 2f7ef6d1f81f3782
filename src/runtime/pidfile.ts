import * as fs from "fs";
import * as path from "path";
import { TsrunError, messageOf } from "../errors";

// Written atomically, as engines read it as soon as the command returns: a temporary file with a random name
// beside the target, created O_EXCL|O_NOFOLLOW (a planted symlink or file at that name is never followed
// or reused), then renamed over the target (rename replaces a symlink at the target name; it never writes
// through it). Mode 0644, as runc.
export function writePidFile(file: string, pid: number): void {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  let tmp = ""; // set once tsrun created it: only then is it removed on failure
  let fd = -1;
  // loaded here, not at the top: this module is in the startup snapshot
  const { randomBytes } = require("crypto") as typeof import("crypto");
  try {
    for (let attempt = 0; fd < 0; attempt++) {
      const name = path.join(dir, `.${path.basename(abs)}.${randomBytes(8).toString("hex")}`);
      try {
        fd = fs.openSync(name, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644); // (libuv adds O_CLOEXEC)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 8) throw e;
        continue;
      }
      tmp = name;
    }
    fs.fchmodSync(fd, 0o644); // not narrowed by the umask
    fs.writeSync(fd, String(pid));
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, abs);
    tmp = "";
  } catch (e) {
    if (fd >= 0) fs.closeSync(fd);
    if (tmp) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // never created
      }
    }
    throw new TsrunError(`write pid file ${abs}: ${messageOf(e)}`);
  }
}
