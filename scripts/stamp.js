// Records the git commit for `tsrun --version` (dist/commit.txt); "unknown" outside a checkout.
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");
let commit = "unknown";
try {
  commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: path.join(__dirname, ".."), stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
} catch {
  // not a git checkout
}
fs.mkdirSync(path.join(__dirname, "..", "dist"), { recursive: true });
fs.writeFileSync(path.join(__dirname, "..", "dist", "commit.txt"), commit + "\n");
