import * as fs from "fs";
import * as path from "path";
import { TsrunError } from "../errors";

// Written atomically (tmp + rename), as engines read it as soon as the command returns.
export function writePidFile(file: string, pid: number): void {
  const abs = path.resolve(file);
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.${process.pid}`);
  try {
    fs.writeFileSync(tmp, String(pid));
    fs.renameSync(tmp, abs);
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // never written
    }
    throw new TsrunError(`write pid file ${abs}: ${(e as Error).message}`);
  }
}
