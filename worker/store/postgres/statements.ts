/**
 * The statements the PostgreSQL store runs on behalf of an attempt. Every write made for an
 * attempt is fenced by its lease: it first takes a share lock on the job's `worker_job_state` row
 * holding that lease token, so no one can take the lease away (a recovery, a claim elsewhere)
 * until the write commits, and a lease already taken finds no row and writes nothing.
 */
import { type Kysely, sql, type Transaction } from 'kysely';
import type pg from 'pg';
import type { Lease } from '../job-store.js';
import type { Database, JobsTable } from '../schema.js';
import { runPrepared } from './prepared.js';

const IN_FLIGHT = ['claimed', 'processing'] as const;

type Db = Kysely<Database> | Transaction<Database>;

/** The builder, and the pool that runs its hot statements as prepared statements (prepared.ts). */
export interface Connections {
  db: Kysely<Database>;
  pool: pg.Pool;
}
type JobChanges = Partial<Omit<JobsTable, 'id'>>;

export interface InFlightJob {
  job_id: string;
  task_type: string;
  retry_count: number;
  max_retries: number;
}

/** The job's row in worker_job_state while it holds this lease, share-locked till the statement's transaction ends. */
function heldLease(db: Db, lease: Lease) {
  return db
    .selectFrom('worker_job_state')
    .select('job_id')
    .where('job_id', '=', lease.jobId)
    .where('lease_token', '=', lease.token);
}

/** Updates the job while the lease is its; the number of jobs changed (0 or 1). */
export async function updateHeldJob(
  { db, pool }: Connections,
  lease: Lease,
  changes: JobChanges,
): Promise<number> {
  const query = db
    .with('held', () => heldLease(db, lease).forShare())
    .updateTable('jobs')
    .from('held')
    .set(changes)
    .whereRef('jobs.job_id', '=', 'held.job_id')
    .where('jobs.status', 'in', IN_FLIGHT);
  return (await runPrepared(pool, query.compile())).rowCount ?? 0;
}

/**
 * The job's outcome written and its lease dropped, in one statement; the number of jobs ended (0
 * or 1). Deleting the lease row first is the fence: the delete waits out, and re-reads after, any
 * change to that row, so it finds the row only while the token is still this one. A job no longer
 * in flight (the API changed it) is left as it is, and its lease, now of no use, is gone with it.
 */
export async function completeHeldJob(
  { db, pool }: Connections,
  lease: Lease,
  changes: JobChanges,
): Promise<number> {
  const query = db
    .with('dropped', (qb) =>
      qb
        .deleteFrom('worker_job_state')
        .where('job_id', '=', lease.jobId)
        .where('lease_token', '=', lease.token)
        .returning('job_id'),
    )
    .updateTable('jobs')
    .from('dropped')
    .set(changes)
    .whereRef('jobs.job_id', '=', 'dropped.job_id')
    .where('jobs.status', 'in', IN_FLIGHT);
  return (await runPrepared(pool, query.compile())).rowCount ?? 0;
}

/** The job, locked, while the lease is its; undefined once it is not. */
export async function lockHeldJob(
  trx: Transaction<Database>,
  lease: Lease,
): Promise<InFlightJob | undefined> {
  return trx
    .selectFrom('jobs as j')
    .innerJoin('worker_job_state as s', 's.job_id', 'j.job_id')
    .select(['j.job_id', 'j.task_type', 'j.retry_count', 'j.max_retries'])
    .where('j.job_id', '=', lease.jobId)
    .where('s.lease_token', '=', lease.token)
    .where('j.status', 'in', IN_FLIGHT)
    .forUpdate()
    .executeTakeFirst();
}

/**
 * Back to `queued` after the retry schedule is written: the trigger that puts the job back in the
 * ready index copies its `not_before`.
 */
export async function requeue(
  trx: Transaction<Database>,
  jobId: string,
  schedule: { notBefore: number | null; lastError: string | null; retryIncrement: number },
): Promise<void> {
  await trx
    .insertInto('worker_job_state')
    .values({
      job_id: jobId,
      worker_id: null,
      lease_token: null,
      lease_expires_at: null,
      not_before: schedule.notBefore,
      last_error: schedule.lastError,
    })
    .onConflict((conflict) =>
      conflict.column('job_id').doUpdateSet((eb) => ({
        worker_id: null,
        lease_token: null,
        lease_expires_at: null,
        not_before: eb.ref('excluded.not_before'),
        last_error: eb.fn.coalesce('excluded.last_error', 'worker_job_state.last_error'),
      })),
    )
    .execute();
  await trx
    .updateTable('jobs')
    .set((eb) => ({
      status: 'queued',
      progress: 0,
      retry_count: eb('retry_count', '+', schedule.retryIncrement),
    }))
    .where('job_id', '=', jobId)
    .where('status', 'in', IN_FLIGHT)
    .execute();
}

export async function failJob(
  trx: Transaction<Database>,
  jobId: string,
  errorMessage: string,
  now: number,
): Promise<void> {
  await trx
    .updateTable('jobs')
    .set({ status: 'error', error_message: errorMessage, completed_at: now })
    .where('job_id', '=', jobId)
    .where('status', 'in', IN_FLIGHT)
    .execute();
  await trx.deleteFrom('worker_job_state').where('job_id', '=', jobId).execute();
}

/** Leases renewed (job ids): only those still held, on jobs still in flight. */
export async function renewHeldLeases(
  { db, pool }: Connections,
  leases: readonly Lease[],
  expiresAt: number,
): Promise<Set<string>> {
  const query = sql<{ job_id: string }>`
    UPDATE worker_job_state s SET lease_expires_at = ${expiresAt}::bigint
    FROM unnest(${leases.map((l) => l.jobId)}::varchar[], ${leases.map((l) => l.token)}::varchar[])
      AS held(job_id, lease_token)
    WHERE s.job_id = held.job_id AND s.lease_token = held.lease_token
      AND EXISTS (SELECT 1 FROM jobs j WHERE j.job_id = s.job_id AND j.status IN ('claimed', 'processing'))
    RETURNING s.job_id`;
  const { rows } = await runPrepared<{ job_id: string }>(pool, query.compile(db));
  return new Set(rows.map((row) => row.job_id));
}

export interface AbandonedJob extends InFlightJob {
  status: string;
  worker_id: string | null;
  lease_token: string | null;
  lease_expires_at: number | null;
  started_at: number | null;
  created_at: number;
}

/**
 * Jobs in flight with an expired lease, or with none for too long, locked. Their leases are read
 * again under a lock of their own: a renewal committed since this statement began wins.
 */
export async function lockAbandonedJobs(
  trx: Transaction<Database>,
  now: number,
  orphanBefore: number,
): Promise<AbandonedJob[]> {
  const candidates = await trx
    .selectFrom('jobs as j')
    .leftJoin('worker_job_state as s', 's.job_id', 'j.job_id')
    .select([
      'j.job_id',
      'j.task_type',
      'j.retry_count',
      'j.max_retries',
      'j.status',
      'j.started_at',
      'j.created_at',
      's.job_id as leased_job_id',
    ])
    .where('j.status', 'in', IN_FLIGHT)
    .where((eb) =>
      eb.or([
        eb('s.lease_expires_at', '<', now),
        eb.and([
          eb('s.lease_token', 'is', null),
          eb(eb.fn.coalesce('j.started_at', 'j.created_at'), '<', orphanBefore),
        ]),
      ]),
    )
    .forUpdate('j')
    .skipLocked()
    .execute();
  if (candidates.length === 0) return [];
  const leases = await trx
    .selectFrom('worker_job_state')
    .select(['job_id', 'worker_id', 'lease_token', 'lease_expires_at'])
    .where(
      'job_id',
      'in',
      candidates.map((job) => job.job_id),
    )
    // Lease rows someone is writing this instant (a renewal, the runner's own completion) are
    // skipped, not waited for: their owner is alive, and waiting would lock in the other order
    // from those writers.
    .forUpdate()
    .skipLocked()
    .execute();
  const leaseOf = new Map(leases.map((lease) => [lease.job_id, lease]));
  return candidates
    .filter((job) => job.leased_job_id === null || leaseOf.has(job.job_id))
    .map(({ leased_job_id: _, ...job }) => {
      const lease = leaseOf.get(job.job_id);
      return {
        ...job,
        worker_id: lease?.worker_id ?? null,
        lease_token: lease?.lease_token ?? null,
        lease_expires_at: lease?.lease_expires_at ?? null,
      };
    })
    .filter((job) =>
      job.lease_token === null
        ? (job.started_at ?? job.created_at) < orphanBefore
        : job.lease_expires_at !== null && job.lease_expires_at < now,
    );
}
