// Failures a runtime is known to have, with the reason, by runtime name (as given to --runtime) and case id.
// They are still failures: TAP marks them "# TODO", the matrix shows the reason. With --allow-known, those of
// the first runtime do not fail the run, and one that passes does (so this list cannot go stale).
export const KNOWN_FAILURES: Record<string, Record<string, string>> = {
  tsrun: {},
};
