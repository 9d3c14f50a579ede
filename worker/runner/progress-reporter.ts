/**
 * A module may report progress thousands of times; the row is written only when the integer value
 * rises (progress never goes back, even when a module redoes a stage), and at most every
 * PROGRESS_WRITE_INTERVAL_MS (LatestThrottle: the last value is always written). A write that the
 * lease fence refuses means the job is no longer ours.
 */
import { LatestThrottle } from '../latest-throttle.js';
import type { JobStore, Lease } from '../store/job-store.js';

const PROGRESS_WRITE_INTERVAL_MS = 250;

export class ProgressReporter {
  private lastSent = -1;
  private readonly writes: LatestThrottle<number>;

  constructor(
    store: JobStore,
    lease: Lease,
    private readonly onChange: (progress: number) => void,
    onLeaseLost: () => void,
  ) {
    this.writes = new LatestThrottle(PROGRESS_WRITE_INTERVAL_MS, (progress) => {
      store.reportProgress(lease, progress).then(
        (held) => {
          if (!held) onLeaseLost();
        },
        () => {
          // A progress write that fails (a locked database past busy_timeout) is not worth failing
          // the job over; the next one or the terminal write will tell.
        },
      );
    });
  }

  report(percent: number): void {
    if (!Number.isFinite(percent)) return;
    const progress = Math.max(0, Math.min(99, Math.floor(percent)));
    if (progress <= this.lastSent) return;
    this.lastSent = progress;
    this.onChange(progress);
    this.writes.offer(progress);
  }

  /** Stops the trailing write; the terminal write supersedes it. */
  stop(): void {
    this.writes.cancel();
  }
}
