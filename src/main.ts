// The plain (non-snapshot) entry of bin/tsrun. The fast lane's command lines (state, start, kill, delete, ...)
// (src/cli-fast.ts: no commander, only the modules the verb uses); every other command line goes to the full
// CLI (src/cli.ts).
import { recordCallerFds } from "./runtime/caller";
import { parseFast } from "./cli-fast";
recordCallerFds();
const fast = parseFast(process.argv.slice(2));
if (fast) {
  const { runFastAndExit } = require("./cli-fast") as typeof import("./cli-fast");
  runFastAndExit(fast);
} else {
  const { runCli } = require("./cli") as typeof import("./cli");
  runCli();
}
