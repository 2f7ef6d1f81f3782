// The harness's command line.
import type { Level } from "./case";

export interface Options {
  runtimes: string[]; // as given: PATH, NAME=PATH or a name on PATH
  filters: string[]; // a case runs when its id contains any of them (none: all cases)
  level: Level; // the lowest level that runs: MUST only, MUST+SHOULD, or all
  out?: string; // markdown matrix
  json?: string; // results as JSON
  jobs: number; // cases run at once, per runtime
  allowKnown: boolean; // known failures of the first runtime do not fail the run
  list: boolean; // print the selected cases and exit
  keepFiles: boolean; // keep the work directory (bundles, outputs, hook records) for inspection
  help: boolean;
}

export const USAGE = `usage: npm run spec-tests -- --runtime PATH [--runtime PATH ...] [options]

  --runtime PATH|NAME=PATH  a runc-compatible runtime to test (repeatable; the first decides the exit code)
  --filter TEXT[,TEXT...]   only cases whose id contains one of the texts (repeatable)
  --level must|should|may   the lowest level to run (must: MUST only; should: MUST and SHOULD; default may: all)
  --out FILE.md             write the side-by-side matrix as markdown
  --json FILE               write the results as JSON
  --jobs N                  cases run at once per runtime (default 2)
  --allow-known             known failures of the first runtime (spec-tests/known-failures.ts) do not fail
                            the run; a known failure that passes does
  --list                    print the selected cases and exit
  --keep-files              keep the work directory (bundles, outputs, hook records) and print its path;
                            containers, cgroups and mounts are removed all the same

Exit status: 0, or 1 when the first runtime fails a MUST case, or 2 on a usage or harness error.
crun on a host with hybrid cgroups: --runtime crun=spec-tests/wrappers/crun-v2 (see the script).`;

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[]): Options {
  const o: Options = { runtimes: [], filters: [], level: "MAY", jobs: 2, allowKnown: false, list: false, keepFiles: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith("--") && a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined || v.startsWith("--")) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--runtime":
        o.runtimes.push(value());
        break;
      case "--filter":
        o.filters.push(...value().split(",").filter((s) => s !== ""));
        break;
      case "--level": {
        const v = value().toUpperCase();
        if (v !== "MUST" && v !== "SHOULD" && v !== "MAY") throw new UsageError(`--level must be must, should or may (got ${v.toLowerCase()})`);
        o.level = v;
        break;
      }
      case "--out":
        o.out = value();
        break;
      case "--json":
        o.json = value();
        break;
      case "--jobs": {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 16) throw new UsageError("--jobs must be an integer from 1 to 16");
        o.jobs = n;
        break;
      }
      case "--allow-known":
        o.allowKnown = true;
        break;
      case "--list":
        o.list = true;
        break;
      case "--keep-files":
        o.keepFiles = true;
        break;
      case "-h":
      case "--help":
        o.help = true;
        break;
      default:
        throw new UsageError(`unknown argument ${a}`);
    }
  }
  if (!o.help && !o.list && o.runtimes.length === 0) throw new UsageError("at least one --runtime is required");
  return o;
}

const RANK: Record<Level, number> = { MUST: 0, SHOULD: 1, MAY: 2 };

export function levelSelected(caseLevel: Level, lowest: Level): boolean {
  return RANK[caseLevel] <= RANK[lowest];
}

export function filterSelected(id: string, filters: readonly string[]): boolean {
  return filters.length === 0 || filters.some((f) => id.includes(f));
}
