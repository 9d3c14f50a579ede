/**
 * What an operator may do to a job (`jobs retry`, `jobs cancel`), decided from the job as it is,
 * whatever store holds it. A store reads the job in a transaction, asks here, and writes the answer.
 */
import type { JobStatus } from '../store/schema.js';

export interface JobState {
  status: JobStatus;
  /** The lease of the attempt running now, if any. */
  leaseToken: string | null;
  workerId: string | null;
}

export const CANCELLED_MESSAGE = 'cancelled';

/**
 * How an attempt an operator cancelled ends when its daemon could not stop it itself (the daemon
 * shut down, met a fault, or died and the job was taken back): not requeued, never retried.
 */
export const CANCELLED_FAILURE = { message: CANCELLED_MESSAGE, retryable: false, cancelled: true } as const;

export type RetryDecision = { kind: 'requeue' } | { kind: 'refuse'; reason: string };

export type CancelDecision =
  | { kind: 'cancel-now' }
  | { kind: 'ask-runner'; leaseToken: string; workerId: string | null }
  | { kind: 'refuse'; reason: string };

export function decideRetry(jobId: string, job: JobState | undefined): RetryDecision {
  if (!job) return { kind: 'refuse', reason: `no job ${jobId}` };
  if (job.status !== 'error') {
    return {
      kind: 'refuse',
      reason: `job ${jobId} is ${job.status}: only a job that ended in error is retried`,
    };
  }
  return { kind: 'requeue' };
}

export function decideCancel(jobId: string, job: JobState | undefined): CancelDecision {
  if (!job) return { kind: 'refuse', reason: `no job ${jobId}` };
  switch (job.status) {
    case 'queued':
      return { kind: 'cancel-now' };
    case 'claimed':
    case 'processing':
      // In flight with no lease of this worker: left by the Python worker, or just ended.
      if (job.leaseToken === null) {
        return {
          kind: 'refuse',
          reason: `job ${jobId} is ${job.status} with no worker holding it; try again`,
        };
      }
      return { kind: 'ask-runner', leaseToken: job.leaseToken, workerId: job.workerId };
    default:
      return { kind: 'refuse', reason: `job ${jobId} has already ended (${job.status})` };
  }
}
