/**
 * The queries behind `jobs list`, `jobs stats`, `jobs retry` and `jobs cancel`, built once for
 * both stores (SQLite compiles and runs them itself, PostgreSQL executes them through Kysely).
 */
import { type Kysely, sql } from 'kysely';
import { CANCELLED_MESSAGE } from '../jobs/operator-requests.js';
import type { JobListQuery, Lease } from './job-store.js';
import { type Database, DEFAULT_PRIORITY, type JobStatus } from './schema.js';

const FINISHED_STATUSES: readonly JobStatus[] = ['completed', 'error'];
const ACTIVE_STATUSES: readonly JobStatus[] = ['queued', 'claimed', 'processing'];

export function listJobsQuery(db: Kysely<Database>, { status, taskType, limit, offset = 0 }: JobListQuery) {
  // A scalar subquery, not a join: the rows an offset skips are never looked up in queue_entries.
  const priority = sql<number | null>`(SELECT q.priority FROM queue_entries AS q WHERE q.job_id = j.job_id)`;
  let query = db
    .selectFrom('jobs as j')
    .select([
      'j.job_id',
      'j.task_type',
      'j.status',
      priority.as('priority'),
      'j.progress',
      'j.retry_count',
      'j.max_retries',
      'j.created_at',
      'j.started_at',
      'j.completed_at',
      'j.error_message',
    ]);
  if (status !== undefined) query = query.where('j.status', '=', status);
  if (taskType !== undefined) query = query.where('j.task_type', '=', taskType);
  if (status === 'queued') {
    query = query
      .orderBy((eb) => eb.fn.coalesce(priority, sql.lit(DEFAULT_PRIORITY)), 'desc')
      .orderBy('j.created_at')
      .orderBy('j.id');
  } else if (status !== undefined && FINISHED_STATUSES.includes(status)) {
    // Through media_worker_finished, read backwards. A finished job always has completed_at (every
    // worker and `jobs cancel` set it); a row ended without one shows among all jobs, not here.
    query = query
      .where('j.completed_at', 'is not', null)
      .orderBy('j.completed_at', 'desc')
      .orderBy('j.id', 'desc');
  } else {
    query = query.orderBy('j.created_at', 'desc').orderBy('j.id', 'desc');
  }
  return query.limit(limit).offset(offset);
}

/** Jobs per status: on SQLite a scan of ix_jobs_status alone. */
export function statusTotalsQuery(db: Kysely<Database>) {
  return db
    .selectFrom('jobs')
    .select(['status', (eb) => eb.fn.countAll<number>().as('jobs')])
    .groupBy('status')
    .orderBy('status');
}

/** Unfinished jobs per task type and status, reached through ix_jobs_status. */
export function activeCountsQuery(db: Kysely<Database>) {
  return db
    .selectFrom('jobs')
    .select(['task_type', 'status', (eb) => eb.fn.countAll<number>().as('jobs')])
    .where('status', 'in', ACTIVE_STATUSES)
    .groupBy(['task_type', 'status'])
    .orderBy('task_type')
    .orderBy('status');
}

/** Jobs finished since a time, per minute, through the worker's media_worker_finished index. */
export function finishedPerMinuteQuery(db: Kysely<Database>, since: number) {
  const minute = sql<number>`completed_at / 60000`;
  return db
    .selectFrom('jobs')
    .select([minute.as('minute'), 'task_type', 'status', (eb) => eb.fn.countAll<number>().as('jobs')])
    .where('completed_at', '>=', since)
    .where('status', 'in', FINISHED_STATUSES)
    .groupBy([minute, 'task_type', 'status'])
    .orderBy('minute');
}

export function countsQuery(db: Kysely<Database>) {
  return db
    .selectFrom('jobs')
    .select(['task_type', 'status', (eb) => eb.fn.countAll<number>().as('jobs')])
    .groupBy(['task_type', 'status'])
    .orderBy('task_type')
    .orderBy('status');
}

/** Queued jobs per task type, read through the API's ix_jobs_status: only queued rows are visited. */
export function queuedCountsQuery(db: Kysely<Database>) {
  return db
    .selectFrom('jobs')
    .select(['task_type', (eb) => eb.fn.countAll<number>().as('jobs')])
    .where('status', '=', 'queued')
    .groupBy('task_type');
}

export function oldestQueuedQuery(db: Kysely<Database>) {
  return db
    .selectFrom('jobs')
    .select(['task_type', (eb) => eb.fn.min<number>('created_at').as('created_at')])
    .where('status', '=', 'queued')
    .groupBy('task_type')
    .orderBy('task_type');
}

/** The job's status and the lease on it, for decideRetry and decideCancel. */
export function jobStateQuery(db: Kysely<Database>, jobId: string) {
  return db
    .selectFrom('jobs as j')
    .leftJoin('worker_job_state as s', 's.job_id', 'j.job_id')
    .select(['j.status', 's.lease_token', 's.worker_id'])
    .where('j.job_id', '=', jobId);
}

/** Retry bookkeeping of the old attempts (backoff, last error, lease) dropped. */
export function dropWorkerStateQuery(db: Kysely<Database>, jobId: string) {
  return db.deleteFrom('worker_job_state').where('job_id', '=', jobId);
}

export function requeueForRetryQuery(db: Kysely<Database>, jobId: string) {
  return db
    .updateTable('jobs')
    .set({
      status: 'queued',
      retry_count: 0,
      progress: 0,
      error_message: null,
      started_at: null,
      completed_at: null,
      output_files: '[]',
      task_output: null,
    })
    .where('job_id', '=', jobId)
    .where('status', '=', 'error');
}

export function cancelQueuedQuery(db: Kysely<Database>, jobId: string, now: number) {
  return db
    .updateTable('jobs')
    .set({ status: 'error', error_message: CANCELLED_MESSAGE, completed_at: now })
    .where('job_id', '=', jobId)
    .where('status', '=', 'queued');
}

export function requestCancelQuery(db: Kysely<Database>, jobId: string, leaseToken: string, now: number) {
  return db
    .insertInto('media_worker_cancel')
    .values({ job_id: jobId, lease_token: leaseToken, requested_at: now })
    .onConflict((conflict) => conflict.columns(['job_id', 'lease_token']).doNothing());
}

/** Which of these leases an operator asked to cancel. */
export function cancelRequestedQuery(db: Kysely<Database>, leases: readonly Lease[]) {
  return db
    .selectFrom('media_worker_cancel')
    .select(['job_id', 'lease_token'])
    .where((eb) =>
      eb.or(
        leases.map((lease) => eb.and([eb('job_id', '=', lease.jobId), eb('lease_token', '=', lease.token)])),
      ),
    );
}
