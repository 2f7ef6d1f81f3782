// The seccomp filter a container process gets: the container's `linux.seccomp`, compiled (and cached under
// the state root). Used by `create` for the container's init and meant for `exec` as well, so that every
// process of a container runs under the same filter.
import * as path from "path";
import type { Spec } from "../spec/schema";
import { type CachedCompile, compileCached } from "./cache";
import { type Compiled, compile } from "./compile";

export const SECCOMP_CACHE_DIR = ".seccomp-cache";

export function seccompCacheDir(stateRoot: string): string {
  return path.join(stateRoot, SECCOMP_CACHE_DIR);
}

// undefined when the config has no seccomp profile. Throws SeccompProfileError (one line, naming the JSON
// path) for a profile that cannot be compiled.
export function compileForProcess(spec: Spec, o: { stateRoot?: string; where?: string } = {}): CachedCompile | Compiled | undefined {
  const profile = spec.linux?.seccomp;
  if (!profile) return undefined;
  const opts = o.where ? { where: o.where } : {};
  return o.stateRoot ? compileCached(profile, seccompCacheDir(o.stateRoot), opts) : compile(profile, opts);
}

// One line for --debug: what was compiled, from where, and what was left out.
export function describeCompiled(c: CachedCompile | Compiled): string[] {
  const lines = [`seccomp: ${c.program.length / 8} instructions, flags 0x${c.flags.toString(16)}${"cache" in c ? `, cache ${c.cache} (${c.cacheFile})` : ""}`];
  if ("cacheError" in c && c.cacheError) lines.push(`seccomp: cache not written: ${c.cacheError}`);
  for (const s of c.skipped) lines.push(`seccomp: ${s.names.length} syscall names unknown on ${s.arch} skipped: ${s.names.join(" ")}`);
  if (c.unsupportedArches.length) lines.push(`seccomp: architectures without a syscall table left out (never reported by this machine's kernel): ${c.unsupportedArches.join(" ")}`);
  return lines;
}
