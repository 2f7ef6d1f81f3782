// linux.resources.unified (v2-only hosts): "controller.knob" -> value, written after every controller so it
// overrides them (runc's fs2 setUnified). A value of several lines is written line by line (runc's
// WriteFileByLine).
import type { Writer } from "../controller";

export function applyUnified(w: Writer, values: Record<string, string>): void {
  const controllers = () => {
    try {
      return w.read("linux.resources.unified", "cgroup.controllers").split(/\s+/);
    } catch {
      return [];
    }
  };
  for (const [key, value] of Object.entries(values)) {
    const setting = `linux.resources.unified[${JSON.stringify(key)}]`;
    if (key.includes("/") || key === "." || key === "..") throw new Error(`${setting}: unified resource must be a file name (no slashes)`);
    for (const line of value.split("\n")) {
      if (line === "" && value !== "") continue;
      const e = w.attempt(key, line);
      if (!e) continue;
      if (e.code === "EPERM" || e.code === "ENOENT" || e.code === "EACCES") {
        const dot = key.indexOf(".");
        if (dot <= 0) throw new Error(`${setting}: unified resource must be in the form CONTROLLER.PARAMETER (${e.file})`);
        const c = key.slice(0, dot);
        if (c !== "cgroup" && !controllers().includes(c)) throw new Error(`${setting}: unified resource can't be set: controller ${JSON.stringify(c)} not available in ${w.dir}/cgroup.controllers`);
      }
      throw w.fail(setting, e);
    }
  }
}
