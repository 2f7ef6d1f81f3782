// A deliberately broken runtime, for the harness's self-test: every call goes to a real runtime, but create
// and run get a copy of the bundle's config.json without one setting.
//
//   node broken-runtime.js REAL_RUNTIME DROP [runtime arguments...]
//
// DROP is "hostname" (config.hostname is removed) or "mount:DEST" (the mounts with that destination are).
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

type Json = Record<string, unknown>;

function main(argv: string[]): number {
  const [real, drop, ...args] = argv;
  if (!real || !drop) {
    process.stderr.write("usage: broken-runtime REAL_RUNTIME hostname|mount:DEST [ARGS...]\n");
    return 2;
  }
  const cmdIndex = commandIndex(args);
  const cmd = args[cmdIndex];
  if (cmd === "create" || cmd === "run") rewriteBundle(args, cmdIndex, drop);
  const r = spawnSync(real, args, { stdio: "inherit" });
  if (r.error) throw r.error;
  if (r.signal) process.kill(process.pid, r.signal);
  return r.status ?? 1;
}

// Global options come first; those listed take a value.
function commandIndex(args: string[]): number {
  const withValue = new Set(["--root", "--log", "--log-format", "--criu", "--rootless"]);
  let i = 0;
  while (i < args.length && args[i]!.startsWith("-")) i += withValue.has(args[i]!) ? 2 : 1;
  return i;
}

// Points --bundle (or -b, or the working directory) at a copy whose config lacks the dropped setting; the
// copy's root and bind sources are made absolute so that they still name the original files.
function rewriteBundle(args: string[], cmdIndex: number, drop: string): void {
  let at = -1;
  for (let i = cmdIndex + 1; i < args.length; i++) if (args[i] === "--bundle" || args[i] === "-b") at = i + 1;
  const bundle = path.resolve(at > 0 ? args[at]! : process.cwd());
  const config = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as Json;
  const root = config.root as Json | undefined;
  if (root && typeof root.path === "string") root.path = path.resolve(bundle, root.path);
  const mounts = Array.isArray(config.mounts) ? (config.mounts as Json[]) : [];
  for (const m of mounts) {
    const bind = Array.isArray(m.options) && (m.options as unknown[]).some((o) => o === "bind" || o === "rbind");
    if (bind && typeof m.source === "string") m.source = path.resolve(bundle, m.source);
  }
  if (drop === "hostname") delete config.hostname;
  else if (drop.startsWith("mount:")) config.mounts = mounts.filter((m) => m.destination !== drop.slice("mount:".length));
  else throw new Error(`unknown setting to drop: ${drop}`);
  const copy = `${bundle}-broken`;
  fs.mkdirSync(copy, { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(copy, "config.json"), JSON.stringify(config));
  if (at > 0) args[at] = copy;
  else args.splice(cmdIndex + 1, 0, "--bundle", copy);
}

process.exit(main(process.argv.slice(2)));
