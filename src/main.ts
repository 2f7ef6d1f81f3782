// The plain (non-snapshot) entry of bin/tsrun.
import { recordCallerFds } from "./runtime/caller";
import { runCli } from "./cli";
recordCallerFds();
runCli();
