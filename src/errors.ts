// One error type for everything a user can get wrong or the system can refuse. Its message is the one
// line printed on stderr and written to --log (runc's phrases are kept where engines match on them); its
// code is the stable part a program branches on.
export type ErrorCode =
  | "NOT_FOUND" // no container with that id
  | "EXISTS" // a container with that id exists already
  | "NOT_RUNNING" // the container (or its init) is not running
  | "INVALID_STATE" // the container's state does not allow the operation (start a running one, delete it without force, ...)
  | "BUSY" // another tsrun holds the container (it is being created)
  | "INVALID_ARGUMENT" // an id, signal, option or path given by the caller
  | "INVALID_CONFIG" // config.json (or a process spec) is invalid or asks for what the host cannot do
  | "SYSTEM"; // the kernel, a hook, the helper or the host refused

export class TsrunError extends Error {
  constructor(
    message: string,
    readonly code: ErrorCode = "SYSTEM",
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "TsrunError";
  }
}

// A Node system error's errno name ("ENOENT"); never a TsrunError's code.
export function errnoCode(e: unknown): string | undefined {
  if (e instanceof TsrunError) return undefined;
  return typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined;
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
