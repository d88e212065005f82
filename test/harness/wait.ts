/** Polls `check` every `intervalMs` until it returns a truthy value. For state without an event. */
export async function until<T>(
  check: () => Promise<T | undefined | null | false>,
  what: string | (() => string),
  timeoutMs = 30_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "function" ? what() : what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
