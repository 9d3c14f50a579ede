import type { RetryDelay } from '../store/job-store.js';

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries of
 * jobs that failed together spread out but none comes back immediately.
 */
export function exponentialBackoff(baseMs: number, maxMs: number): RetryDelay {
  return (retryNumber) => {
    const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, retryNumber - 1));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  };
}
