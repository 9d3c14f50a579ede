/**
 * The worker loop. While slots are free it claims jobs and hands each to a RunningJob; it claims
 * again as soon as a slot frees or the store reports that another process changed the queue
 * (JobStore.watchQueue), and otherwise after the poll interval. Beside the loop, three
 * timers: lease renewal for the jobs it runs, recovery of jobs whose daemon died, and a check that
 * the database file it opened is still the one at its path.
 *
 * Lifecycle: start() → (stop() | fail() | drain finishing) → `finished` resolves. Shut down in
 * reverse: stop claiming, let running jobs finish within the grace, requeue the rest. What it was
 * given (store, pool, broadcaster) stays open: the caller opened it and closes it.
 * A worker-side fault (WorkerFaults) pauses claiming without stopping.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Broadcaster } from '../broadcast/broadcaster.js';
import { DatabaseBusyError, DatabaseLostError, WorkerFaultError } from '../errors.js';
import type { Readiness } from '../http/health-server.js';
import type { WorkerMetrics } from '../http/worker-metrics.js';
import type { DiscoveredModule } from '../modules/discover-modules.js';
import type { RunnerPool } from '../runner/runner-pool.js';
import type { ClaimedJob, JobStore, RetryDelay } from '../store/job-store.js';
import { removeCancelledOutput } from './cancelled-output.js';
import { RunningJob } from './running-job.js';
import { probeStorageWritable } from './storage-probe.js';
import { WorkerFaults } from './worker-faults.js';

/** How often the daemon checks that its database file was not deleted or replaced. */
const DATABASE_CHECK_MS = 1000;
/** How often running jobs are checked for an operator's cancel (`jobs cancel`, from any host). */
const CANCEL_CHECK_MS = 1000;

export interface DaemonOptions {
  workerId: string;
  storageRoot: string;
  modules: readonly DiscoveredModule[];
  concurrency: number;
  pollIntervalMs: number;
  leaseMs: number;
  orphanAgeMs: number;
  shutdownGraceMs: number;
  /** Per-module timeout overrides from flags or env; a job's own `timeout_s` wins over both. */
  timeoutOverrides: { all?: number; byTask: Readonly<Record<string, number>> };
  /** The most a job's own `timeout_s` may ask for. */
  maxJobTimeoutS: number;
  drain: boolean;
}

export interface DaemonDeps {
  store: JobStore;
  pool: RunnerPool;
  broadcaster: Broadcaster;
  retryDelay: RetryDelay;
  metrics: WorkerMetrics;
  log: Logger;
}

/** How long /readyz waits for the database check before it calls the database unreachable. */
const READINESS_CHECK_MS = 2000;

export class Daemon {
  private readonly running = new Map<string, RunningJob>();
  private readonly taskTypes: string[];
  /** Seconds per task type: --timeout for the task, else --timeout for all, else the module's own. */
  private readonly defaultTimeouts: ReadonlyMap<string, number>;
  private readonly stopController = new AbortController();
  private wakeUp: (() => void) | undefined;
  /** Something may have changed since the claim loop last looked: it looks again before waiting. */
  private wakePending = false;
  private timers: NodeJS.Timeout[] = [];
  private loopDone: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly faults: WorkerFaults;
  private paused = false;
  /** The last database check for /readyz (see databaseProblem). */
  private databaseCheck: { at: number; problem: Promise<string | undefined> } | undefined;
  /** Each one-second check runs alone: a slow database does not pile them up. */
  private readonly checking = new Set<string>();
  /** Leases whose attempt the last renewal found ended before their runner reported it. */
  private endedAtLastRenewal = new Set<string>();
  /** Set by fail(): the daemon stopped because it cannot go on; the process exits non-zero. */
  private fatal: Error | undefined;

  constructor(
    private readonly options: DaemonOptions,
    private readonly deps: DaemonDeps,
  ) {
    this.faults = new WorkerFaults({
      check: async () => {
        await deps.store.probeWritable();
        await probeStorageWritable(options.storageRoot);
      },
      release: (lease) => deps.store.releaseJob(lease),
      onCleared: () => {
        deps.pool.recycleIdle();
        this.wake();
      },
      log: deps.log,
    });
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

  /** Free slots as announced: none while paused, since none will be used. */
  private get announcedIdleSlots(): number {
    return this.paused ? 0 : this.idleSlots;
  }

  /**
   * Whether the daemon can take work now (/readyz): started (its runners warm), not stopping, not
   * paused by the operator or by a worker-side fault, and a connection opened now could write
   * the database.
   */
  async readiness(): Promise<Readiness> {
    if (this.stopController.signal.aborted)
      return { ready: false, reason: 'draining: the worker is stopping' };
    if (!this.loopDone) return { ready: false, reason: 'starting: runners are warming up' };
    if (this.paused) return { ready: false, reason: 'paused (SIGTSTP); SIGCONT resumes' };
    if (this.faults.paused) return { ready: false, reason: `worker-side fault: ${this.faults.reasonNow}` };
    const problem = await this.databaseProblem();
    return problem === undefined ? { ready: true } : { ready: false, reason: `database: ${problem}` };
  }

  /**
   * What keeps a new connection from writing the database, if anything. One check at a time, its
   * answer kept for READINESS_CHECK_MS: probes (or anyone who reaches the port) cannot open a
   * connection per request.
   */
  private databaseProblem(): Promise<string | undefined> {
    if (this.databaseCheck && performance.now() - this.databaseCheck.at < READINESS_CHECK_MS) {
      return this.databaseCheck.problem;
    }
    const problem = Promise.race([
      this.deps.store.probeWritable().then(() => undefined),
      sleep(READINESS_CHECK_MS, undefined, { ref: false }).then(
        () => `no answer within ${READINESS_CHECK_MS} ms`,
      ),
    ]).catch((error: unknown) => (error as Error).message);
    this.databaseCheck = { at: performance.now(), problem };
    return problem;
  }

  /** Queued jobs per task type served (the queue-depth metric). */
  queueDepth(): Promise<Record<string, number>> {
    return this.deps.store.queuedCounts();
  }

  get runningJobs(): number {
    return this.running.size;
  }

  /** Stops claiming; running jobs go on. Announced as `state: paused`, `idle_count: 0`. */
  pause(): void {
    if (this.paused || this.stopController.signal.aborted) return;
    this.paused = true;
    this.deps.log.info({ running: this.running.size }, 'paused: no new jobs are claimed until SIGCONT');
    this.deps.broadcaster.announceState('paused');
    this.deps.broadcaster.publishCapabilities(0);
  }

  resume(): void {
    if (!this.paused || this.stopController.signal.aborted) return;
    this.paused = false;
    this.deps.log.info('resumed: claiming again');
    this.deps.broadcaster.announceState('ready');
    this.deps.broadcaster.publishCapabilities(this.idleSlots);
    this.wake();
  }

  /** Why the daemon stopped by itself, when it could not go on (see fail()). */
  get fatalError(): Error | undefined {
    return this.fatal;
  }

  async start(): Promise<void> {
    const { leaseMs } = this.options;
    await this.faults.checkNow();
    await this.recoverAbandonedJobs();
    await this.deps.pool.prewarm(this.taskTypes, this.options.concurrency, this.stopController.signal);
    // A signal during start-up stopped the wait for runners: claim nothing.
    if (this.stopController.signal.aborted) return;
    this.timers = [
      setInterval(() => void this.renewLeases(), Math.max(100, leaseMs / 3)),
      setInterval(() => void this.recoverAbandonedJobs(), Math.max(500, leaseMs / 2)),
      setInterval(() => void this.alone('database', () => this.checkDatabase()), DATABASE_CHECK_MS),
      setInterval(() => void this.alone('cancels', () => this.stopCancelledJobs()), CANCEL_CHECK_MS),
    ];
    const watching = this.deps.store.watchQueue(() => this.wake(), this.stopController.signal);
    this.deps.broadcaster.publishCapabilities(this.announcedIdleSlots);
    this.deps.log.info(
      {
        tasks: this.taskTypes,
        concurrency: this.options.concurrency,
        drain: this.options.drain,
        new_jobs_noticed: watching ? 'at once' : `by polling every ${this.options.pollIntervalMs / 1000} s`,
      },
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
    this.stopping ??= this.shutDown(this.options.shutdownGraceMs);
    return this.stopping;
  }

  /**
   * The daemon cannot go on (its database is gone, another daemon has its id): stop at once,
   * without the grace, and let `fatalError` tell the caller to exit non-zero.
   */
  fail(error: Error): Promise<void> {
    if (!this.fatal) {
      this.fatal = error;
      this.deps.log.error({ err: error }, `stopping: ${error.message}`);
    }
    this.stopping ??= this.shutDown(0);
    return this.stopping;
  }

  private async shutDown(graceMs: number): Promise<void> {
    const { log, broadcaster } = this.deps;
    this.stopController.abort();
    this.wake();
    await this.loopDone;
    if (this.running.size > 0) {
      log.info({ running: this.running.size, grace_s: graceMs / 1000 }, 'stopping: waiting for running jobs');
      broadcaster.announceState('draining');
      const allDone = Promise.all([...this.running.values()].map((job) => job.done));
      await Promise.race([allDone, sleep(graceMs, undefined, { ref: false })]);
      for (const job of this.running.values()) job.stop('shutdown');
    }
    // A stopped job waiting for a runner stops waiting, so it is requeued now rather than once
    // the runner is ready. The pool, the broadcaster and the store are its caller's to close.
    await Promise.all([...this.running.values()].map((job) => job.done));
    for (const timer of this.timers) clearInterval(timer);
    await this.faults.stop();
  }

  private async claimLoop(): Promise<void> {
    const signal = this.stopController.signal;
    while (!signal.aborted) {
      this.wakePending = false;
      let retryDueAt: number | undefined;
      try {
        while (this.idleSlots > 0 && !signal.aborted && !this.faults.paused && !this.paused) {
          const claimStartedAt = performance.now();
          const job = await this.deps.store.claimNextJob({
            workerId: this.options.workerId,
            taskTypes: this.taskTypes,
            leaseMs: this.options.leaseMs,
          });
          if (!job) break;
          this.launch(job, claimStartedAt);
        }
        if (
          this.options.drain &&
          this.running.size === 0 &&
          !(await this.deps.store.hasQueuedJobs(this.taskTypes))
        ) {
          this.deps.log.info('drain: nothing queued and nothing running');
          return;
        }
        // A retry waiting out its backoff is claimed when the backoff ends, not at the next poll
        // (while paused for a worker-side fault, nothing is claimed: the fault's check wakes it).
        if (this.idleSlots > 0 && !this.faults.paused && !this.paused) {
          retryDueAt = await this.deps.store.nextRetryAt(this.taskTypes);
        }
      } catch (error) {
        if (pausesClaiming(error)) this.faults.report(error.message);
        else this.deps.log.error({ err: error }, 'claiming failed; retrying after the poll interval');
      }
      await this.waitForWork(retryDueAt);
    }
  }

  private launch(job: ClaimedJob, leaseGrantedAt: number): void {
    const runningJob = new RunningJob(
      job,
      { defaultS: this.defaultTimeouts.get(job.taskType) as number, maxJobS: this.options.maxJobTimeoutS },
      leaseGrantedAt,
      this.options.leaseMs,
      { ...this.deps, faults: this.faults, storageRoot: this.options.storageRoot },
    );
    this.running.set(job.jobId, runningJob);
    this.deps.broadcaster.publishCapabilities(this.announcedIdleSlots);
    void runningJob.done.then(() => {
      this.running.delete(job.jobId);
      this.deps.broadcaster.publishCapabilities(this.announcedIdleSlots);
      this.wake();
    });
  }

  private wake(): void {
    this.wakePending = true;
    this.wakeUp?.();
  }

  /**
   * The poll interval, or until `retryDueAt` when that comes first; cut short by wake() (a freed
   * slot, a change to the queue) or by stop().
   */
  private waitForWork(retryDueAt?: number): Promise<void> {
    if (this.wakePending) return Promise.resolve();
    return new Promise((resolve) => {
      const signal = this.stopController.signal;
      const done = () => {
        this.wakeUp = undefined;
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      // At least a millisecond: a retry due now that the claim could not take must not spin the loop.
      const untilRetry = retryDueAt === undefined ? Number.POSITIVE_INFINITY : retryDueAt - Date.now();
      const timer = setTimeout(done, Math.max(1, Math.min(this.options.pollIntervalMs, untilRetry)));
      this.wakeUp = done;
      signal.addEventListener('abort', done);
    });
  }

  private async renewLeases(): Promise<void> {
    const held = this.faults.heldLeases;
    if (this.running.size === 0 && held.length === 0) return;
    try {
      const leases = [...[...this.running.values()].map((job) => job.job.lease), ...held];
      const renewedAt = performance.now();
      const { lost, ended } = await this.deps.store.renewLeases(leases, this.options.leaseMs);
      const lostIds = new Set(lost);
      const endedIds = new Set(ended);
      const endedNow = new Set<string>();
      for (const [jobId, job] of this.running) {
        const { token } = job.job.lease;
        if (lostIds.has(jobId)) job.stop('lease-lost');
        // Its runner's report of the outcome it wrote is due; still none a renewal later, stop it.
        // By lease, not job: the same job may be claimed again meanwhile, as a new attempt.
        else if (endedIds.has(jobId)) {
          if (this.endedAtLastRenewal.has(token)) job.stop('lease-lost');
          endedNow.add(token);
        } else job.leaseRenewed(renewedAt);
      }
      this.endedAtLastRenewal = endedNow;
      if (held.length > 0 && !this.faults.paused) await this.faults.releaseHeld();
    } catch (error) {
      // A database out of reach is said once, by the fault's own line, not at every renewal.
      if (pausesClaiming(error)) this.faults.report(error.message);
      else this.deps.log.warn({ err: error }, 'lease renewal failed; will try again');
    }
  }

  /** Runs `check` unless the previous run of the same check is still going. */
  private async alone(name: string, check: () => Promise<void>): Promise<void> {
    if (this.checking.has(name)) return;
    this.checking.add(name);
    try {
      await check();
    } finally {
      this.checking.delete(name);
    }
  }

  private async stopCancelledJobs(): Promise<void> {
    if (this.running.size === 0) return;
    try {
      const leases = [...this.running.values()].map((job) => job.job.lease);
      for (const { jobId, token } of await this.deps.store.cancelRequested(leases)) {
        const job = this.running.get(jobId);
        if (job?.job.lease.token === token) job.stop('cancelled');
      }
    } catch (error) {
      this.deps.log.debug({ err: error }, 'could not look for cancel requests; will look again');
    }
  }

  private async checkDatabase(): Promise<void> {
    try {
      await this.deps.store.checkIdentity();
    } catch (error) {
      if (error instanceof DatabaseLostError) void this.fail(error);
    }
  }

  private async recoverAbandonedJobs(): Promise<void> {
    // While paused for a worker-side fault, jobs this daemon could not requeue yet must not be
    // taken back with a retry spent, and the check that ends the pause comes first.
    if (this.faults.paused) return;
    try {
      const recovered = await this.deps.store.recoverAbandonedJobs({
        orphanAgeMs: this.options.orphanAgeMs,
        retryDelay: this.deps.retryDelay,
      });
      for (const job of recovered) {
        if (job.outcome.kind === 'failed' && job.outcome.cancelled) {
          await removeCancelledOutput(this.options.storageRoot, job.jobId, this.deps.log);
        }
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
      if (recovered.length > 0) this.wake();
    } catch (error) {
      if (pausesClaiming(error)) this.faults.report(error.message);
      else this.deps.log.warn({ err: error }, 'recovery sweep failed; will try again');
    }
  }
}

/** A worker-side fault that will not clear by itself in a moment, as a busy database does. */
function pausesClaiming(error: unknown): error is WorkerFaultError {
  return error instanceof WorkerFaultError && !(error instanceof DatabaseBusyError);
}
