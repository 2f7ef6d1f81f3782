// JSON as Go's encoding/json writes it, for output engines parse as runc's: bigint numbers written exactly
// (uint64 counters pass 2^53), properties in insertion order (callers build objects in Go's field order
// and sort map keys), undefined properties left out (omitempty), and <, >, & escaped in strings.
export type GoJson = bigint | number | string | boolean | null | undefined | GoJson[] | { [key: string]: GoJson };

const ESCAPES: Record<string, string> = { "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029" };

function str(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => ESCAPES[c] ?? c);
}

export function goJson(v: GoJson): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "string") return str(v);
  if (typeof v === "number" || typeof v === "boolean") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(goJson).join(",")}]`;
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v)) if (x !== undefined) parts.push(`${str(k)}:${goJson(x)}`);
  return `{${parts.join(",")}}`;
}

// A map's entries sorted by key, as Go marshals maps.
export function sortedMap<T extends GoJson>(m: Map<string, T> | Record<string, T>): Record<string, T> {
  const entries = m instanceof Map ? [...m.entries()] : Object.entries(m);
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
