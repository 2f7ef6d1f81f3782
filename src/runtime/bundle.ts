// Reading a bundle: config.json parsed and validated, the rootfs resolved. Every failure is one line
// that names the file and the cause.
import * as fs from "fs";
import * as path from "path";
import { TsrunError } from "../errors";
import { parseSpec, type Spec } from "../spec/schema";

export interface Bundle {
  spec: Spec;
  bundle: string;
  rootfs: string;
}

export function loadBundle(dir: string): Bundle {
  const bundle = path.resolve(dir);
  const file = path.join(bundle, "config.json");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new TsrunError(fs.existsSync(bundle) ? `bundle ${bundle}: config.json not found (open ${file}: no such file or directory)` : `bundle ${bundle} does not exist`, "INVALID_ARGUMENT");
    }
    throw new TsrunError(`read ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TsrunError(`config.json: invalid JSON: ${(e as Error).message}`, "INVALID_CONFIG");
  }
  let spec: Spec;
  try {
    spec = parseSpec(json, "config.json");
  } catch (e) {
    throw new TsrunError((e as Error).message, "INVALID_CONFIG");
  }
  const rootfs = path.resolve(bundle, spec.root.path);
  let st: fs.Stats;
  try {
    st = fs.statSync(rootfs);
  } catch {
    throw new TsrunError(`config.json: root.path: rootfs ${rootfs} does not exist`, "INVALID_CONFIG");
  }
  if (!st.isDirectory()) throw new TsrunError(`config.json: root.path: rootfs ${rootfs} is not a directory`, "INVALID_CONFIG");
  return { spec, bundle, rootfs: fs.realpathSync(rootfs) };
}
