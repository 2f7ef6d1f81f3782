// The guest tests' image: an OCI layout holding the static probe only (entrypoint /probe), made with umoci,
// and the same as a tar (an oci-archive that ctr, podman and skopeo load). No registry, no download.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { probe } from "../helpers";

// Makes DIR/layout (and DIR/unpacked on the way) and returns the archive DIR/image.tar.
export function probeImage(dir: string): string {
  const layout = path.join(dir, "layout");
  const unpacked = path.join(dir, "unpacked");
  const umoci = (args: string[]) => execFileSync("umoci", args, { stdio: ["ignore", "ignore", "inherit"], timeout: 300_000 });
  umoci(["init", "--layout", layout]);
  umoci(["new", "--image", `${layout}:latest`]);
  umoci(["unpack", "--image", `${layout}:latest`, unpacked]);
  fs.copyFileSync(probe(), path.join(unpacked, "rootfs", "probe"));
  fs.chmodSync(path.join(unpacked, "rootfs", "probe"), 0o755);
  umoci(["repack", "--image", `${layout}:latest`, unpacked]);
  umoci(["config", "--image", `${layout}:latest`, "--config.cmd", "/probe"]);
  const archive = path.join(dir, "image.tar");
  execFileSync("tar", ["-C", layout, "-cf", archive, "."]);
  return archive;
}
