// Entry of the shim server's V8 startup snapshot (dist/containerd-shim-tsrun-v2.blob, made by
// scripts/snapshot-shim.js): `serve` starts with protobuf, containerd's message schemas, ttrpc and the
// runtime's create/start/delete path already loaded and initialised. The native launcher (native/shim-launcher.cc) hands the blob to node
// when it spawns the server, and spawns it again without the blob when node refuses it (status 14, before
// any JavaScript runs).
// main.ts and service.ts are loaded when the snapshot runs, not when it is built: main.ts reads the
// environment at load (DEFAULT_ROOT), which must be the server's, not the build's.
import * as v8 from "v8";
import "./gen/cgroups/v1/metrics_pb";
import "./gen/events/task_pb";
import "./gen/runtime/task/v2/shim_pb";
import "./gen/services/ttrpc/events/v1/events_pb";
import "./gen/ttrpc/ttrpc_pb";
import "./gen/types/mount_pb";
import "./gen/types/runc/options/oci_pb";
import "./gen/types/task/task_pb";
import "./ttrpc";
import "./publish";
import "./stdio";
import "./stats";
import "../../api";
import "../../runtime/context";
import "../../runtime/create";
import "../../runtime/start";
import "../../runtime/query";
import "../../runtime/kill";
import "../../runtime/delete";
import "../../runtime/exec";
import "../../state/store";
import { defaultSpec } from "../../spec/default";
import { parseSpec } from "../../spec/schema";

function run(argv: string[]): void {
  const { main } = require("./main") as typeof import("./main");
  main(argv).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`containerd-shim-tsrun-v2: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}

if (v8.startupSnapshot.isBuildingSnapshot()) {
  // zod builds its parsers lazily: once here, so that they are in the snapshot
  for (let i = 0; i < 3; i++) parseSpec(JSON.parse(JSON.stringify(defaultSpec({ rootless: i === 1, cgroupNamespace: i === 2 }))));
  // node --snapshot-blob B -- ARGS: argv is [node, ...ARGS]
  v8.startupSnapshot.setDeserializeMainFunction(() => run(process.argv.slice(1)));
} else {
  run(process.argv.slice(2));
}
