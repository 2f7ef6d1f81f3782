// Assertions for cases: each failure is one readable line (what was expected, what was seen).
import { isDeepStrictEqual } from "util";

export class CheckError extends Error {}

export class SkipSignal extends Error {}

export function fail(message: string): never {
  throw new CheckError(message);
}

export function show(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 200 ? `${s.slice(0, 197)}...` : s;
}

export function expect(cond: boolean, message: string): asserts cond {
  if (!cond) fail(message);
}

export function eq<T>(actual: T, expected: T, what: string): void {
  if (!isDeepStrictEqual(actual, expected)) fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

export function includes<T>(list: readonly T[] | null | undefined, item: T, what: string): void {
  if (!list || !list.some((x) => isDeepStrictEqual(x, item))) fail(`${what}: expected to include ${show(item)}, got ${show(list)}`);
}

export function oneOf<T>(value: T, allowed: readonly T[], what: string): void {
  if (!allowed.some((x) => isDeepStrictEqual(x, value))) fail(`${what}: expected ${allowed.length === 1 ? show(allowed[0]) : `one of ${show(allowed)}`}, got ${show(value)}`);
}

export function excludes<T>(list: readonly T[] | null | undefined, item: T, what: string): void {
  if (list && list.some((x) => isDeepStrictEqual(x, item))) fail(`${what}: expected not to include ${show(item)}, got ${show(list)}`);
}

export function sameSet<T>(actual: readonly T[] | null | undefined, expected: readonly T[], what: string): void {
  const a = [...(actual ?? [])].map((x) => JSON.stringify(x)).sort();
  const e = [...expected].map((x) => JSON.stringify(x)).sort();
  if (!isDeepStrictEqual(a, e)) fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

export function firstLine(text: string): string {
  const line = text.split("\n").find((l) => l.trim() !== "") ?? "";
  return line.length > 400 ? `${line.slice(0, 397)}...` : line.trim();
}
