#!/usr/bin/env node
// `npm run test:engines`: the engine suite (engines/engines.test.ts) as TAP, then the closing line
// `N passed, M failed`. Needs root and Debian's containerd, podman (with conmon) and umoci; the CRI pod
// uses the CNI plugins in /usr/lib/cni when installed (containernetworking-plugins), else the host's network.
"use strict";
const { spawn, spawnSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const missing = ["containerd", "ctr", "podman", "conmon", "umoci", "python3"].filter((c) => spawnSync("sh", ["-c", `command -v ${c}`]).status !== 0);
if (missing.length) {
  console.error(`test:engines needs ${missing.join(", ")} (apt-get install containerd podman umoci)`);
  process.exit(1);
}
// A working directory of its own: conmon drops files (an "oom" marker) in its cwd when it has no persist dir.
const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "engines-cwd-"));
// engines.test.js (containerd, podman, Docker), then cri.test.js (a pod through containerd's CRI plugin)
const files = ["engines.test.js", "cri.test.js"].map((f) => path.join(__dirname, "..", "dist", "engines", f));
const child = spawn(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=tap", ...files], { cwd, stdio: ["ignore", "pipe", "inherit"] });
let pass = 0;
let fail = 0;
let buf = "";
child.stdout.on("data", (d) => {
  process.stdout.write(d);
  buf += d.toString();
});
child.on("exit", (code) => {
  fs.rmSync(cwd, { recursive: true, force: true });
  const m = (re) => Number((re.exec(buf) || [])[1] || 0);
  pass = m(/^# pass (\d+)/m);
  fail = m(/^# fail (\d+)/m);
  console.log(`${pass} passed, ${fail} failed`);
  process.exit(code === 0 && fail === 0 ? 0 : 1);
});
