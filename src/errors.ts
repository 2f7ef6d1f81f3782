// One error type for everything a user can get wrong or the system can refuse. Its message is the one
// line printed on stderr and written to --log; runc's phrases are kept where engines match on them.
export class TsrunError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "TsrunError";
  }
}

export function errnoCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined;
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
