/**
 * Waits for a promise until a deadline (ms since the epoch): its value if it resolves in time,
 * otherwise (rejected or too late) undefined. The timer is cleared either way, so nothing waits on.
 */
export async function settleBy<T>(promise: Promise<T>, deadline: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, deadline - Date.now()), undefined);
  });
  try {
    return await Promise.race([promise.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
