/**
 * The job store on media_store.db. The statements live in statements.ts, the claim in claim.ts and
 * the ready index it reads in ready-index.ts; what a failure leads to is decided outside any store
 * (worker/jobs/attempt-lifecycle.ts) and only written here. Each multi-statement step runs in a
 * BEGIN IMMEDIATE transaction so that a read followed by a write never meets SQLITE_BUSY halfway
 * (a deferred transaction would).
 */
import fs from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { CompiledQuery } from 'kysely';
import {
  type AttemptEnd,
  boundProgress,
  decideAttemptEnd,
  outcomeOf,
  recoveryReason,
} from '../../jobs/attempt-lifecycle.js';
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
import { jobRecordOf } from '../rows.js';
import { watchDatabaseChanges } from './change-watch.js';
import { SqliteClaimer } from './claim.js';
import { translateSqliteError } from './errors.js';
import { checkIdentity, type DatabaseFileIdentity, probeWritable } from './file.js';
import { type OpenSqliteOptions, openSqlite, sqlitePathFromUrl } from './open.js';
import { prepareCompiled } from './prepared-statement.js';
import { ReadyIndex } from './ready-index.js';
import { buildStatements, type InFlightJob, queryBuilder, type Statements } from './statements.js';

const NO_RETRY: RetryDelay = () => 0;

export class SqliteJobStore implements JobStore {
  private readonly statements: Statements;
  /** Made on the first claim: runners, which never claim, do not prepare its statements. */
  private claimerOnceUsed: SqliteClaimer | undefined;
  private readonly closing = new AbortController();

  private constructor(
    private readonly sqlite: BetterSqlite3.Database,
    private readonly file: DatabaseFileIdentity | undefined,
    private readonly options: OpenSqliteOptions,
  ) {
    this.statements = buildStatements(sqlite);
  }

  private get claimer(): SqliteClaimer {
    this.claimerOnceUsed ??= new SqliteClaimer(this.sqlite, this.statements, new ReadyIndex(this.sqlite));
    return this.claimerOnceUsed;
  }

  /** `ensureSchema` creates missing tables and refuses a `jobs` table of another shape. */
  static open(databaseUrl: string, options: OpenSqliteOptions): SqliteJobStore {
    const databasePath = sqlitePathFromUrl(databaseUrl);
    const existed = databasePath === ':memory:' || fs.existsSync(databasePath);
    const { sqlite, file } = openSqlite(databasePath, options);
    if (!existed) {
      options.log?.info(
        { database: path.resolve(databasePath) },
        'created the database: there was none at this path',
      );
    }
    return new SqliteJobStore(sqlite, file, options);
  }

  async claimNextJob(request: ClaimRequest): Promise<ClaimedJob | undefined> {
    return this.guarded(() => this.claimer.claim(request));
  }

  async renewLeases(leases: readonly Lease[], leaseMs: number): Promise<LeaseRenewal> {
    if (leases.length === 0) return { lost: [], ended: [] };
    return this.guarded(() =>
      this.sqlite
        .transaction(() => {
          const expiresAt = Date.now() + leaseMs;
          const renewal: LeaseRenewal = { lost: [], ended: [] };
          for (const lease of leases) {
            const { changes } = this.statements.renewLease.run({
              jobId: lease.jobId,
              token: lease.token,
              expiresAt,
            });
            if (changes === 1) continue;
            // The token still ours (the job itself changed) or another's: taken. No token at all:
            // the attempt was ended by whoever held it, most likely its own runner.
            const token = this.statements.leaseTokenOf.get({ jobId: lease.jobId })?.lease_token ?? null;
            (token === null ? renewal.ended : renewal.lost).push(lease.jobId);
          }
          return renewal;
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
    const bounded = boundProgress(progress);
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
          // A retry would run a job an operator cancelled: the cancel wins.
          const cancelled = failure.retryable && this.cancelWanted(lease);
          return this.endAttempt(job, cancelled ? CANCELLED_FAILURE : failure, retryDelay);
        })
        .immediate(),
    );
  }

  /** Writes what decideAttemptEnd says. Runs inside the caller's transaction. */
  private endAttempt(
    job: InFlightJob,
    failure: AttemptFailure,
    retryDelay: RetryDelay,
  ): Exclude<FailureOutcome, { kind: 'fenced' }> {
    const now = Date.now();
    const end: AttemptEnd = decideAttemptEnd(
      { retryCount: job.retry_count, maxRetries: job.max_retries },
      failure,
      retryDelay,
      now,
    );
    if (end.kind === 'retry') {
      // The schedule first: the trigger that puts the job back in the ready index copies it.
      this.statements.scheduleRetry.run({
        jobId: job.job_id,
        notBefore: end.notBefore,
        lastError: end.lastError,
      });
      this.statements.requeue.run({ jobId: job.job_id, retryIncrement: 1 });
    } else {
      this.statements.failJob.run({ jobId: job.job_id, errorMessage: end.errorMessage, now });
      this.statements.dropState.run({ jobId: job.job_id });
    }
    return outcomeOf(end);
  }

  async releaseJob(lease: Lease): Promise<ReleaseOutcome> {
    return this.guarded(() =>
      this.sqlite
        .transaction((): ReleaseOutcome => {
          const job = this.statements.heldJob.get({ jobId: lease.jobId, token: lease.token });
          if (!job) return 'fenced';
          if (this.cancelWanted(lease)) {
            this.endAttempt(job, CANCELLED_FAILURE, NO_RETRY);
            return 'cancelled';
          }
          this.statements.scheduleRetry.run({ jobId: lease.jobId, notBefore: null, lastError: null });
          this.statements.requeue.run({ jobId: lease.jobId, retryIncrement: 0 });
          return 'requeued';
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
            const reason = recoveryReason(
              { status: job.status, workerId: job.worker_id, leaseExpiresAt: job.lease_expires_at },
              orphanAgeMs,
            );
            return {
              jobId: job.job_id,
              taskType: job.task_type,
              attempt: job.retry_count + 1,
              reason,
              outcome: this.endAttempt(
                job,
                job.lease_token !== null && this.cancelWanted({ jobId: job.job_id, token: job.lease_token })
                  ? CANCELLED_FAILURE
                  : { message: reason, retryable: true },
                retryDelay,
              ),
            };
          });
        })
        .immediate(),
    );
  }

  async hasQueuedJobs(taskTypes: readonly string[]): Promise<boolean> {
    return this.guarded(() => this.claimer.hasQueuedJobs(taskTypes));
  }

  async nextRetryAt(taskTypes: readonly string[]): Promise<number | undefined> {
    return this.guarded(() => this.claimer.nextRetryAt(taskTypes));
  }

  async cancelRequested(leases: readonly Lease[]): Promise<Lease[]> {
    if (leases.length === 0) return [];
    return this.guarded(() =>
      this.runOnce(cancelRequestedQuery(queryBuilder, leases)).map((row) => ({
        jobId: row.job_id,
        token: row.lease_token,
      })),
    );
  }

  async retryJob(jobId: string): Promise<OperatorOutcome> {
    return this.guarded(() =>
      this.sqlite
        .transaction((): OperatorOutcome => {
          const decision = decideRetry(jobId, this.jobState(jobId));
          if (decision.kind === 'refuse') return { kind: 'refused', reason: decision.reason };
          // The state first: the trigger that puts the job back in the ready index reads it.
          this.runOnce(dropWorkerStateQuery(queryBuilder, jobId));
          this.runOnce(requeueForRetryQuery(queryBuilder, jobId));
          return { kind: 'requeued' };
        })
        .immediate(),
    );
  }

  async cancelJob(jobId: string): Promise<OperatorOutcome> {
    return this.guarded(() =>
      this.sqlite
        .transaction((): OperatorOutcome => {
          const decision = decideCancel(jobId, this.jobState(jobId));
          switch (decision.kind) {
            case 'refuse':
              return { kind: 'refused', reason: decision.reason };
            case 'cancel-now':
              this.runOnce(cancelQueuedQuery(queryBuilder, jobId, Date.now()));
              this.runOnce(dropWorkerStateQuery(queryBuilder, jobId));
              return { kind: 'cancelled' };
            case 'ask-runner':
              this.runOnce(requestCancelQuery(queryBuilder, jobId, decision.leaseToken, Date.now()));
              return { kind: 'cancel-requested', workerId: decision.workerId };
          }
        })
        .immediate(),
    );
  }

  async listJobs(query: JobListQuery): Promise<JobSummary[]> {
    return this.guarded(() => this.runOnce(listJobsQuery(queryBuilder, query)));
  }

  async queueOverview(finishedSince: number): Promise<QueueOverview> {
    return this.guarded(() =>
      this.sqlite
        .transaction(() => ({
          totals: this.runOnce(statusTotalsQuery(queryBuilder)),
          active: this.runOnce(activeCountsQuery(queryBuilder)),
          finished: this.runOnce(finishedPerMinuteQuery(queryBuilder, finishedSince)),
        }))
        .deferred(),
    );
  }

  /** SQLite's data_version: it changes when another connection commits. */
  async changeMarker(): Promise<string> {
    return this.guarded(() => String(this.sqlite.pragma('data_version', { simple: true })));
  }

  async queuedCounts(): Promise<Record<string, number>> {
    return this.guarded(() =>
      Object.fromEntries(
        this.runOnce(queuedCountsQuery(queryBuilder)).map((row) => [row.task_type, row.jobs]),
      ),
    );
  }

  async jobStats(): Promise<JobStats> {
    return this.guarded(() => ({
      counts: this.runOnce(countsQuery(queryBuilder)),
      oldestQueued: this.runOnce(oldestQueuedQuery(queryBuilder)),
    }));
  }

  /** Whether an operator asked to cancel this attempt (inside the caller's transaction). */
  private cancelWanted(lease: Lease): boolean {
    return this.runOnce(cancelRequestedQuery(queryBuilder, [lease])).length > 0;
  }

  private jobState(jobId: string): JobState | undefined {
    const [row] = this.runOnce(jobStateQuery(queryBuilder, jobId));
    return row && { status: row.status, leaseToken: row.lease_token, workerId: row.worker_id };
  }

  /** A statement of the operator's commands: compiled and prepared for this one run. */
  private runOnce<Row>(query: { compile(): CompiledQuery<Row> }): Row[] {
    const statement = prepareCompiled<Row>(this.sqlite, query.compile());
    if (statement.reader) return statement.all({});
    statement.run({});
    return [];
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
    return row && jobRecordOf(row);
  }

  async probeWritable(): Promise<void> {
    if (!this.file) return;
    const options = { ...this.options, ensureSchema: false, mustExist: true, busyTimeoutMs: 0 };
    probeWritable(this.file, () => openSqlite(this.file?.path as string, options).sqlite);
  }

  async checkIdentity(): Promise<void> {
    if (this.file) checkIdentity(this.file);
  }

  watchQueue(onChange: () => void, signal: AbortSignal): boolean {
    if (!this.file || signal.aborted) return false;
    const until = AbortSignal.any([signal, this.closing.signal]);
    return watchDatabaseChanges(this.sqlite, this.file.path, onChange, until);
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.sqlite.close();
  }

  /** Runs a synchronous step and gives SQLite's failures the worker's meaning (sqlite-errors.ts). */
  private guarded<T>(step: () => T | Promise<T>): Promise<T> {
    try {
      return Promise.resolve(step()).catch((error: unknown) => Promise.reject(translateSqliteError(error)));
    } catch (error) {
      return Promise.reject(translateSqliteError(error));
    }
  }
}
