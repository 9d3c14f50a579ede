/**
 * Every statement the SQLite store runs on behalf of an attempt, built with Kysely against the one
 * Database interface and prepared once with named placeholders (prepared-statement.ts).
 */
import type BetterSqlite3 from 'better-sqlite3';
import {
  type CompiledQuery,
  DummyDriver,
  type ExpressionBuilder,
  Kysely,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  sql,
} from 'kysely';
import { CLAIMED_COLUMNS, type ClaimedRow, type JobRecordRow, jobRecordQuery } from '../rows.js';
import type { Database } from '../schema.js';
import { param, prepareCompiled } from './prepared-statement.js';

export const queryBuilder = new Kysely<Database>({
  dialect: {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  },
});

const IN_FLIGHT = [sql.lit('claimed' as const), sql.lit('processing' as const)];

/** The fence on every write made for an attempt: the job is in flight and the lease is still ours. */
function heldLease(eb: ExpressionBuilder<Database, 'jobs'>) {
  return eb.and([
    eb('jobs.job_id', '=', param<string>('jobId')),
    eb('jobs.status', 'in', IN_FLIGHT),
    eb.exists(
      eb
        .selectFrom('worker_job_state as lease')
        .select(sql.lit(1).as('held'))
        .whereRef('lease.job_id', '=', 'jobs.job_id')
        .where('lease.lease_token', '=', param<string>('token')),
    ),
  ]);
}

/** A job as the ready index names it. */
export type ReadyJob = { id: number; job_id: string; task_type: string };

export interface InFlightJob {
  job_id: string;
  task_type: string;
  retry_count: number;
  max_retries: number;
}

export function buildStatements(sqlite: BetterSqlite3.Database) {
  const prepare = <Row, Args extends Record<string, unknown>>(query: { compile(): CompiledQuery<Row> }) =>
    prepareCompiled<Row, Args>(sqlite, query.compile());
  const db = queryBuilder;
  return {
    // By row id, and only if the row is still the job the ready index names: a row the API
    // replaced in place (INSERT OR REPLACE) may hold another job, of another task type.
    takeJob: prepare<ClaimedRow, ReadyJob>(
      db
        .updateTable('jobs')
        .set({ status: 'claimed' })
        .where('id', '=', param('id'))
        .where('job_id', '=', param('job_id'))
        .where('task_type', '=', param('task_type'))
        .where('status', '=', sql.lit('queued'))
        .returning(CLAIMED_COLUMNS),
    ),
    grantLease: prepare<never, { jobId: string; workerId: string; token: string; expiresAt: number }>(
      db
        .insertInto('worker_job_state')
        .values({
          job_id: param('jobId'),
          worker_id: param('workerId'),
          lease_token: param('token'),
          lease_expires_at: param('expiresAt'),
          not_before: null,
          last_error: null,
        })
        .onConflict((conflict) =>
          conflict.column('job_id').doUpdateSet((eb) => ({
            worker_id: eb.ref('excluded.worker_id'),
            lease_token: eb.ref('excluded.lease_token'),
            lease_expires_at: eb.ref('excluded.lease_expires_at'),
            not_before: null,
          })),
        ),
    ),
    renewLease: prepare<never, { jobId: string; token: string; expiresAt: number }>(
      db
        .updateTable('worker_job_state')
        .set({ lease_expires_at: param('expiresAt') })
        .where('job_id', '=', param('jobId'))
        .where('lease_token', '=', param('token'))
        .where((eb) =>
          eb.exists(
            eb
              .selectFrom('jobs')
              .select(sql.lit(1).as('live'))
              .whereRef('jobs.job_id', '=', 'worker_job_state.job_id')
              .where('jobs.status', 'in', IN_FLIGHT),
          ),
        ),
    ),
    leaseTokenOf: prepare<{ lease_token: string | null }, { jobId: string }>(
      db.selectFrom('worker_job_state').select('lease_token').where('job_id', '=', param('jobId')),
    ),
    markProcessing: prepare<never, { jobId: string; token: string; now: number }>(
      db
        .updateTable('jobs')
        .set({ status: 'processing', started_at: param('now'), progress: 0 })
        .where((eb) => heldLease(eb)),
    ),
    reportProgress: prepare<never, { jobId: string; token: string; progress: number }>(
      db
        .updateTable('jobs')
        .set({ progress: param('progress') })
        .where((eb) => heldLease(eb)),
    ),
    completeJob: prepare<
      never,
      { jobId: string; token: string; outputFiles: string; taskOutput: string; now: number }
    >(
      db
        .updateTable('jobs')
        .set({
          status: 'completed',
          progress: 100,
          output_files: param('outputFiles'),
          task_output: param('taskOutput'),
          error_message: null,
          completed_at: param('now'),
        })
        .where((eb) => heldLease(eb)),
    ),
    heldJob: prepare<InFlightJob, { jobId: string; token: string }>(
      db
        .selectFrom('jobs')
        .select(['job_id', 'task_type', 'retry_count', 'max_retries'])
        .where((eb) => heldLease(eb)),
    ),
    requeue: prepare<never, { jobId: string; retryIncrement: number }>(
      db
        .updateTable('jobs')
        .set((eb) => ({
          status: 'queued',
          progress: 0,
          retry_count: eb('retry_count', '+', param<number>('retryIncrement')),
        }))
        .where('job_id', '=', param('jobId'))
        .where('status', 'in', IN_FLIGHT),
    ),
    scheduleRetry: prepare<never, { jobId: string; notBefore: number | null; lastError: string | null }>(
      db
        .insertInto('worker_job_state')
        .values({
          job_id: param('jobId'),
          worker_id: null,
          lease_token: null,
          lease_expires_at: null,
          not_before: param('notBefore'),
          last_error: param('lastError'),
        })
        .onConflict((conflict) =>
          conflict.column('job_id').doUpdateSet((eb) => ({
            worker_id: null,
            lease_token: null,
            lease_expires_at: null,
            not_before: eb.ref('excluded.not_before'),
            last_error: eb.fn.coalesce('excluded.last_error', 'worker_job_state.last_error'),
          })),
        ),
    ),
    failJob: prepare<never, { jobId: string; errorMessage: string; now: number }>(
      db
        .updateTable('jobs')
        .set({ status: 'error', error_message: param('errorMessage'), completed_at: param('now') })
        .where('job_id', '=', param('jobId'))
        .where('status', 'in', IN_FLIGHT),
    ),
    dropState: prepare<never, { jobId: string }>(
      db.deleteFrom('worker_job_state').where('job_id', '=', param('jobId')),
    ),
    forgetLease: prepare<never, { jobId: string; token: string }>(
      db
        .deleteFrom('worker_job_state')
        .where('job_id', '=', param('jobId'))
        .where('lease_token', '=', param('token'))
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('jobs')
                .select(sql.lit(1).as('live'))
                .whereRef('jobs.job_id', '=', 'worker_job_state.job_id')
                .where('jobs.status', 'in', IN_FLIGHT),
            ),
          ),
        ),
    ),
    abandonedJobs: prepare<
      InFlightJob & {
        status: string;
        worker_id: string | null;
        lease_token: string | null;
        lease_expires_at: number | null;
      },
      { now: number; orphanBefore: number }
    >(
      db
        .selectFrom('jobs as j')
        .leftJoin('worker_job_state as s', 's.job_id', 'j.job_id')
        .select([
          'j.job_id',
          'j.task_type',
          'j.retry_count',
          'j.max_retries',
          'j.status',
          's.worker_id',
          's.lease_token',
          's.lease_expires_at',
        ])
        .where('j.status', 'in', IN_FLIGHT)
        .where((eb) =>
          eb.or([
            eb('s.lease_expires_at', '<', param<number>('now')),
            eb.and([
              eb('s.lease_token', 'is', null),
              eb(eb.fn.coalesce('j.started_at', 'j.created_at'), '<', param<number>('orphanBefore')),
            ]),
          ]),
        ),
    ),
    insertJob: prepare<
      never,
      {
        jobId: string;
        taskType: string;
        source: string;
        inputFilePath: string;
        inputFiles: string;
        now: number;
        maxRetries: number;
        createdBy: string | null;
      }
    >(
      db.insertInto('jobs').values({
        job_id: param('jobId'),
        task_type: param('taskType'),
        input_file_source: param('source'),
        input_file_path: param('inputFilePath'),
        input_files: param('inputFiles'),
        output_files: '[]',
        status: 'queued',
        progress: 0,
        created_at: param('now'),
        started_at: null,
        completed_at: null,
        task_output: null,
        error_message: null,
        retry_count: 0,
        max_retries: param('maxRetries'),
        created_by: param('createdBy'),
      }),
    ),
    insertQueueEntry: prepare<never, { jobId: string; priority: number; now: number }>(
      db.insertInto('queue_entries').values({
        job_id: param('jobId'),
        priority: param('priority'),
        enqueued_at: param('now'),
      }),
    ),
    jobById: prepare<JobRecordRow, { jobId: string }>(jobRecordQuery(db, param<string>('jobId'))),
  };
}

export type Statements = ReturnType<typeof buildStatements>;
