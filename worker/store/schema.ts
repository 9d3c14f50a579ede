/**
 * The one typed description of every table the worker touches. `jobs` and `queue_entries` belong
 * to the API service (their DDL is docs/media_store-v1.sql and never changes; docs/contract.md says
 * who writes what); `worker_job_state` is ours: leases, retry schedule and the last failure of each
 * in-flight job; so is `media_worker_ready`, the queued jobs in claim order.
 */
import type { Generated } from 'kysely';

export const JOB_STATUSES = ['queued', 'claimed', 'processing', 'completed', 'error'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface JobsTable {
  id: Generated<number>;
  job_id: string;
  task_type: string;
  input_file_source: string;
  input_file_path: string;
  /** JSON array of InputFile. */
  input_files: string;
  /** JSON array of OutputFile; "[]" until success. */
  output_files: string;
  status: JobStatus;
  progress: number;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  task_output: string | null;
  error_message: string | null;
  retry_count: number;
  max_retries: number;
  created_by: string | null;
}

export interface QueueEntriesTable {
  id: Generated<number>;
  job_id: string;
  priority: number;
  enqueued_at: number;
}

export interface WorkerJobStateTable {
  job_id: string;
  worker_id: string | null;
  lease_token: string | null;
  lease_expires_at: number | null;
  /** A requeued job may not be claimed before this time (ms). */
  not_before: number | null;
  last_error: string | null;
}

/** One row per queued job, kept in step with `jobs` and `queue_entries` by the store. */
export interface ReadyTable {
  job_id: string;
  /** `jobs.id`, the last tie-break of the queue order. */
  id: number;
  task_type: string;
  /**
   * From `queue_entries`, DEFAULT_PRIORITY when the job has no entry; null until the next claim
   * looks it up (a job a trigger put back in the queue).
   */
  priority: number | null;
  created_at: number;
  /** Set while a retry waits out its backoff; null once the job may be claimed. */
  not_before: number | null;
}

/**
 * An operator's request to cancel the attempt holding `lease_token` (`jobs cancel` on a running
 * job). Keyed by the lease, so a request that comes too late never touches a later attempt.
 */
export interface CancelRequestTable {
  job_id: string;
  lease_token: string;
  requested_at: number;
}

export interface Database {
  jobs: JobsTable;
  queue_entries: QueueEntriesTable;
  worker_job_state: WorkerJobStateTable;
  media_worker_ready: ReadyTable;
  media_worker_cancel: CancelRequestTable;
}

/** Columns the API's `jobs` table has; a database whose `jobs` lacks one is refused. */
export const JOBS_COLUMNS: readonly (keyof JobsTable)[] = [
  'id',
  'job_id',
  'task_type',
  'input_file_source',
  'input_file_path',
  'input_files',
  'output_files',
  'status',
  'progress',
  'created_at',
  'started_at',
  'completed_at',
  'task_output',
  'error_message',
  'retry_count',
  'max_retries',
  'created_by',
];

export const DEFAULT_PRIORITY = 5;

export interface InputFile {
  path: string;
  filename?: string;
  size?: number;
  hash?: string;
  metadata?: Record<string, unknown>;
}

export interface OutputFile {
  file_id: string;
  filename: string;
  metadata: Record<string, unknown>;
}
