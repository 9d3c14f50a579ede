/**
 * What becomes of an attempt, whatever store records it: a failure is retried after a backoff
 * while the job's budget lasts and ends the job in `error` otherwise; a job taken back from a
 * worker that died is a retryable failure with a reason that says so; progress stays below 100
 * until the job completes. A store only writes what these functions decide.
 */
import type { AttemptFailure, FailureOutcome, RetryDelay } from '../store/job-store.js';
import { describeFinalFailure, lastErrorOf } from './final-error.js';

/** The columns of a job in flight that decide its next step. */
export interface AttemptBudget {
  retryCount: number;
  maxRetries: number;
}

export type AttemptEnd =
  | {
      kind: 'retry';
      /** The new `retry_count`. */
      retryCount: number;
      delayMs: number;
      /** Epoch ms before which the job is not claimed again. */
      notBefore: number;
      /** Kept beside the job for the next attempt (`last_error`). */
      lastError: string;
    }
  | { kind: 'fail'; errorMessage: string; cancelled?: true };

/** Requeue with backoff while the budget lasts; otherwise the job ends with its final message. */
export function decideAttemptEnd(
  job: AttemptBudget,
  failure: AttemptFailure,
  retryDelay: RetryDelay,
  now: number,
): AttemptEnd {
  if (failure.retryable && job.retryCount < job.maxRetries) {
    const retryCount = job.retryCount + 1;
    const delayMs = Math.max(0, Math.round(retryDelay(retryCount)));
    return { kind: 'retry', retryCount, delayMs, notBefore: now + delayMs, lastError: lastErrorOf(failure) };
  }
  const errorMessage = describeFinalFailure(failure, job.retryCount + 1);
  return { kind: 'fail', errorMessage, ...cancelledFlag(failure) };
}

/** The outcome reported to the daemon and the runner for what the store wrote. */
export function outcomeOf(end: AttemptEnd): Exclude<FailureOutcome, { kind: 'fenced' }> {
  return end.kind === 'retry'
    ? { kind: 'retrying', nextAttempt: end.retryCount + 1, delayMs: end.delayMs }
    : { kind: 'failed', errorMessage: end.errorMessage, ...cancelledFlag(end) };
}

/** `cancelled: true` carried over when set (the field is absent, not false, otherwise). */
const cancelledFlag = ({ cancelled }: { cancelled?: true }) => (cancelled ? { cancelled } : {});

/** An in-flight job no live worker holds: either its lease expired or it never had one. */
export interface AbandonedAttempt {
  status: string;
  workerId: string | null;
  /** Null for a lease-less orphan (left by the Python worker). */
  leaseExpiresAt: number | null;
}

/** Why a job was taken back, as its `last_error` and final message say. */
export function recoveryReason(job: AbandonedAttempt, orphanAgeMs: number): string {
  return job.leaseExpiresAt !== null
    ? `worker ${job.workerId ?? '?'} stopped renewing its lease (it died or hung)`
    : `left in '${job.status}' with no lease for over ${Math.round(orphanAgeMs / 1000)} s (its worker is gone)`;
}

/** Progress as stored while an attempt runs: a whole number from 0 to 99 (100 means completed). */
export function boundProgress(progress: number): number {
  if (Number.isNaN(progress)) return 0;
  return Math.max(0, Math.min(99, Math.floor(progress)));
}
