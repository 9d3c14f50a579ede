/**
 * The job store on a PostgreSQL server, for workers on several machines. The claim lives in
 * claim.ts, the fenced statements in statements.ts, the schema and the triggers that keep the
 * ready index in ddl.ts and schema-setup.ts, the wake-up in queue-listener.ts. What a failure
 * leads to is decided outside any store (worker/jobs/attempt-lifecycle.ts) and only written here.
 */
import { type Kysely, sql, type Transaction } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { DatabaseLostError, StartupError, WorkerFaultError } from '../../errors.js';
import { boundProgress, decideAttemptEnd, outcomeOf, recoveryReason } from '../../jobs/attempt-lifecycle.js';
import { CANCELLED_FAILURE, decideCancel, decideRetry, type JobState } from '../../jobs/operator-requests.js';
import type {
  AttemptFailure,
  ClaimedJob,
  ClaimRequest,
  FailureOutcome,
  JobListQuery,
  JobRecord,
  JobResult,
  JobStats,
  JobStore,
  JobSummary,
  Lease,
  LeaseRenewal,
  NewJob,
  OperatorOutcome,
  QueueOverview,
  RecoveredJob,
  RecoveryRequest,
  ReleaseOutcome,
  RetryDelay,
  StoreOpenOptions,
} from '../job-store.js';
import {
  activeCountsQuery,
  cancelQueuedQuery,
  cancelRequestedQuery,
  countsQuery,
  dropWorkerStateQuery,
  finishedPerMinuteQuery,
  jobStateQuery,
  listJobsQuery,
  oldestQueuedQuery,
  queuedCountsQuery,
  requestCancelQuery,
  requeueForRetryQuery,
  statusTotalsQuery,
} from '../operator-queries.js';
import { jobRecordOf, jobRecordQuery } from '../rows.js';
import type { Database } from '../schema.js';
import { claimNextJob } from './claim.js';
import { clientConfig, createPool, kyselyOn } from './connect.js';
import { translatePgError } from './errors.js';
import { listenForQueueChanges } from './queue-listener.js';
import { ensurePostgresSchema } from './schema-setup.js';
import {
  type Connections,
  completeHeldJob,
  failJob,
  type InFlightJob,
  lockAbandonedJobs,
  lockHeldJob,
  renewHeldLeases,
  requeue,
  updateHeldJob,
} from './statements.js';
import { redactedUrl } from './url.js';

/** Statements one process runs at once when the opener does not say: the CLI's, a runner's. */
const DEFAULT_CONNECTIONS = 2;

export class PostgresJobStore implements JobStore {
  private readonly closing = new AbortController();

  private readonly connections: Connections;

  private constructor(
    private readonly db: Kysely<Database>,
    pool: pg.Pool,
    private readonly databaseUrl: string,
    /** pg_database.oid of the database opened: another database under the same name is noticed. */
    private readonly databaseOid: number,
    private readonly log: Logger | undefined,
  ) {
    this.connections = { db, pool };
  }

  static async open(databaseUrl: string, options: StoreOpenOptions): Promise<PostgresJobStore> {
    const pool = createPool(databaseUrl, {
      connections: options.connections ?? DEFAULT_CONNECTIONS,
      ...(options.busyTimeoutMs === undefined ? {} : { lockTimeoutMs: options.busyTimeoutMs }),
    });
    const db = kyselyOn(pool);
    try {
      if (options.ensureSchema && (await ensurePostgresSchema(db)).createdApiTables) {
        options.log?.info(
          { database: redactedUrl(databaseUrl) },
          "created the API's tables: the database had none",
        );
      }
      const { rows } = await sql<{ oid: number; has_jobs: boolean }>`
        SELECT oid::int AS oid, to_regclass('jobs') IS NOT NULL AS has_jobs
        FROM pg_database WHERE datname = current_database()`.execute(db);
      if (rows[0]?.has_jobs !== true) {
        throw new StartupError(
          `the PostgreSQL database ${redactedUrl(databaseUrl)} has no jobs table: neither the worker nor the API service has used it yet`,
        );
      }
      return new PostgresJobStore(db, pool, databaseUrl, rows[0]?.oid ?? 0, options.log);
    } catch (error) {
      await db.destroy().catch(() => {});
      if (error instanceof StartupError) throw error;
      // A database that does not exist is not "gone" at start-up: say what the server said.
      const translated = translatePgError(error);
      const reason =
        translated instanceof Error && !(translated instanceof DatabaseLostError)
          ? translated.message
          : String((error as Error).message ?? error);
      throw new StartupError(`cannot open the PostgreSQL database ${redactedUrl(databaseUrl)}: ${reason}`, {
        cause: error,
      });
    }
  }

  async claimNextJob(request: ClaimRequest): Promise<ClaimedJob | undefined> {
    return this.guarded(() => claimNextJob(this.connections, request));
  }

  async renewLeases(leases: readonly Lease[], leaseMs: number): Promise<LeaseRenewal> {
    if (leases.length === 0) return { lost: [], ended: [] };
    return this.guarded(async () => {
      const renewed = await renewHeldLeases(this.connections, leases, Date.now() + leaseMs);
      const rest = leases.filter((lease) => !renewed.has(lease.jobId));
      const renewal: LeaseRenewal = { lost: [], ended: [] };
      if (rest.length === 0) return renewal;
      const tokens = await this.db
        .selectFrom('worker_job_state')
        .select(['job_id', 'lease_token'])
        .where(
          'job_id',
          'in',
          rest.map((lease) => lease.jobId),
        )
        .execute();
      const tokenOf = new Map(tokens.map((row) => [row.job_id, row.lease_token]));
      // The token still ours (the job itself changed) or another's: taken. No token at all: the
      // attempt was ended by whoever held it, most likely its own runner.
      for (const lease of rest) {
        (tokenOf.get(lease.jobId) == null ? renewal.ended : renewal.lost).push(lease.jobId);
      }
      return renewal;
    });
  }

  async markProcessing(lease: Lease): Promise<boolean> {
    return this.guarded(
      async () =>
        (await updateHeldJob(this.connections, lease, {
          status: 'processing',
          started_at: Date.now(),
          progress: 0,
        })) === 1,
    );
  }

  async reportProgress(lease: Lease, progress: number): Promise<boolean> {
    const bounded = boundProgress(progress);
    return this.guarded(
      async () => (await updateHeldJob(this.connections, lease, { progress: bounded })) === 1,
    );
  }

  async completeJob(lease: Lease, result: JobResult): Promise<boolean> {
    const changes = {
      status: 'completed' as const,
      progress: 100,
      output_files: JSON.stringify(result.outputFiles),
      task_output: JSON.stringify(result.taskOutput),
      error_message: null,
      completed_at: Date.now(),
    };
    return this.guarded(async () => (await completeHeldJob(this.connections, lease, changes)) === 1);
  }

  async failAttempt(lease: Lease, failure: AttemptFailure, retryDelay: RetryDelay): Promise<FailureOutcome> {
    return this.guarded(() =>
      this.db.transaction().execute(async (trx): Promise<FailureOutcome> => {
        const job = await lockHeldJob(trx, lease);
        if (!job) return { kind: 'fenced' };
        // A retry would run a job an operator cancelled: the cancel wins.
        const cancelled = failure.retryable && (await cancelWanted(trx, lease));
        return this.endAttempt(trx, job, cancelled ? CANCELLED_FAILURE : failure, retryDelay);
      }),
    );
  }

  /** Writes what decideAttemptEnd says, inside the caller's transaction. */
  private async endAttempt(
    trx: Transaction<Database>,
    job: InFlightJob,
    failure: AttemptFailure,
    retryDelay: RetryDelay,
  ): Promise<Exclude<FailureOutcome, { kind: 'fenced' }>> {
    const now = Date.now();
    const end = decideAttemptEnd(
      { retryCount: job.retry_count, maxRetries: job.max_retries },
      failure,
      retryDelay,
      now,
    );
    if (end.kind === 'retry') {
      await requeue(trx, job.job_id, {
        notBefore: end.notBefore,
        lastError: end.lastError,
        retryIncrement: 1,
      });
    } else {
      await failJob(trx, job.job_id, end.errorMessage, now);
    }
    return outcomeOf(end);
  }

  async releaseJob(lease: Lease): Promise<ReleaseOutcome> {
    return this.guarded(() =>
      this.db.transaction().execute(async (trx): Promise<ReleaseOutcome> => {
        const job = await lockHeldJob(trx, lease);
        if (!job) return 'fenced';
        if (await cancelWanted(trx, lease)) {
          await this.endAttempt(trx, job, CANCELLED_FAILURE, () => 0);
          return 'cancelled';
        }
        await requeue(trx, lease.jobId, { notBefore: null, lastError: null, retryIncrement: 0 });
        return 'requeued';
      }),
    );
  }

  async forgetLease(lease: Lease): Promise<void> {
    await this.guarded(() =>
      this.db
        .deleteFrom('worker_job_state')
        .where('job_id', '=', lease.jobId)
        .where('lease_token', '=', lease.token)
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('jobs')
                .select(sql.lit(1).as('live'))
                .whereRef('jobs.job_id', '=', 'worker_job_state.job_id')
                .where('jobs.status', 'in', ['claimed', 'processing']),
            ),
          ),
        )
        .execute(),
    );
  }

  async recoverAbandonedJobs({ orphanAgeMs, retryDelay }: RecoveryRequest): Promise<RecoveredJob[]> {
    return this.guarded(() =>
      this.db.transaction().execute(async (trx) => {
        const now = Date.now();
        const abandoned = await lockAbandonedJobs(trx, now, now - orphanAgeMs);
        const recovered: RecoveredJob[] = [];
        for (const job of abandoned) {
          const reason = recoveryReason(
            { status: job.status, workerId: job.worker_id, leaseExpiresAt: job.lease_expires_at },
            orphanAgeMs,
          );
          recovered.push({
            jobId: job.job_id,
            taskType: job.task_type,
            attempt: job.retry_count + 1,
            reason,
            outcome: await this.endAttempt(
              trx,
              job,
              job.lease_token !== null &&
                (await cancelWanted(trx, { jobId: job.job_id, token: job.lease_token }))
                ? CANCELLED_FAILURE
                : { message: reason, retryable: true },
              retryDelay,
            ),
          });
        }
        return recovered;
      }),
    );
  }

  async hasQueuedJobs(taskTypes: readonly string[]): Promise<boolean> {
    if (taskTypes.length === 0) return false;
    return this.guarded(async () => {
      const row = await this.db
        .selectFrom('media_worker_ready as r')
        .innerJoin('jobs as j', 'j.job_id', 'r.job_id')
        .select('r.job_id')
        .where('r.task_type', 'in', [...taskTypes])
        .where('j.status', '=', 'queued')
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    });
  }

  async nextRetryAt(taskTypes: readonly string[]): Promise<number | undefined> {
    if (taskTypes.length === 0) return undefined;
    return this.guarded(async () => {
      const row = await this.db
        .selectFrom('media_worker_ready')
        .select((eb) => eb.fn.min('not_before').as('at'))
        // Only backoffs still running: a retry already due is the claim's to take, and one it
        // could not take (its row locked this instant) waits for the next look, not a busy loop.
        .where('not_before', '>', Date.now())
        .where('task_type', 'in', [...taskTypes])
        .executeTakeFirst();
      return row?.at ?? undefined;
    });
  }

  async cancelRequested(leases: readonly Lease[]): Promise<Lease[]> {
    if (leases.length === 0) return [];
    const rows = await this.guarded(() => cancelRequestedQuery(this.db, leases).execute());
    return rows.map((row) => ({ jobId: row.job_id, token: row.lease_token }));
  }

  async retryJob(jobId: string): Promise<OperatorOutcome> {
    return this.guarded(() =>
      this.db.transaction().execute(async (trx): Promise<OperatorOutcome> => {
        const decision = decideRetry(jobId, await jobStateOf(trx, jobId));
        if (decision.kind === 'refuse') return { kind: 'refused', reason: decision.reason };
        // The state first: the trigger that puts the job back in the ready index reads it.
        await dropWorkerStateQuery(trx, jobId).execute();
        await requeueForRetryQuery(trx, jobId).execute();
        return { kind: 'requeued' };
      }),
    );
  }

  async cancelJob(jobId: string): Promise<OperatorOutcome> {
    return this.guarded(() =>
      this.db.transaction().execute(async (trx): Promise<OperatorOutcome> => {
        const decision = decideCancel(jobId, await jobStateOf(trx, jobId));
        switch (decision.kind) {
          case 'refuse':
            return { kind: 'refused', reason: decision.reason };
          case 'cancel-now':
            await cancelQueuedQuery(trx, jobId, Date.now()).execute();
            await dropWorkerStateQuery(trx, jobId).execute();
            return { kind: 'cancelled' };
          case 'ask-runner':
            await requestCancelQuery(trx, jobId, decision.leaseToken, Date.now()).execute();
            return { kind: 'cancel-requested', workerId: decision.workerId };
        }
      }),
    );
  }

  async listJobs(query: JobListQuery): Promise<JobSummary[]> {
    return this.guarded(() => listJobsQuery(this.db, query).execute());
  }

  async queueOverview(finishedSince: number): Promise<QueueOverview> {
    return this.guarded(() =>
      this.db
        .transaction()
        .setIsolationLevel('repeatable read')
        .setAccessMode('read only')
        .execute(async (trx) => ({
          totals: await statusTotalsQuery(trx).execute(),
          active: await activeCountsQuery(trx).execute(),
          finished: await finishedPerMinuteQuery(trx, finishedSince).execute(),
        })),
    );
  }

  /**
   * The server's current snapshot (the next transaction id and those still in progress): it changes
   * whenever a transaction anywhere on the server takes an id or ends, so it can only over-report.
   */
  async changeMarker(): Promise<string> {
    const { rows } = await this.guarded(() =>
      sql<{ marker: string }>`SELECT pg_current_snapshot()::text AS marker`.execute(this.db),
    );
    return rows[0]?.marker ?? '';
  }

  async queuedCounts(): Promise<Record<string, number>> {
    const rows = await this.guarded(() => queuedCountsQuery(this.db).execute());
    return Object.fromEntries(rows.map((row) => [row.task_type, row.jobs]));
  }

  async jobStats(): Promise<JobStats> {
    return this.guarded(async () => ({
      counts: await countsQuery(this.db).execute(),
      oldestQueued: await oldestQueuedQuery(this.db).execute(),
    }));
  }

  async insertJob(job: NewJob): Promise<void> {
    const now = Date.now();
    await this.guarded(() =>
      this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('jobs')
          .values({
            job_id: job.jobId,
            task_type: job.taskType,
            input_file_source: job.inputFileSource,
            input_file_path: job.inputFiles[0]?.path ?? '',
            input_files: JSON.stringify(job.inputFiles),
            output_files: '[]',
            status: 'queued',
            progress: 0,
            created_at: now,
            started_at: null,
            completed_at: null,
            task_output: null,
            error_message: null,
            retry_count: 0,
            max_retries: job.maxRetries,
            created_by: job.createdBy,
          })
          .execute();
        await trx
          .insertInto('queue_entries')
          .values({ job_id: job.jobId, priority: job.priority, enqueued_at: now })
          .execute();
      }),
    );
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const row = await this.guarded(() => jobRecordQuery(this.db, jobId).executeTakeFirst());
    return row && jobRecordOf(row);
  }

  /** A connection opened now: can it reach the server, and may it write the jobs? */
  async probeWritable(): Promise<void> {
    const client = new pg.Client(clientConfig(this.databaseUrl));
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ read_only: string; may_update: boolean }>(
        `SELECT current_setting('transaction_read_only') AS read_only,
                has_table_privilege('jobs', 'UPDATE') AND has_table_privilege('worker_job_state', 'UPDATE') AS may_update`,
      );
      const probe = rows[0];
      if (probe?.read_only === 'on')
        throw new WorkerFaultError('database cannot be written: the server is read-only');
      if (probe?.may_update === false) {
        throw new WorkerFaultError(
          'database cannot be written: no UPDATE privilege on jobs or worker_job_state',
        );
      }
    } catch (error) {
      throw translateOrWrap(error);
    } finally {
      await client.end().catch(() => {});
    }
  }

  async checkIdentity(): Promise<void> {
    let oid: number | undefined;
    try {
      const { rows } = await sql<{ oid: number }>`
        SELECT oid::int AS oid FROM pg_database WHERE datname = current_database()`.execute(this.db);
      oid = rows[0]?.oid;
    } catch (error) {
      const translated = translatePgError(error);
      if (translated instanceof DatabaseLostError) throw translated;
      return; // out of reach is not gone: the claim loop's fault handling covers it
    }
    if (oid !== this.databaseOid) {
      throw new DatabaseLostError(
        `the database ${redactedUrl(this.databaseUrl)} was dropped and created again under the running worker`,
      );
    }
  }

  watchQueue(onChange: () => void, signal: AbortSignal): boolean {
    if (signal.aborted) return false;
    const until = AbortSignal.any([signal, this.closing.signal]);
    listenForQueueChanges(this.databaseUrl, onChange, until, this.log);
    return true;
  }

  async close(): Promise<void> {
    this.closing.abort();
    await this.db.destroy();
  }

  private async guarded<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      throw translatePgError(error);
    }
  }
}

/** Whether an operator asked to cancel this attempt. */
async function cancelWanted(trx: Transaction<Database>, lease: Lease): Promise<boolean> {
  return (await cancelRequestedQuery(trx, [lease]).execute()).length > 0;
}

/** The job's status and lease, its row locked so that the decision holds until the write. */
async function jobStateOf(trx: Transaction<Database>, jobId: string): Promise<JobState | undefined> {
  const row = await jobStateQuery(trx, jobId).forUpdate('j').executeTakeFirst();
  return row && { status: row.status, leaseToken: row.lease_token, workerId: row.worker_id };
}

function translateOrWrap(error: unknown): unknown {
  const translated = translatePgError(error);
  if (translated instanceof WorkerFaultError || translated instanceof DatabaseLostError) return translated;
  return new WorkerFaultError(`database cannot be used: ${(error as Error).message}`, { cause: error });
}
