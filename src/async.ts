// Waiting without blocking the event loop: every wait in tsrun is a timer or a watched fd, never a sleep.
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Retries `attempt` (true: done) with a growing pause (from `first` to `max` ms) until `timeoutMs` has
// passed; resolves to whether it succeeded.
export async function retry(attempt: () => boolean, o: { timeoutMs: number; first?: number; max?: number }): Promise<boolean> {
  const deadline = Date.now() + o.timeoutMs;
  for (let wait = o.first ?? 1; ; wait = Math.min(wait * 2, o.max ?? 100)) {
    if (attempt()) return true;
    if (Date.now() >= deadline) return false;
    await delay(Math.min(wait, Math.max(1, deadline - Date.now())));
  }
}

// Lets the event loop run between two pieces of synchronous work (create's parsing, validation, planning),
// so no single stretch holds it for long.
export function breathe(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
