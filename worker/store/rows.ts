/**
 * Rows as every store reads them, and what the JobStore interface makes of them: a claimed job,
 * and a job as `jobs show` prints it (the query for it is built here once, for both dialects).
 */
import { type Expression, type Kysely, sql } from 'kysely';
import type { ClaimedJob, JobRecord } from './job-store.js';
import type { Database } from './schema.js';

/** The columns a claim returns of the job it took. */
export const CLAIMED_COLUMNS = [
  'id',
  'job_id',
  'task_type',
  'input_files',
  'retry_count',
  'max_retries',
] as const;

export interface ClaimedRow {
  id: number;
  job_id: string;
  task_type: string;
  input_files: string;
  retry_count: number;
  max_retries: number;
}

export function claimedJobOf(row: ClaimedRow, token: string): ClaimedJob {
  return {
    id: row.id,
    jobId: row.job_id,
    taskType: row.task_type,
    inputFilesJson: row.input_files,
    retryCount: row.retry_count,
    maxRetries: row.max_retries,
    attempt: row.retry_count + 1,
    lease: { jobId: row.job_id, token },
  };
}

/** The job, its queue entry's priority and the worker's state of it, by job id. */
export function jobRecordQuery(db: Kysely<Database>, jobId: string | Expression<string>) {
  return db
    .selectFrom('jobs as j')
    .leftJoin('queue_entries as q', 'q.job_id', 'j.job_id')
    .leftJoin('worker_job_state as s', 's.job_id', 'j.job_id')
    .selectAll('j')
    .select(['q.priority', 's.worker_id', 's.lease_expires_at', 's.not_before', 's.last_error'])
    .select(sql<string | null>`s.job_id`.as('has_state'))
    .where('j.job_id', '=', jobId);
}

export type JobRecordRow = Omit<JobRecord, 'worker' | 'input_files' | 'output_files' | 'task_output'> & {
  input_files: string;
  output_files: string;
  task_output: string | null;
  worker_id: string | null;
  lease_expires_at: number | null;
  not_before: number | null;
  last_error: string | null;
  has_state: string | null;
};

/** JSON columns parsed (as text when they do not parse: a hostile row is shown, not hidden). */
export function jobRecordOf(row: JobRecordRow): JobRecord {
  const { worker_id, lease_expires_at, not_before, last_error, has_state, ...job } = row;
  return {
    ...job,
    input_files: parseJson(row.input_files),
    output_files: parseJson(row.output_files),
    task_output: parseJson(row.task_output),
    worker: has_state === null ? null : { worker_id, lease_expires_at, not_before, last_error },
  };
}

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
