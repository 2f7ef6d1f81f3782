// The plain (non-snapshot) entry of bin/tsrun.
import { runCli } from "./cli";
runCli();
