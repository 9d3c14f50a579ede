/**
 * One claimed job from the moment a slot takes it until its outcome is in the database: checks the
 * row, gets a runner, enforces the timeout, keeps the runner told of lease renewals, and records
 * what the runner could not (it crashed, hung or was stopped). Outcomes the runner reached itself
 * it has already written under its lease.
 */

import type { Logger } from 'pino';
import type { JobEventBody } from '../broadcast/broadcaster.js';
import {
  BadInputError,
  JobCancelledError,
  type JobError,
  JobTimeoutError,
  RunnerCrashedError,
  TransientJobError,
  toJobError,
  WorkerFaultError,
} from '../errors.js';
import type { FinishOutcome } from '../http/worker-metrics.js';
import { jobFolderProblem, jobTimeoutOverride, parseInputFilesColumn } from '../jobs/job-row.js';
import { CANCELLED_MESSAGE } from '../jobs/operator-requests.js';
import { boundedChild } from '../logging/logger.js';
import type { RunnerOutcome } from '../runner/protocol.js';
import { describeExit, type RunnerProcess } from '../runner/runner-process.js';
import type { ClaimedJob, JobStore, ReleaseOutcome } from '../store/job-store.js';
import type { InputFile } from '../store/schema.js';
import { removeCancelledOutput } from './cancelled-output.js';
import type { DaemonDeps } from './daemon.js';
import { FREE_FAULTS_PER_JOB, type WorkerFaults } from './worker-faults.js';

export type StopReason = 'timeout' | 'lease-lost' | 'shutdown' | 'cancelled';

/** What a running job uses: the daemon's own dependencies, its fault tracker and the storage root. */
export interface RunningJobDeps extends DaemonDeps {
  /** Where the job's output folder is, removed when the job is cancelled. */
  storageRoot: string;
  faults: WorkerFaults;
}

export interface JobTimeouts {
  /** The task's timeout when the job asks for none: the operator's, else the module's. */
  defaultS: number;
  /** The most a job's own `timeout_s` may ask for (WORKER_MAX_TIMEOUT). */
  maxJobS: number;
}

export class RunningJob {
  readonly done: Promise<void>;
  private runner: RunnerProcess | undefined;
  private stopReason: StopReason | undefined;
  /** When the lease in the database runs out (performance.now() clock), as far as the daemon knows. */
  private leaseValidUntil: number;
  /** performance.now() when the claim began. */
  private readonly claimedAt: number;
  /** When the attempt ended, for a job whose outcome is reported later (a held release). */
  private endedAt: number | undefined;
  /** The runner this job had, when it was discarded: a cancelled job's output waits for its exit. */
  private discardedRunner: RunnerProcess | undefined;
  private readonly log: Logger;
  /**
   * Its runner is not given another job: it met a worker-side fault (its database connection may
   * be read-only for good), or it gave the job up and is killing itself.
   */
  private discardRunner = false;
  /** Aborted by stop(): a job still waiting for a runner stops waiting. */
  private readonly stopped = new AbortController();

  constructor(
    readonly job: ClaimedJob,
    private readonly timeouts: JobTimeouts,
    leaseGrantedAt: number,
    private readonly leaseMs: number,
    private readonly deps: RunningJobDeps,
  ) {
    this.leaseValidUntil = leaseGrantedAt + leaseMs;
    this.claimedAt = leaseGrantedAt;
    this.log = boundedChild(deps.log, { job_id: job.jobId, task_type: job.taskType, attempt: job.attempt });
    this.done = this.execute().catch((error: unknown) => {
      // A bug, or a store failure no path above expected: the lease will expire and any daemon
      // takes the job back, so log and let the slot go.
      this.log.error({ err: error }, 'could not record the outcome of the job; its lease will expire');
    });
  }

  /** Kills the runner; what is recorded depends on the reason (see `recordExit`). */
  stop(reason: StopReason): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.stopped.abort(new Error(`job stopped: ${reason}`));
    this.log.info({ reason, runner_pid: this.runner?.pid }, 'stopping the job');
    if (this.runner) void this.runner.kill();
  }

  /** The daemon renewed the lease at `renewedAt` (performance.now()): pass it on to the runner. */
  leaseRenewed(renewedAt: number): void {
    this.leaseValidUntil = renewedAt + this.leaseMs;
    this.runner?.renewLease(this.job.jobId, this.leaseValidUntil - performance.now());
  }

  private async execute(): Promise<void> {
    const { job, deps } = this;
    let inputFiles: InputFile[];
    let timeoutS: number;
    try {
      ({ inputFiles, timeoutS } = this.readRow());
    } catch (error) {
      return this.recordFailure(toJobError(error));
    }
    this.log.info({ timeout_s: timeoutS }, 'job claimed');
    let runner: RunnerProcess;
    try {
      runner = await deps.pool.acquire(job.taskType, this.stopped.signal);
    } catch (error) {
      if (this.stopReason) return this.recordExit('stopped before it started', timeoutS);
      return this.recordWorkerFault(`no runner: ${(error as Error).message}`);
    }
    if (this.stopReason) {
      // Stopped while waiting for a runner: the job never started, so record the stop and give
      // the runner back untouched.
      deps.pool.release(job.taskType, runner);
      return this.recordExit('stopped before it started', timeoutS);
    }
    this.runner = runner;
    const timer = setTimeout(() => this.stop('timeout'), timeoutS * 1000);
    try {
      const result = await runner.run(
        {
          jobId: job.jobId,
          taskType: job.taskType,
          attempt: job.attempt,
          inputFiles,
          lease: job.lease,
          leaseValidForMs: Math.max(0, this.leaseValidUntil - performance.now()),
        },
        {
          onStarted: () => this.publish({ type: 'processing', progress: 0 }),
          onProgress: (progress) => this.publish({ type: 'processing', progress }),
        },
      );
      if (result.kind === 'finished') await this.reportOutcome(result.outcome, result.message);
      else if (result.kind === 'not-sent') {
        await this.recordFailure(
          new BadInputError(`the job could not be handed to its runner: ${result.reason}`),
        );
      } else await this.recordExit(describeExit(result.exit), timeoutS);
    } finally {
      clearTimeout(timer);
      // Forget the runner before it goes back to the pool: a late stop() (a renewal that raced
      // with completion) must not kill the runner once it serves another job.
      this.runner = undefined;
      if (this.discardRunner) this.discardedRunner = runner;
      deps.pool.release(job.taskType, runner, { discard: this.discardRunner });
    }
  }

  /** The row's own data, checked before anything is built from it; a bad row fails as a JobError. */
  private readRow(): { inputFiles: InputFile[]; timeoutS: number } {
    const folderProblem = jobFolderProblem(this.job.jobId);
    if (folderProblem) throw new BadInputError(folderProblem);
    const inputFiles = parseInputFilesColumn(this.job.inputFilesJson);
    const asked = jobTimeoutOverride(inputFiles);
    if (asked === undefined) return { inputFiles, timeoutS: this.timeouts.defaultS };
    if (asked > this.timeouts.maxJobS) {
      this.log.info(
        { asked_timeout_s: asked, max_timeout_s: this.timeouts.maxJobS },
        "the job's timeout_s is over the worker's ceiling (WORKER_MAX_TIMEOUT); it runs under the ceiling",
      );
    }
    return { inputFiles, timeoutS: Math.min(asked, this.timeouts.maxJobS) };
  }

  private async recordExit(exitDescription: string, timeoutS: number): Promise<void> {
    switch (this.stopReason) {
      case 'timeout':
        return this.recordFailure(new JobTimeoutError(timeoutS));
      case 'lease-lost':
        return this.lostLease('its runner was stopped and nothing written');
      case 'cancelled':
        return this.recordFailure(new JobCancelledError());
      case 'shutdown': {
        const released = await this.releaseOrHold();
        if (released === 'requeued') {
          this.log.info('job requeued at shutdown without spending a retry');
        } else if (released === 'held') {
          this.log.warn(
            'job not requeued at shutdown (the database is at fault): tried once more before exit, else its lease returns it',
          );
        }
        return;
      }
      default:
        this.deps.metrics.runnerCrashed(this.job.taskType);
        return this.recordFailure(new RunnerCrashedError(`runner crashed: ${exitDescription}`));
    }
  }

  private async recordFailure(failure: JobError): Promise<void> {
    let outcome: Awaited<ReturnType<JobStore['failAttempt']>>;
    try {
      outcome = await this.deps.store.failAttempt(this.job.lease, failure, this.deps.retryDelay);
    } catch (error) {
      if (!(error instanceof WorkerFaultError)) throw error;
      // The failure could not be written: hold the lease so that it is not taken back with a
      // retry spent for the database's fault; the attempt is redone once the fault clears.
      this.discardRunner = true;
      this.hold();
      this.deps.faults.report(error.message);
      return;
    }
    await this.reportOutcome(outcome, failure.message);
  }

  /**
   * Not the job's fault: back to the queue without spending a retry, and the daemon pauses. A job
   * that meets such faults again and again is charged for it in the end (WorkerFaults.letOff).
   */
  private async recordWorkerFault(reason: string): Promise<void> {
    this.discardRunner = true;
    if (!this.deps.faults.letOff(this.job.jobId)) {
      return this.recordFailure(
        new TransientJobError(`worker-side fault met ${FREE_FAULTS_PER_JOB + 1} times in a row: ${reason}`),
      );
    }
    const released = await this.releaseOrHold();
    if (released === 'requeued' || released === 'held') {
      this.log.warn(
        { reason, released },
        'worker-side fault; the job goes back to the queue without spending a retry',
      );
    }
    this.deps.faults.report(reason);
  }

  /**
   * Requeues the job without spending a retry (or ends it, when an operator's cancel was waiting);
   * when the store cannot, the lease is held for later.
   */
  private async releaseOrHold(): Promise<ReleaseOutcome | 'held'> {
    let released: ReleaseOutcome;
    try {
      released = await this.deps.store.releaseJob(this.job.lease);
    } catch (error) {
      if (!(error instanceof WorkerFaultError)) throw error;
      this.hold();
      return 'held';
    }
    await this.settleRelease(released);
    return released;
  }

  /** Held by the daemon's fault handling until the store takes a release; settled then. */
  private hold(): void {
    this.endedAt = performance.now();
    this.deps.faults.hold(this.job.lease, (released) => this.settleRelease(released));
  }

  /** Counts and reports a release once the store has taken it. */
  private async settleRelease(released: ReleaseOutcome): Promise<void> {
    switch (released) {
      case 'cancelled':
        return this.reportOutcome(
          { kind: 'failed', errorMessage: CANCELLED_MESSAGE, cancelled: true },
          CANCELLED_MESSAGE,
        );
      case 'fenced':
        return this.lostLease('it was not requeued');
      case 'requeued':
        this.finished('requeued');
        return;
    }
  }

  /** The lease was no longer this daemon's: counted, its bookkeeping dropped, nothing written. */
  private async lostLease(what: string): Promise<void> {
    this.deps.metrics.leaseLost(this.job.taskType);
    this.finished('fenced');
    // A row left behind holds only an ended lease, which nothing reads; a later claim replaces it.
    await this.deps.store
      .forgetLease(this.job.lease)
      .catch((error: unknown) => this.log.warn({ err: error }, 'could not drop the lost lease'));
    this.log.warn(`job was taken back, deleted or finished elsewhere; ${what}`);
  }

  private async removeOutput(): Promise<void> {
    // A runner that gave the job up (or met a worker-side fault) kills itself and what it
    // started, but may still be writing this instant: removed only once it has exited.
    const runner = this.runner ?? this.discardedRunner;
    if (this.discardRunner && runner) await runner.kill();
    await removeCancelledOutput(this.deps.storageRoot, this.job.jobId, this.log);
  }

  private async reportOutcome(outcome: RunnerOutcome, message: string | undefined): Promise<void> {
    switch (outcome.kind) {
      case 'completed':
        this.deps.faults.recordHealthy(this.job.jobId);
        this.finished('completed');
        this.log.info({ duration_ms: this.durationMs() }, 'job completed');
        this.publish({ type: 'completed', outputFiles: outcome.outputFiles });
        return;
      case 'retrying':
        this.deps.faults.recordHealthy(this.job.jobId);
        this.finished('retrying');
        this.log.warn({ error: message, retry_in_ms: outcome.delayMs }, 'job failed; will retry');
        this.publish({
          type: 'retrying',
          error: message ?? '',
          delayMs: outcome.delayMs,
          nextAttempt: outcome.nextAttempt,
        });
        return;
      case 'failed':
        // A cancel written (the operator's, however the attempt ended: stopped, crashed, failed by
        // itself, or released at shutdown): whatever the module wrote is half a result, and none
        // stays behind. Only then: a runner that completed first keeps its output.
        if (outcome.cancelled) await this.removeOutput();
        this.deps.faults.recordHealthy(this.job.jobId);
        this.finished(outcome.cancelled ? 'cancelled' : 'failed');
        this.log.warn({ error: outcome.errorMessage, duration_ms: this.durationMs() }, 'job failed');
        this.publish({ type: 'error', error: outcome.errorMessage });
        return;
      case 'fenced':
        this.finished('fenced');
        this.log.warn('job was taken back, deleted or finished elsewhere; its outcome was not written');
        return;
      case 'worker-fault':
        return this.recordWorkerFault(outcome.reason);
      case 'lease-expired': {
        // Most likely this daemon was frozen and did not renew: its fault, so no retry is spent,
        // and nothing is written if another daemon has taken the job meanwhile. A module that
        // keeps its runner's event loop busy past the lease looks the same; the fault count
        // charges it after a few rounds.
        this.discardRunner = true;
        if (!this.deps.faults.letOff(this.job.jobId)) {
          return this.recordFailure(
            new RunnerCrashedError(
              `runner gave the job up ${FREE_FAULTS_PER_JOB + 1} times in a row: no lease renewal reached it in time`,
            ),
          );
        }
        const released = await this.releaseOrHold();
        if (released === 'cancelled' || released === 'fenced') return;
        this.log.warn(
          { released },
          'the runner gave the job up: its lease ran out with no renewal (was this daemon hung?)',
        );
        return;
      }
    }
  }

  private finished(outcome: FinishOutcome): void {
    this.deps.metrics.jobFinished(this.job.taskType, outcome, this.durationMs());
  }

  /** From the claim to now. */
  private durationMs(): number {
    return Math.round((this.endedAt ?? performance.now()) - this.claimedAt);
  }

  private publish(event: JobEventBody): void {
    const { jobId, taskType, attempt } = this.job;
    this.deps.broadcaster.publishJobEvent({ ...event, jobId, taskType, attempt });
  }
}
