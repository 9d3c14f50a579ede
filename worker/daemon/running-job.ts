/**
 * One claimed job from the moment a slot takes it until its outcome is in the database: gets a
 * runner, enforces the timeout, and records what the runner could not (it crashed, hung or was
 * stopped). Outcomes the runner reached itself it has already written under its lease.
 */
import type { Logger } from 'pino';
import type { Broadcaster, JobEventBody } from '../broadcast/broadcaster.js';
import { type JobError, JobTimeoutError, RunnerCrashedError } from '../errors.js';
import type { RunnerOutcome } from '../runner/protocol.js';
import type { RunnerPool } from '../runner/runner-pool.js';
import { describeExit, type RunnerProcess } from '../runner/runner-process.js';
import type { ClaimedJob, JobStore, RetryDelay } from '../store/job-store.js';

export type StopReason = 'timeout' | 'lease-lost' | 'shutdown';

export interface RunningJobDeps {
  store: JobStore;
  pool: RunnerPool;
  broadcaster: Broadcaster;
  retryDelay: RetryDelay;
  log: Logger;
}

export class RunningJob {
  readonly done: Promise<void>;
  private runner: RunnerProcess | undefined;
  private stopReason: StopReason | undefined;
  private readonly log: Logger;

  constructor(
    readonly job: ClaimedJob,
    private readonly timeoutS: number,
    private readonly deps: RunningJobDeps,
  ) {
    this.log = deps.log.child({ job_id: job.jobId, task_type: job.taskType, attempt: job.attempt });
    this.done = this.execute().catch((error: unknown) => {
      // Only the store can throw here (a database locked past busy_timeout): the lease will expire
      // and any daemon takes the job back, so log and let the slot go.
      this.log.error({ err: error }, 'could not record the outcome of the job; its lease will expire');
    });
  }

  /** Kills the runner; what is recorded depends on the reason (see `recordExit`). */
  stop(reason: StopReason): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.log.info({ reason, runner_pid: this.runner?.pid }, 'stopping the job');
    if (this.runner) void this.runner.kill();
  }

  private async execute(): Promise<void> {
    const { job, deps } = this;
    this.log.info({ timeout_s: this.timeoutS }, 'job claimed');
    let runner: RunnerProcess;
    try {
      runner = await deps.pool.acquire(job.taskType);
    } catch (error) {
      const failure = error instanceof RunnerCrashedError ? error : new RunnerCrashedError(String(error));
      return this.recordFailure(failure);
    }
    if (this.stopReason) {
      // Stopped while waiting for a runner: the job never started, so record the stop and give
      // the runner back untouched.
      deps.pool.release(job.taskType, runner);
      return this.recordExit('stopped before it started');
    }
    this.runner = runner;
    const timer = setTimeout(() => this.stop('timeout'), this.timeoutS * 1000);
    try {
      const result = await runner.run(
        {
          jobId: job.jobId,
          taskType: job.taskType,
          attempt: job.attempt,
          inputFiles: job.inputFiles,
          lease: job.lease,
        },
        {
          onStarted: () => this.publish({ type: 'processing', progress: 0 }),
          onProgress: (progress) => this.publish({ type: 'processing', progress }),
        },
      );
      if (result.kind === 'finished') this.reportOutcome(result.outcome, result.message);
      else await this.recordExit(describeExit(result.exit));
    } finally {
      clearTimeout(timer);
      // Forget the runner before it goes back to the pool: a late stop() (a renewal that raced
      // with completion) must not kill the runner once it serves another job.
      this.runner = undefined;
      deps.pool.release(job.taskType, runner);
    }
  }

  private async recordExit(exitDescription: string): Promise<void> {
    switch (this.stopReason) {
      case 'timeout':
        return this.recordFailure(new JobTimeoutError(this.timeoutS));
      case 'lease-lost':
        await this.deps.store.forgetLease(this.job.lease);
        this.log.warn(
          'job was taken back, deleted or finished elsewhere; its runner was stopped and nothing written',
        );
        return;
      case 'shutdown': {
        const released = await this.deps.store.releaseJob(this.job.lease);
        this.log.info({ released }, 'job requeued at shutdown without spending a retry');
        return;
      }
      default:
        return this.recordFailure(new RunnerCrashedError(`runner crashed: ${exitDescription}`));
    }
  }

  private async recordFailure(failure: JobError): Promise<void> {
    const outcome = await this.deps.store.failAttempt(this.job.lease, failure, this.deps.retryDelay);
    this.reportOutcome(outcome, failure.message);
  }

  private reportOutcome(outcome: RunnerOutcome, message: string | undefined): void {
    switch (outcome.kind) {
      case 'completed':
        this.log.info('job completed');
        this.publish({ type: 'completed', outputFiles: outcome.outputFiles });
        return;
      case 'retrying':
        this.log.warn({ error: message, retry_in_ms: outcome.delayMs }, 'job failed; will retry');
        this.publish({
          type: 'retrying',
          error: message ?? '',
          delayMs: outcome.delayMs,
          nextAttempt: outcome.nextAttempt,
        });
        return;
      case 'failed':
        this.log.warn({ error: outcome.errorMessage }, 'job failed');
        this.publish({ type: 'error', error: outcome.errorMessage });
        return;
      case 'fenced':
        this.log.warn('job was taken back, deleted or finished elsewhere; its outcome was not written');
        return;
    }
  }

  private publish(event: JobEventBody): void {
    const { jobId, taskType, attempt } = this.job;
    this.deps.broadcaster.publishJobEvent({ ...event, jobId, taskType, attempt });
  }
}
