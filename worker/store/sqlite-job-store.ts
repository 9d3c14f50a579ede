/**
 * The job store on media_store.db. Every statement is built with Kysely against the one Database
 * interface and prepared once; each multi-statement step runs in a BEGIN IMMEDIATE transaction so
 * that a read followed by a write never meets SQLITE_BUSY halfway (a deferred transaction would).
 */
import { randomUUID } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import {
  DummyDriver,
  type ExpressionBuilder,
  Kysely,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  sql,
} from 'kysely';
import { describeFinalFailure, lastErrorOf } from '../jobs/final-error.js';
import type {
  AttemptFailure,
  ClaimedJob,
  ClaimRequest,
  FailureOutcome,
  JobRecord,
  JobResult,
  JobStore,
  Lease,
  NewJob,
  RecoveredJob,
  RecoveryRequest,
  RetryDelay,
} from './job-store.js';
import { type OpenSqliteOptions, openSqlite, sqlitePathFromUrl } from './open-sqlite.js';
import { type PreparedStatement, param, prepareCompiled } from './prepared-statement.js';
import { type Database, DEFAULT_PRIORITY } from './schema.js';
import { translateSqliteError } from './sqlite-errors.js';
import { checkIdentity, type DatabaseFileIdentity, probeWritable } from './sqlite-file.js';

const queryBuilder = new Kysely<Database>({
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

interface InFlightJob {
  job_id: string;
  task_type: string;
  retry_count: number;
  max_retries: number;
}

function buildStatements(sqlite: BetterSqlite3.Database) {
  const prepare = <Row, Args extends Record<string, unknown>>(query: {
    compile(): import('kysely').CompiledQuery<Row>;
  }) => prepareCompiled<Row, Args>(sqlite, query.compile());
  const db = queryBuilder;
  return {
    takeJob: prepare<
      { job_id: string; task_type: string; input_files: string; retry_count: number; max_retries: number },
      { id: number }
    >(
      db
        .updateTable('jobs')
        .set({ status: 'claimed' })
        .where('id', '=', param('id'))
        .where('status', '=', sql.lit('queued'))
        .returning(['job_id', 'task_type', 'input_files', 'retry_count', 'max_retries']),
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
      InFlightJob & { status: string; worker_id: string | null; lease_expires_at: number | null },
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
    jobById: prepare<
      Omit<JobRecord, 'worker' | 'input_files' | 'output_files' | 'task_output'> & {
        input_files: string;
        output_files: string;
        task_output: string | null;
        worker_id: string | null;
        lease_expires_at: number | null;
        not_before: number | null;
        last_error: string | null;
        has_state: string | null;
      },
      { jobId: string }
    >(
      db
        .selectFrom('jobs as j')
        .leftJoin('queue_entries as q', 'q.job_id', 'j.job_id')
        .leftJoin('worker_job_state as s', 's.job_id', 'j.job_id')
        .selectAll('j')
        .select(['q.priority', 's.worker_id', 's.lease_expires_at', 's.not_before', 's.last_error'])
        .select(sql<string | null>`s.job_id`.as('has_state'))
        .where('j.job_id', '=', param('jobId')),
    ),
  };
}

type Statements = ReturnType<typeof buildStatements>;

interface ClaimStatements {
  /** Only the id: the ORDER BY then reads index pages alone; the row comes from the UPDATE. */
  best: PreparedStatement<{ now: number }, { id: number }>;
  anyQueued: PreparedStatement<Record<string, never>, { queued: number }>;
}

function buildClaimStatements(sqlite: BetterSqlite3.Database, taskTypes: readonly string[]): ClaimStatements {
  // Task types are fixed for a daemon's life, so they are literals here and the partial index on
  // queued jobs applies; the ORDER BY is the queue's contract: priority, then FIFO.
  const types = taskTypes.map((type) => sql.lit(type));
  const best = queryBuilder
    .selectFrom('jobs as j')
    .leftJoin('queue_entries as q', 'q.job_id', 'j.job_id')
    .leftJoin('worker_job_state as s', 's.job_id', 'j.job_id')
    .select('j.id')
    .where('j.status', '=', sql.lit('queued'))
    .where('j.task_type', 'in', types)
    .where((eb) => eb.or([eb('s.not_before', 'is', null), eb('s.not_before', '<=', param<number>('now'))]))
    .orderBy(sql`coalesce(q.priority, ${sql.lit(DEFAULT_PRIORITY)})`, 'desc')
    .orderBy('j.created_at')
    .orderBy('j.id')
    .limit(sql.lit(1));
  const anyQueued = queryBuilder
    .selectFrom('jobs')
    .select(sql.lit(1).as('queued'))
    .where('status', '=', sql.lit('queued'))
    .where('task_type', 'in', types)
    .limit(sql.lit(1));
  return {
    best: prepareCompiled(sqlite, best.compile()),
    anyQueued: prepareCompiled(sqlite, anyQueued.compile()),
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

export class SqliteJobStore implements JobStore {
  private readonly statements: Statements;
  private readonly claimStatements = new Map<string, ClaimStatements>();

  private constructor(
    private readonly sqlite: BetterSqlite3.Database,
    private readonly file: DatabaseFileIdentity | undefined,
    private readonly options: OpenSqliteOptions,
  ) {
    this.statements = buildStatements(sqlite);
  }

  /** `ensureSchema` creates missing tables and refuses a `jobs` table of another shape. */
  static open(databaseUrl: string, options: OpenSqliteOptions): SqliteJobStore {
    const { sqlite, file } = openSqlite(sqlitePathFromUrl(databaseUrl), options);
    return new SqliteJobStore(sqlite, file, options);
  }

  async claimNextJob({ workerId, taskTypes, leaseMs }: ClaimRequest): Promise<ClaimedJob | undefined> {
    return this.guarded(() => this.claimNextJobSync(workerId, taskTypes, leaseMs));
  }

  private claimNextJobSync(
    workerId: string,
    taskTypes: readonly string[],
    leaseMs: number,
  ): ClaimedJob | undefined {
    if (taskTypes.length === 0) return undefined;
    const claim = this.claimStatementsFor(taskTypes);
    return this.sqlite
      .transaction((): ClaimedJob | undefined => {
        const now = Date.now();
        const best = claim.best.get({ now });
        if (!best) return undefined;
        const row = this.statements.takeJob.get({ id: best.id });
        if (!row) return undefined;
        const token = randomUUID();
        this.statements.grantLease.run({ jobId: row.job_id, workerId, token, expiresAt: now + leaseMs });
        return {
          id: best.id,
          jobId: row.job_id,
          taskType: row.task_type,
          inputFilesJson: row.input_files,
          retryCount: row.retry_count,
          maxRetries: row.max_retries,
          attempt: row.retry_count + 1,
          lease: { jobId: row.job_id, token },
        };
      })
      .immediate();
  }

  private claimStatementsFor(taskTypes: readonly string[]): ClaimStatements {
    const key = JSON.stringify(taskTypes);
    let statements = this.claimStatements.get(key);
    if (!statements) {
      statements = buildClaimStatements(this.sqlite, taskTypes);
      this.claimStatements.set(key, statements);
    }
    return statements;
  }

  async renewLeases(leases: readonly Lease[], leaseMs: number): Promise<string[]> {
    if (leases.length === 0) return [];
    return this.guarded(() =>
      this.sqlite
        .transaction(() => {
          const expiresAt = Date.now() + leaseMs;
          const lost: string[] = [];
          for (const lease of leases) {
            const { changes } = this.statements.renewLease.run({
              jobId: lease.jobId,
              token: lease.token,
              expiresAt,
            });
            if (changes === 0) lost.push(lease.jobId);
          }
          return lost;
        })
        .immediate(),
    );
  }

  async markProcessing(lease: Lease): Promise<boolean> {
    return this.guarded(
      () =>
        this.statements.markProcessing.run({ jobId: lease.jobId, token: lease.token, now: Date.now() })
          .changes === 1,
    );
  }

  async reportProgress(lease: Lease, progress: number): Promise<boolean> {
    const bounded = Math.max(0, Math.min(99, Math.floor(progress)));
    return this.guarded(
      () =>
        this.statements.reportProgress.run({ jobId: lease.jobId, token: lease.token, progress: bounded })
          .changes === 1,
    );
  }

  async completeJob(lease: Lease, result: JobResult): Promise<boolean> {
    const outputFiles = JSON.stringify(result.outputFiles);
    const taskOutput = JSON.stringify(result.taskOutput);
    return this.guarded(() =>
      this.sqlite
        .transaction(() => {
          const { changes } = this.statements.completeJob.run({
            jobId: lease.jobId,
            token: lease.token,
            outputFiles,
            taskOutput,
            now: Date.now(),
          });
          if (changes === 0) return false;
          this.statements.dropState.run({ jobId: lease.jobId });
          return true;
        })
        .immediate(),
    );
  }

  async failAttempt(lease: Lease, failure: AttemptFailure, retryDelay: RetryDelay): Promise<FailureOutcome> {
    return this.guarded(() =>
      this.sqlite
        .transaction((): FailureOutcome => {
          const job = this.statements.heldJob.get({ jobId: lease.jobId, token: lease.token });
          if (!job) return { kind: 'fenced' };
          return this.endAttempt(job, failure, retryDelay);
        })
        .immediate(),
    );
  }

  /** Requeue with backoff while the budget lasts, else `error`. Runs inside the caller's transaction. */
  private endAttempt(
    job: InFlightJob,
    failure: AttemptFailure,
    retryDelay: RetryDelay,
  ): Exclude<FailureOutcome, { kind: 'fenced' }> {
    const now = Date.now();
    if (failure.retryable && job.retry_count < job.max_retries) {
      const retryNumber = job.retry_count + 1;
      const delayMs = Math.max(0, Math.round(retryDelay(retryNumber)));
      this.statements.requeue.run({ jobId: job.job_id, retryIncrement: 1 });
      this.statements.scheduleRetry.run({
        jobId: job.job_id,
        notBefore: now + delayMs,
        lastError: lastErrorOf(failure),
      });
      return { kind: 'retrying', nextAttempt: retryNumber + 1, delayMs };
    }
    const errorMessage = describeFinalFailure(failure, job.retry_count + 1);
    this.statements.failJob.run({ jobId: job.job_id, errorMessage, now });
    this.statements.dropState.run({ jobId: job.job_id });
    return { kind: 'failed', errorMessage };
  }

  async releaseJob(lease: Lease): Promise<boolean> {
    return this.guarded(() =>
      this.sqlite
        .transaction(() => {
          const job = this.statements.heldJob.get({ jobId: lease.jobId, token: lease.token });
          if (!job) return false;
          this.statements.requeue.run({ jobId: lease.jobId, retryIncrement: 0 });
          this.statements.scheduleRetry.run({ jobId: lease.jobId, notBefore: null, lastError: null });
          return true;
        })
        .immediate(),
    );
  }

  async forgetLease(lease: Lease): Promise<void> {
    await this.guarded(() => this.statements.forgetLease.run({ jobId: lease.jobId, token: lease.token }));
  }

  async recoverAbandonedJobs({ orphanAgeMs, retryDelay }: RecoveryRequest): Promise<RecoveredJob[]> {
    return this.guarded(() =>
      this.sqlite
        .transaction(() => {
          const now = Date.now();
          const abandoned = this.statements.abandonedJobs.all({ now, orphanBefore: now - orphanAgeMs });
          return abandoned.map((job): RecoveredJob => {
            const reason =
              job.lease_expires_at !== null
                ? `worker ${job.worker_id ?? '?'} stopped renewing its lease (it died or hung)`
                : `left in '${job.status}' with no lease for over ${Math.round(orphanAgeMs / 1000)} s (its worker is gone)`;
            const outcome = this.endAttempt(job, { message: reason, retryable: true }, retryDelay);
            return {
              jobId: job.job_id,
              taskType: job.task_type,
              attempt: job.retry_count + 1,
              reason,
              outcome,
            };
          });
        })
        .immediate(),
    );
  }

  async hasQueuedJobs(taskTypes: readonly string[]): Promise<boolean> {
    if (taskTypes.length === 0) return false;
    return this.guarded(() => this.claimStatementsFor(taskTypes).anyQueued.get({}) !== undefined);
  }

  async insertJob(job: NewJob): Promise<void> {
    const now = Date.now();
    this.sqlite
      .transaction(() => {
        this.statements.insertJob.run({
          jobId: job.jobId,
          taskType: job.taskType,
          source: job.inputFileSource,
          inputFilePath: job.inputFiles[0]?.path ?? '',
          inputFiles: JSON.stringify(job.inputFiles),
          now,
          maxRetries: job.maxRetries,
          createdBy: job.createdBy,
        });
        this.statements.insertQueueEntry.run({ jobId: job.jobId, priority: job.priority, now });
      })
      .immediate();
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const row = this.statements.jobById.get({ jobId });
    if (!row) return undefined;
    const { worker_id, lease_expires_at, not_before, last_error, has_state, ...job } = row;
    return {
      ...job,
      input_files: parseJson(row.input_files),
      output_files: parseJson(row.output_files),
      task_output: parseJson(row.task_output),
      worker: has_state === null ? null : { worker_id, lease_expires_at, not_before, last_error },
    };
  }

  async probeWritable(): Promise<void> {
    if (!this.file) return;
    const options = { ...this.options, ensureSchema: false, mustExist: true, busyTimeoutMs: 0 };
    probeWritable(this.file, () => openSqlite(this.file?.path as string, options).sqlite);
  }

  async checkIdentity(): Promise<void> {
    if (this.file) checkIdentity(this.file);
  }

  async close(): Promise<void> {
    this.sqlite.close();
  }

  /** Runs a synchronous step and gives SQLite's failures the worker's meaning (sqlite-errors.ts). */
  private guarded<T>(step: () => T): Promise<T> {
    try {
      return Promise.resolve(step());
    } catch (error) {
      return Promise.reject(translateSqliteError(error));
    }
  }
}
