// Entry of dist/tsrun-fast.js (one file bundled by scripts/snapshot.js), which bin/tsrun runs for the fast
// lane's verbs (src/cli-fast.ts: state, start, kill, delete, pause, resume, list): their modules in one file, so
// node reads and compiles one script instead of resolving and loading each module. A command line the fast lane
// does not take goes to the plain entry (dist/src/main.js), which parses it again in full.
//
// Why not the V8 startup snapshot, as create/run/exec: with node 20, `node --snapshot-blob` of a snapshot that
// holds nothing at all already costs 1.2-1.5x `node -e 0`'s CPU (npm run bench prints it as "empty blob"): node
// reads the blob into fresh memory, zeroes and copies it, then deserializes the whole heap, where its built-in
// snapshot is mapped from the binary. That alone is over the 1.15x these verbs are allowed; this file costs
// about 1.05-1.15x. create, run and exec keep the snapshot: for them it is cheaper than loading zod and the
// config schema (tsrun-snapshot.js run without the blob costs ~80 ms more per create).
import { parseFast, runFastAndExit } from "./cli-fast";
import { recordCallerFds } from "./runtime/caller";

const fast = parseFast(process.argv.slice(2));
if (fast) {
  recordCallerFds();
  runFastAndExit(fast);
} else {
  // the bundle is dist/tsrun-fast.js (this module compiled alone, dist/src/fast-entry.js, is not used)
  const plain: string = require("path").join(__dirname, "src", "main.js");
  require(plain);
}
