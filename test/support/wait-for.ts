/**
 * Waiting for a condition, with no test framework in it: the benches load the test support modules
 * outside jest, where '@jest/globals' has no `expect`.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  ms = 15_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
