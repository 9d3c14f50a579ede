/**
 * What the daemon, the runners and the CLI need from a job store. The SQLite store implements it
 * today; a PostgreSQL store implements the same interface, so nothing outside worker/store changes,
 * and test/store/job-store-contract.ts is the suite every implementation passes. What a failure
 * leads to is decided outside any store (worker/jobs/attempt-lifecycle.ts); a store writes it.
 * Every method that writes on behalf of a running attempt takes its Lease and changes nothing when
 * that lease is no longer the job's (the job was taken back, deleted or finished by someone else).
 */

import type { Selectable } from 'kysely';
import type { Logger } from 'pino';
import type { InputFile, JobStatus, JobsTable, OutputFile, WorkerJobStateTable } from './schema.js';

export interface Lease {
  jobId: string;
  token: string;
}

export interface ClaimedJob {
  id: number;
  jobId: string;
  taskType: string;
  /** The column as stored: the daemon checks it (worker/jobs/job-row.ts) before anything uses it. */
  inputFilesJson: string;
  retryCount: number;
  maxRetries: number;
  /** 1 for the first attempt: retry_count + 1. */
  attempt: number;
  lease: Lease;
}

export interface ClaimRequest {
  workerId: string;
  taskTypes: readonly string[];
  leaseMs: number;
}

export interface LeaseRenewal {
  /**
   * Job ids taken from this worker: the job was deleted or changed by someone else, or another
   * worker holds it now. The attempt must stop.
   */
  lost: string[];
  /**
   * Job ids whose attempt already ended with no one else holding the job: its runner recorded the
   * outcome itself (and its report to the daemon is on its way), or the job was requeued.
   */
  ended: string[];
}

export interface JobResult {
  outputFiles: OutputFile[];
  taskOutput: Record<string, unknown>;
}

export interface AttemptFailure {
  message: string;
  retryable: boolean;
  /** An operator's cancel ended the attempt (JobCancelledError, CANCELLED_FAILURE). */
  cancelled?: true;
}

/** Delay before the next attempt, given the number of the retry about to be scheduled (1, 2, …). */
export type RetryDelay = (retryNumber: number) => number;

export type FailureOutcome =
  | { kind: 'retrying'; nextAttempt: number; delayMs: number }
  /** `cancelled`: an operator's cancel ended it, and what the attempt wrote is to be removed. */
  | { kind: 'failed'; errorMessage: string; cancelled?: true }
  /** The lease was no longer ours: nothing was written. */
  | { kind: 'fenced' };

export type ReleaseOutcome = 'requeued' | 'cancelled' | 'fenced';

export interface RecoveredJob {
  jobId: string;
  taskType: string;
  /** The attempt that was abandoned. */
  attempt: number;
  reason: string;
  outcome: Exclude<FailureOutcome, { kind: 'fenced' }>;
}

export interface RecoveryRequest {
  /** Jobs in claimed/processing with no lease (left by the Python worker) older than this are taken back. */
  orphanAgeMs: number;
  retryDelay: RetryDelay;
}

export interface NewJob {
  jobId: string;
  taskType: string;
  inputFileSource: 'upload' | 'external' | 'unknown';
  inputFiles: InputFile[];
  priority: number;
  maxRetries: number;
  createdBy: string | null;
}

/** The JSON columns, parsed. */
type ParsedJsonColumns = 'input_files' | 'output_files' | 'task_output';

/**
 * A job as `jobs show` and the dashboard present it: every column of the API's row (its JSON
 * parsed), the queue entry's priority, and the worker's own state for it.
 */
export type JobRecord = Omit<Selectable<JobsTable>, ParsedJsonColumns> & {
  [column in ParsedJsonColumns]: unknown;
} & {
  priority: number | null;
  worker: Omit<WorkerJobStateTable, 'job_id' | 'lease_token'> | null;
};

/**
 * `jobs list` and the dashboard's pages: newest first; with `status: 'queued'`, in claim order;
 * with a finished status (`completed`, `error`), the most recently finished first.
 */
export interface JobListQuery {
  status?: JobStatus;
  taskType?: string;
  limit: number;
  /** Rows to skip (a page further on). */
  offset?: number;
}

export interface JobSummary {
  job_id: string;
  task_type: string;
  status: JobStatus;
  /** The queue entry's priority; null when the job has none (it counts as 5). */
  priority: number | null;
  progress: number;
  retry_count: number;
  max_retries: number;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  error_message: string | null;
}

export interface JobStats {
  /** Jobs per task type and status. */
  counts: { task_type: string; status: JobStatus; jobs: number }[];
  /** The creation time of the oldest queued job of each task type that has one. */
  oldestQueued: { task_type: string; created_at: number }[];
}

/** The dashboard's counts, each read through an index (no query visits every job). */
export interface QueueOverview {
  /** Jobs per status. */
  totals: { status: JobStatus; jobs: number }[];
  /** Jobs not yet finished (queued, claimed, processing) per task type and status. */
  active: { task_type: string; status: JobStatus; jobs: number }[];
  /** Jobs finished since the time asked for, per minute (epoch ms / 60,000), task type and status. */
  finished: { minute: number; task_type: string; status: JobStatus; jobs: number }[];
}

/** An operator's request on one job: done, or refused with the reason. */
export type OperatorOutcome =
  | { kind: 'requeued' }
  | { kind: 'cancelled' }
  /** The job is running: the daemon that runs it stops it and records the cancel. */
  | { kind: 'cancel-requested'; workerId: string | null }
  | { kind: 'refused'; reason: string };

export interface JobStore {
  /** Atomically takes the best runnable job of these task types and leases it to the worker. */
  claimNextJob(request: ClaimRequest): Promise<ClaimedJob | undefined>;
  /** Extends the leases that are still held; says which are not, and why. */
  renewLeases(leases: readonly Lease[], leaseMs: number): Promise<LeaseRenewal>;
  markProcessing(lease: Lease): Promise<boolean>;
  reportProgress(lease: Lease, progress: number): Promise<boolean>;
  completeJob(lease: Lease, result: JobResult): Promise<boolean>;
  /** Ends the attempt: requeued with backoff while the retry budget lasts, `error` otherwise. */
  failAttempt(lease: Lease, failure: AttemptFailure, retryDelay: RetryDelay): Promise<FailureOutcome>;
  /**
   * Back to `queued` without spending a retry (graceful shutdown, a worker-side fault); `cancelled`
   * when an operator's cancel was waiting (the job ends instead), `fenced` when the lease was lost.
   */
  releaseJob(lease: Lease): Promise<ReleaseOutcome>;
  /** Drops the worker's bookkeeping for a lease whose job was deleted or finished by someone else. */
  forgetLease(lease: Lease): Promise<void>;
  /** Takes back jobs whose lease expired (their daemon died) and lease-less orphans. */
  recoverAbandonedJobs(request: RecoveryRequest): Promise<RecoveredJob[]>;
  /** Whether any job of these types is queued, including jobs waiting out a retry backoff. */
  hasQueuedJobs(taskTypes: readonly string[]): Promise<boolean>;
  /** When the first retry of these types now waiting out its backoff may be claimed (epoch ms). */
  nextRetryAt(taskTypes: readonly string[]): Promise<number | undefined>;
  /**
   * Calls `onChange` soon after another process may have queued work, until `signal` aborts. A
   * hint: a change may be reported that brings nothing to claim. Returns false when this store
   * cannot report changes; the daemon's poll interval is then all there is.
   */
  watchQueue(onChange: () => void, signal: AbortSignal): boolean;
  /**
   * Leases among these whose job an operator asked to cancel (`cancelJob` on a running job): the
   * attempt must stop and end the job as cancelled.
   */
  cancelRequested(leases: readonly Lease[]): Promise<Lease[]>;
  /** An `error` job back to `queued` with a fresh retry budget; anything else is refused. */
  retryJob(jobId: string): Promise<OperatorOutcome>;
  /** A queued job ends in `error` "cancelled"; a running one is asked to stop; others are refused. */
  cancelJob(jobId: string): Promise<OperatorOutcome>;
  listJobs(query: JobListQuery): Promise<JobSummary[]>;
  jobStats(): Promise<JobStats>;
  /** Counts for the dashboard; `finishedSince` (epoch ms) bounds the per-minute throughput. */
  queueOverview(finishedSince: number): Promise<QueueOverview>;
  /**
   * A value that differs from the last one read whenever another process may have changed the
   * jobs since (a hint: it may change when nothing the caller shows did). Lets a reader skip
   * re-reading an idle database.
   */
  changeMarker(): Promise<string>;
  /** Queued jobs (retries in backoff included) per task type: the queue-depth metric. */
  queuedCounts(): Promise<Record<string, number>>;
  insertJob(job: NewJob): Promise<void>;
  getJob(jobId: string): Promise<JobRecord | undefined>;
  /**
   * Whether a connection opened now could write (what a runner starting now would get); throws a
   * WorkerFaultError saying why not.
   */
  probeWritable(): Promise<void>;
  /** Throws DatabaseLostError when the database this store opened is gone or was replaced. */
  checkIdentity(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOpenOptions {
  /** Create missing tables and refuse a `jobs` table of another shape (the daemon; not runners). */
  ensureSchema: boolean;
  /** Refuse to create a missing database (runners and probes: their daemon opened it). */
  mustExist?: boolean;
  /** How long a write waits for another process's write lock (PostgreSQL: a row lock) before failing as busy. */
  busyTimeoutMs?: number;
  /** PostgreSQL: the most statements this process runs at once (the daemon: its slots and its timers). */
  connections?: number;
  /** Where a store says what happens to its connections (PostgreSQL: the listening connection). */
  log?: Logger;
  /**
   * Take on the upkeep the database needs after writes (SQLite: checkpoint the WAL early, in small
   * steps), so that the API's own writes rarely have to. The daemon and its runners do; the CLI's
   * one-off commands do not.
   */
  upkeep?: boolean;
}
