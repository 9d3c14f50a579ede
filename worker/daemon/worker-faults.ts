/**
 * The daemon's response to a worker-side fault (the database cannot be written, the storage root
 * cannot be written, a runner cannot start): stop claiming, say why in one log line, check again
 * with backoff, and resume once the check passes. No job pays for it: a job caught by the fault was
 * requeued without spending a retry, or is held here until it can be.
 */
import type { Logger } from 'pino';
import type { Lease } from '../store/job-store.js';

const FIRST_CHECK_MS = 1000;
const LONGEST_CHECK_MS = 60_000;

export interface WorkerFaultsOptions {
  /** Throws, saying what is wrong, while the fault lasts. */
  check(): Promise<void>;
  /** Requeues a job without spending a retry; false when its lease is no longer ours. */
  release(lease: Lease): Promise<boolean>;
  /** Called once the fault has cleared. */
  onCleared(): void;
  log: Logger;
}

export class WorkerFaults {
  private reason: string | undefined;
  private pausedAt = 0;
  private nextCheckMs = FIRST_CHECK_MS;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Jobs caught by the fault that could not be requeued yet (the database itself was the fault). */
  private readonly unreleased = new Map<string, Lease>();

  constructor(private readonly options: WorkerFaultsOptions) {}

  /** While paused the daemon claims nothing and takes nothing back. */
  get paused(): boolean {
    return this.reason !== undefined;
  }

  /** Leases held for release, kept alive by the daemon's renewals so that no one takes the jobs back. */
  get heldLeases(): Lease[] {
    return [...this.unreleased.values()];
  }

  report(reason: string, unreleased?: Lease): void {
    if (unreleased) this.unreleased.set(unreleased.jobId, unreleased);
    if (this.stopped || this.reason !== undefined) return;
    this.reason = reason;
    this.pausedAt = Date.now();
    this.options.log.error(
      { reason, check_in_ms: this.nextCheckMs },
      'worker-side fault: claiming stopped until it clears (no job is charged for it)',
    );
    this.schedule();
  }

  /** A job ran to a real outcome: the worker works, so the next fault is checked soon again. */
  recordHealthy(): void {
    if (this.reason === undefined) this.nextCheckMs = FIRST_CHECK_MS;
  }

  /** Runs the check now (at start-up); reports a fault if it fails. */
  async checkNow(): Promise<void> {
    try {
      await this.options.check();
    } catch (error) {
      this.report((error as Error).message);
    }
  }

  /** At shutdown: one last try to requeue held jobs, so that none waits out its lease for nothing. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const [jobId, lease] of this.unreleased) {
      try {
        await this.options.release(lease);
        this.unreleased.delete(jobId);
      } catch {
        // Still failing: the lease expires and the job is taken back.
      }
    }
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.recheck(), this.nextCheckMs);
    this.nextCheckMs = Math.min(LONGEST_CHECK_MS, this.nextCheckMs * 2);
  }

  private async recheck(): Promise<void> {
    try {
      await this.options.check();
      for (const [jobId, lease] of this.unreleased) {
        await this.options.release(lease);
        this.unreleased.delete(jobId);
      }
    } catch (error) {
      this.reason = (error as Error).message;
      this.options.log.debug({ reason: this.reason }, 'worker-side fault persists');
      this.schedule();
      return;
    }
    if (this.stopped) return;
    this.options.log.info(
      { paused_ms: Date.now() - this.pausedAt },
      'worker-side fault cleared; claiming again',
    );
    this.reason = undefined;
    this.options.onCleared();
  }
}
