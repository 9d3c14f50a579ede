/**
 * The daemon's response to a worker-side fault (the database cannot be written, the storage root
 * cannot be written, a runner cannot start): stop claiming, say why in one log line, check again
 * with backoff, and resume once the check passes. No job pays for it: a job caught by the fault was
 * requeued without spending a retry, or is held here until it can be.
 */
import type { Logger } from 'pino';
import type { Lease, ReleaseOutcome } from '../store/job-store.js';

const FIRST_CHECK_MS = 1000;
const LONGEST_CHECK_MS = 60_000;
/**
 * Worker-side faults in a row one job may meet before the next is charged to it: a fault the check
 * cannot see (its own output fills the disk, its module cannot start) must not loop for ever.
 */
export const FREE_FAULTS_PER_JOB = 3;

interface HeldLease {
  lease: Lease;
  settle(released: ReleaseOutcome): Promise<void>;
  /** The release under way, which a shutdown or a renewal running meanwhile waits for. */
  pending: Promise<void> | undefined;
}

export interface WorkerFaultsOptions {
  /** Throws, saying what is wrong, while the fault lasts. */
  check(): Promise<void>;
  /** Requeues a job without spending a retry (see JobStore.releaseJob). */
  release(lease: Lease): Promise<ReleaseOutcome>;
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
  private readonly unreleased = new Map<string, HeldLease>();
  /** Worker-side faults in a row, per job, since its last real outcome. */
  private readonly faultsInARow = new Map<string, number>();

  constructor(private readonly options: WorkerFaultsOptions) {}

  /** While paused the daemon claims nothing and takes nothing back. */
  get paused(): boolean {
    return this.reason !== undefined;
  }

  /** What the fault is, while there is one. */
  get reasonNow(): string | undefined {
    return this.reason;
  }

  /** Leases held for release, kept alive by the daemon's renewals so that no one takes the jobs back. */
  get heldLeases(): Lease[] {
    return [...this.unreleased.values()].map((held) => held.lease);
  }

  /**
   * Counts a worker-side fault against a job; true while the job is still let off (see
   * FREE_FAULTS_PER_JOB), false when this one must be charged to it (the count starts again).
   */
  letOff(jobId: string): boolean {
    const count = (this.faultsInARow.get(jobId) ?? 0) + 1;
    if (count > FREE_FAULTS_PER_JOB) {
      this.faultsInARow.delete(jobId);
      return false;
    }
    this.faultsInARow.set(jobId, count);
    return true;
  }

  /**
   * A job that could not be requeued: held (its lease renewed) until a release gets through, then
   * `settle` is told what the release did (requeued; or ended, an operator's cancel having waited).
   */
  hold(lease: Lease, settle: (released: ReleaseOutcome) => Promise<void>): void {
    this.unreleased.set(lease.jobId, { lease, settle, pending: undefined });
  }

  /** Tries the held releases again (from the renewal timer, while not paused). */
  async releaseHeld(): Promise<void> {
    for (const jobId of [...this.unreleased.keys()]) await this.releaseOne(jobId);
  }

  /**
   * Releases one held job and settles it, once: a shutdown or a renewal that asks while a release
   * is under way waits for that one. The job stays held (its lease renewed) until it has gone
   * through, and is still held if it fails.
   */
  private releaseOne(jobId: string): Promise<void> {
    const held = this.unreleased.get(jobId);
    if (!held) return Promise.resolve();
    held.pending ??= this.sendRelease(jobId, held).finally(() => {
      held.pending = undefined;
    });
    return held.pending;
  }

  private async sendRelease(jobId: string, held: HeldLease): Promise<void> {
    const released = await this.options.release(held.lease);
    this.unreleased.delete(jobId);
    await held
      .settle(released)
      .catch((error: unknown) =>
        this.options.log.error({ err: error, job_id: jobId }, 'could not report a released job'),
      );
  }

  report(reason: string): void {
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
  recordHealthy(jobId: string): void {
    this.faultsInARow.delete(jobId);
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
    for (const jobId of [...this.unreleased.keys()]) {
      // Still failing: the lease expires and the job is taken back.
      await this.releaseOne(jobId).catch(() => {});
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
      await this.releaseHeld();
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
