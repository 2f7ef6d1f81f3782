// The CLI's fast lane: state, start, kill, delete, pause, resume and list, as engines call them (global
// options, the verb, its flags and arguments, nothing unusual), parsed by hand so that these calls load neither
// commander nor the modules of other commands. Anything else, including every usage error, help and the unusual
// spellings commander also accepts, returns undefined: the full CLI (src/cli.ts) then parses it and answers
// exactly as it always does. Both run the same verbs (src/cli-common.ts); test/cli-fast.test.ts holds the two
// answers side by side.
import { type GlobalOpts, beforeCommand, cliContext, deleteVerb, failure, killVerb, listVerb, pauseVerb, startVerb, stateVerb } from "./cli-common";

// Global options with a value, and the flags (commander's definitions in src/cli.ts).
const VALUED = new Set(["--root", "--log", "--log-format", "--rootless", "--criu"]);
const FLAGS = new Set(["--debug", "--systemd-cgroup"]);

type Verb = "state" | "start" | "kill" | "delete" | "pause" | "resume" | "list" | "ls";
interface VerbDef {
  flags: Record<string, string>; // short and long spellings -> name
  valued?: Record<string, { name: string; values: readonly string[] }>; // options with a value (commander's choices)
  min: number; // arguments
  max: number;
}
const LIST: VerbDef = { flags: { "-q": "quiet", "--quiet": "quiet" }, valued: { "-f": { name: "format", values: ["table", "json"] }, "--format": { name: "format", values: ["table", "json"] } }, min: 0, max: 0 };
const VERBS: Record<Verb, VerbDef> = {
  state: { flags: {}, min: 1, max: 1 },
  start: { flags: {}, min: 1, max: 1 },
  kill: { flags: { "-a": "all", "--all": "all" }, min: 1, max: 2 },
  delete: { flags: { "-f": "force", "--force": "force" }, min: 1, max: 1 },
  pause: { flags: {}, min: 1, max: 1 },
  resume: { flags: {}, min: 1, max: 1 },
  list: LIST,
  ls: LIST,
};

interface Parsed {
  g: GlobalOpts;
  verb: Verb;
  args: string[];
  flags: Set<string>;
  values: Map<string, string>;
}

// The command line (without node and the script) when the fast lane takes it; undefined otherwise.
export function parseFast(argv: readonly string[]): Parsed | undefined {
  const g: GlobalOpts = { logFormat: "text", rootless: "auto" };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("-")) break;
    if (FLAGS.has(a)) {
      if (a === "--debug") g.debug = true;
      else g.systemdCgroup = true;
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (!VALUED.has(name)) return undefined;
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    // a missing value, or one commander might read differently: the full CLI decides
    if (value === undefined || value === "" || value.startsWith("-")) return undefined;
    if (name === "--root") g.root = value;
    else if (name === "--log") g.log = value;
    else if (name === "--log-format") {
      if (value !== "text" && value !== "json") return undefined;
      g.logFormat = value;
    } else if (name === "--rootless") g.rootless = value;
  }
  const verb = argv[i] as Verb | undefined;
  if (verb === undefined || !Object.prototype.hasOwnProperty.call(VERBS, verb)) return undefined;
  const def = VERBS[verb];
  const args: string[] = [];
  const flags = new Set<string>();
  const values = new Map<string, string>();
  for (let j = i + 1; j < argv.length; j++) {
    const a = argv[j]!;
    if (!a.startsWith("-")) {
      args.push(a);
      continue;
    }
    const f = def.flags[a];
    if (f !== undefined) {
      flags.add(f);
      continue;
    }
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    const v = def.valued?.[eq > 0 ? a.slice(0, eq) : a];
    if (v === undefined) return undefined;
    const value = eq > 0 ? a.slice(eq + 1) : argv[++j];
    if (value === undefined || !v.values.includes(value)) return undefined;
    values.set(v.name, value);
  }
  if (args.length < def.min || args.length > def.max) return undefined;
  return { g, verb, args, flags, values };
}

// Runs a command the fast lane takes; resolves to tsrun's exit status.
export async function runFast(p: Parsed): Promise<number> {
  const logger = beforeCommand(p.g);
  try {
    const ctx = () => cliContext(p.g, logger);
    const id = p.args[0] ?? ""; // (list has none)
    switch (p.verb) {
      case "state":
        stateVerb(ctx, id);
        break;
      case "start":
        await startVerb(ctx, id);
        break;
      case "kill":
        await killVerb(ctx, id, p.args[1] ?? "SIGTERM", p.flags.has("all"));
        break;
      case "delete":
        await deleteVerb(ctx, id, p.flags.has("force"));
        break;
      case "pause":
      case "resume":
        await pauseVerb(ctx, id, p.verb === "resume");
        break;
      case "list":
      case "ls":
        listVerb(ctx, p.values.get("format") ?? "table", p.flags.has("quiet"));
        break;
    }
    return 0;
  } catch (e) {
    return failure(logger, e);
  } finally {
    logger.close();
  }
}

// Runs a fast-lane command line and exits with its status: both entries (src/main.ts, src/fast-entry.ts).
export function runFastAndExit(p: Parsed): void {
  runFast(p).then(
    (code) => process.exit(code),
    (e: unknown) => {
      require("fs").writeSync(2, `${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
