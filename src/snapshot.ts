// Entry of the V8 startup snapshot (scripts/snapshot.js): create and run load the CLI with commander, zod,
// the config schema and the plan builder already initialised, instead of paying ~100 ms to load them.
// The schema is exercised once while building, so zod's lazily built parsers are in the snapshot too.
import * as v8 from "v8";
import { runCli } from "./cli";
import { recordCallerFds } from "./runtime/caller";
import "./runtime/create";
import "./runtime/run";
import "./runtime/exec";
import "./runtime/start";
import "./runtime/delete";
import { defaultSpec } from "./spec/default";
import { parseSpec } from "./spec/schema";

if (v8.startupSnapshot.isBuildingSnapshot()) {
  for (let i = 0; i < 3; i++) parseSpec(JSON.parse(JSON.stringify(defaultSpec({ rootless: i === 1, cgroupNamespace: i === 2 }))));
  v8.startupSnapshot.setDeserializeMainFunction(() => {
    process.argv.splice(1, 0, "tsrun"); // node --snapshot-blob B -- ARGS: there is no script in argv
    // bin/tsrun's malloc tunable for loading the blob: not passed on to hooks
    if (process.env.TSRUN_UNSET_TUNABLES) {
      delete process.env.GLIBC_TUNABLES;
      delete process.env.TSRUN_UNSET_TUNABLES;
    }
    recordCallerFds();
    runCli();
  });
} else {
  recordCallerFds();
  runCli();
}
