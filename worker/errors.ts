import { boundText, ERROR_MESSAGE_LIMIT } from './jobs/bounded-text.js';
import { CANCELLED_MESSAGE } from './jobs/operator-requests.js';

/**
 * Errors that end an attempt. Each says whether another attempt can help (`retryable`) and carries
 * a message written for whoever reads the job's `error_message` (bounded: it may quote row data).
 */
export abstract class JobError extends Error {
  abstract readonly retryable: boolean;
  constructor(message: string) {
    super(boundText(message, ERROR_MESSAGE_LIMIT));
  }
}

/** Parameters that fail the module's schema: the same job fails the same way every time. */
export class InvalidParametersError extends JobError {
  readonly retryable = false;
  override readonly name = 'InvalidParametersError';
}

/** Missing, unreadable, corrupt or unsupported input, or a path outside the storage root. */
export class BadInputError extends JobError {
  readonly retryable = false;
  override readonly name = 'BadInputError';
}

/** The runner ran past its time budget and was killed. */
export class JobTimeoutError extends JobError {
  readonly retryable = true;
  override readonly name = 'JobTimeoutError';
  constructor(readonly timeoutSeconds: number) {
    super(`timed out after ${timeoutSeconds} s`);
  }
}

/** The runner process exited, was killed by a signal or ran out of memory mid-job. */
export class RunnerCrashedError extends JobError {
  readonly retryable = true;
  override readonly name = 'RunnerCrashedError';
}

/** A failure a later attempt may not hit (a busy resource, a flaky dependency). */
export class TransientJobError extends JobError {
  readonly retryable = true;
  override readonly name = 'TransientJobError';
}

/** An operator cancelled the job while it ran (`jobs cancel`): it ends at once, never retried. */
export class JobCancelledError extends JobError {
  readonly retryable = false;
  readonly cancelled = true;
  override readonly name = 'JobCancelledError';
  constructor() {
    super(CANCELLED_MESSAGE);
  }
}

/** Anything a module throws that is not a JobError is treated as retryable: the budget bounds it. */
export function toJobError(error: unknown): JobError {
  if (error instanceof JobError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new TransientJobError(message);
}

/**
 * The worker, not the job, is at fault: the database cannot be written (read-only, locked past the
 * lease) or the storage root cannot be written. The job goes back to the queue without spending a
 * retry, and the daemon stops claiming until a check of the fault passes.
 */
export class WorkerFaultError extends Error {
  override readonly name: string = 'WorkerFaultError';
}

/** Another process holds the database's write lock past the busy timeout; it may clear by itself. */
export class DatabaseBusyError extends WorkerFaultError {
  override readonly name = 'DatabaseBusyError';
}

/**
 * The database server cannot be reached (it is down or restarting, or the network is): it may come
 * back by itself. Writes made for a job wait for it while the lease lasts; the daemon stops claiming
 * until a check gets through.
 */
export class DatabaseUnreachableError extends WorkerFaultError {
  override readonly name = 'DatabaseUnreachableError';
}

/** A database fault that may clear by itself: a write made for a job is worth trying again. */
export function mayClearByItself(error: unknown): error is DatabaseBusyError | DatabaseUnreachableError {
  return error instanceof DatabaseBusyError || error instanceof DatabaseUnreachableError;
}

/**
 * The database the worker opened is gone: its file was deleted or replaced. Nothing written from
 * now on would reach the API, so the daemon exits non-zero for its supervisor to restart it.
 */
export class DatabaseLostError extends Error {
  override readonly name = 'DatabaseLostError';
}

/** A startup problem the operator must fix (bad configuration, unknown module, wrong schema). */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}
