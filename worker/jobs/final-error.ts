/** The wording of a job's final `error_message`, whatever store writes it. */
import type { AttemptFailure } from '../store/job-store.js';
import { boundText, ERROR_MESSAGE_LIMIT } from './bounded-text.js';

/** A non-retryable failure speaks for itself; a retryable one that ran out of attempts says so. */
export function describeFinalFailure(failure: AttemptFailure, attempts: number): string {
  const message = failure.retryable
    ? `Failed after ${attempts} attempt${attempts === 1 ? '' : 's'}; last error: ${failure.message}`
    : failure.message;
  return boundText(message, ERROR_MESSAGE_LIMIT);
}

/** What is kept of a failure for the next attempt's bookkeeping (`last_error`). */
export const lastErrorOf = (failure: AttemptFailure): string =>
  boundText(failure.message, ERROR_MESSAGE_LIMIT);
