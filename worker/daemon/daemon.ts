/**
 * The worker loop. While slots are free it claims jobs and hands each to a RunningJob; when a slot
 * frees it claims again at once, otherwise it waits for the poll interval. Beside the loop, two
 * timers: lease renewal for the jobs it runs, and recovery of jobs whose daemon died.
 *
 * Lifecycle: start() → (stop() | drain finishing) → `finished` resolves. Shut down in reverse:
 * stop claiming, let running jobs finish within the grace, requeue the rest, close the pool.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Broadcaster } from '../broadcast/broadcaster.js';
import type { DiscoveredModule } from '../modules/discover-modules.js';
import { jobTimeoutOverride } from '../runner/job-inputs.js';
import type { RunnerPool } from '../runner/runner-pool.js';
import type { ClaimedJob, JobStore, RetryDelay } from '../store/job-store.js';
import { RunningJob } from './running-job.js';

export interface DaemonOptions {
  workerId: string;
  modules: readonly DiscoveredModule[];
  concurrency: number;
  pollIntervalMs: number;
  leaseMs: number;
  orphanAgeMs: number;
  shutdownGraceMs: number;
  /** Per-module timeout overrides from flags or env; a job's own `timeout_s` wins over both. */
  timeoutOverrides: { all?: number; byTask: Readonly<Record<string, number>> };
  drain: boolean;
}

export interface DaemonDeps {
  store: JobStore;
  pool: RunnerPool;
  broadcaster: Broadcaster;
  retryDelay: RetryDelay;
  log: Logger;
}

export class Daemon {
  private readonly running = new Map<string, RunningJob>();
  private readonly taskTypes: string[];
  /** Seconds per task type: --timeout for the task, else --timeout for all, else the module's own. */
  private readonly defaultTimeouts: ReadonlyMap<string, number>;
  private readonly stopController = new AbortController();
  private wakeUp: (() => void) | undefined;
  private timers: NodeJS.Timeout[] = [];
  private loopDone: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly options: DaemonOptions,
    private readonly deps: DaemonDeps,
  ) {
    this.taskTypes = options.modules.map((module) => module.name);
    const { byTask, all } = options.timeoutOverrides;
    this.defaultTimeouts = new Map(
      options.modules.map((module) => [
        module.name,
        byTask[module.name] ?? all ?? module.manifest.defaultTimeoutS,
      ]),
    );
  }

  get idleSlots(): number {
    return this.options.concurrency - this.running.size;
  }

  async start(): Promise<void> {
    const { leaseMs } = this.options;
    await this.recoverAbandonedJobs();
    await this.deps.pool.prewarm(this.taskTypes, this.options.concurrency);
    // A signal during start-up has already shut everything down: claim nothing.
    if (this.stopController.signal.aborted) return;
    this.timers = [
      setInterval(() => void this.renewLeases(), Math.max(100, leaseMs / 3)),
      setInterval(() => void this.recoverAbandonedJobs(), Math.max(500, leaseMs / 2)),
    ];
    this.deps.broadcaster.publishCapabilities(this.idleSlots);
    this.deps.log.info(
      { tasks: this.taskTypes, concurrency: this.options.concurrency, drain: this.options.drain },
      'worker started',
    );
    this.loopDone = this.claimLoop();
  }

  /** Resolves when the daemon has stopped: after stop(), or by itself in drain mode. */
  async finished(): Promise<void> {
    await this.loopDone;
    await this.stop();
  }

  /** Graceful: stop claiming, give running jobs the grace, requeue what is left. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.shutDown();
    return this.stopping;
  }

  private async shutDown(): Promise<void> {
    const { log, broadcaster, pool, store } = this.deps;
    this.stopController.abort();
    this.wakeUp?.();
    await this.loopDone;
    if (this.running.size > 0) {
      log.info(
        { running: this.running.size, grace_s: this.options.shutdownGraceMs / 1000 },
        'stopping: waiting for running jobs',
      );
      broadcaster.announceDraining();
      const allDone = Promise.all([...this.running.values()].map((job) => job.done));
      await Promise.race([allDone, sleep(this.options.shutdownGraceMs, undefined, { ref: false })]);
      for (const job of this.running.values()) job.stop('shutdown');
      await allDone;
    }
    for (const timer of this.timers) clearInterval(timer);
    await pool.close();
    await broadcaster.stop();
    await store.close();
    log.info('worker stopped');
  }

  private async claimLoop(): Promise<void> {
    const signal = this.stopController.signal;
    while (!signal.aborted) {
      try {
        while (this.idleSlots > 0 && !signal.aborted) {
          const job = await this.deps.store.claimNextJob({
            workerId: this.options.workerId,
            taskTypes: this.taskTypes,
            leaseMs: this.options.leaseMs,
          });
          if (!job) break;
          this.launch(job);
        }
        if (
          this.options.drain &&
          this.running.size === 0 &&
          !(await this.deps.store.hasQueuedJobs(this.taskTypes))
        ) {
          this.deps.log.info('drain: nothing queued and nothing running');
          return;
        }
      } catch (error) {
        this.deps.log.error({ err: error }, 'claiming failed; retrying after the poll interval');
      }
      await this.waitForWork();
    }
  }

  private launch(job: ClaimedJob): void {
    const runningJob = new RunningJob(job, this.timeoutFor(job), this.deps);
    this.running.set(job.jobId, runningJob);
    this.deps.broadcaster.publishCapabilities(this.idleSlots);
    void runningJob.done.then(() => {
      this.running.delete(job.jobId);
      this.deps.broadcaster.publishCapabilities(this.idleSlots);
      this.wakeUp?.();
    });
  }

  /** A job's own `timeout_s` wins over the per-task default computed at construction. */
  private timeoutFor(job: ClaimedJob): number {
    return jobTimeoutOverride(job.inputFiles) ?? (this.defaultTimeouts.get(job.taskType) as number);
  }

  /** The poll interval, cut short by a freed slot or by stop(). */
  private waitForWork(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.options.pollIntervalMs);
      const signal = this.stopController.signal;
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      this.wakeUp = done;
      signal.addEventListener('abort', done);
    });
  }

  private async renewLeases(): Promise<void> {
    if (this.running.size === 0) return;
    try {
      const leases = [...this.running.values()].map((job) => job.job.lease);
      const lost = await this.deps.store.renewLeases(leases, this.options.leaseMs);
      for (const jobId of lost) this.running.get(jobId)?.stop('lease-lost');
    } catch (error) {
      this.deps.log.warn({ err: error }, 'lease renewal failed; will try again');
    }
  }

  private async recoverAbandonedJobs(): Promise<void> {
    try {
      const recovered = await this.deps.store.recoverAbandonedJobs({
        orphanAgeMs: this.options.orphanAgeMs,
        retryDelay: this.deps.retryDelay,
      });
      for (const job of recovered) {
        this.deps.log.warn(
          { job_id: job.jobId, task_type: job.taskType, reason: job.reason, outcome: job.outcome.kind },
          'took back an abandoned job',
        );
        if (job.outcome.kind === 'failed') {
          this.deps.broadcaster.publishJobEvent({
            type: 'error',
            jobId: job.jobId,
            taskType: job.taskType,
            attempt: job.attempt,
            error: job.outcome.errorMessage,
          });
        }
      }
      if (recovered.length > 0) this.wakeUp?.();
    } catch (error) {
      this.deps.log.warn({ err: error }, 'recovery sweep failed; will try again');
    }
  }
}
