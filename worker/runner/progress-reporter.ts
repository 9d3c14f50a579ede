/**
 * A module may report progress thousands of times; the row is written only when the integer value
 * rises (progress never goes back, even when a module redoes a stage), and at most every
 * PROGRESS_WRITE_INTERVAL_MS (the last value is written by a trailing timer). A write that the
 * lease fence refuses means the job is no longer ours.
 */
import type { JobStore, Lease } from '../store/job-store.js';

const PROGRESS_WRITE_INTERVAL_MS = 250;

export class ProgressReporter {
  private lastSent = -1;
  private lastWrittenAt = 0;
  private pending: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: JobStore,
    private readonly lease: Lease,
    private readonly onChange: (progress: number) => void,
    private readonly onLeaseLost: () => void,
  ) {}

  report(percent: number): void {
    if (!Number.isFinite(percent)) return;
    const progress = Math.max(0, Math.min(99, Math.floor(percent)));
    if (progress <= this.lastSent) return;
    this.lastSent = progress;
    this.onChange(progress);
    this.pending = progress;
    const wait = this.lastWrittenAt + PROGRESS_WRITE_INTERVAL_MS - Date.now();
    if (wait <= 0) this.writePending();
    else this.timer ??= setTimeout(() => this.writePending(), wait);
  }

  /** Stops the trailing write; the terminal write supersedes it. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }

  private writePending(): void {
    this.timer = undefined;
    const progress = this.pending;
    if (progress === undefined) return;
    this.pending = undefined;
    this.lastWrittenAt = Date.now();
    this.store.reportProgress(this.lease, progress).then(
      (held) => {
        if (!held) this.onLeaseLost();
      },
      () => {
        // A progress write that fails (a locked database past busy_timeout) is not worth failing
        // the job over; the next one or the terminal write will tell.
      },
    );
  }
}
