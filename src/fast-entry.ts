// Entry of dist/tsrun-fast.js (one file bundled by scripts/snapshot.js), which bin/tsrun runs for state,
// start, kill and delete: the fast lane's modules in one file, so node reads and compiles one script instead of
// resolving and loading each module. A command line the fast lane does not take goes to the plain entry
// (dist/src/main.js), which parses it again in full.
import { parseFast, runFast } from "./cli-fast";
import { recordCallerFds } from "./runtime/caller";

const fast = parseFast(process.argv.slice(2));
if (fast) {
  recordCallerFds();
  runFast(fast).then(
    (code) => process.exit(code),
    (e: unknown) => {
      require("fs").writeSync(2, `${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
} else {
  // the bundle is dist/tsrun-fast.js (this module compiled alone, dist/src/fast-entry.js, is not used)
  const plain: string = require("path").join(__dirname, "src", "main.js");
  require(plain);
}
