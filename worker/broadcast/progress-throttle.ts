/**
 * At most one progress event per job every PROGRESS_INTERVAL_MS: the first goes out at once, later
 * ones replace each other until the interval ends (no backlog), and the latest is flushed before
 * the job's terminal event, so subscribers always see the first and the last value.
 */
import type { JobEvent } from './broadcaster.js';

const PROGRESS_INTERVAL_MS = 250;

type ProgressEvent = Extract<JobEvent, { type: 'processing' }>;

interface JobThrottle {
  lastSentAt: number;
  pending: ProgressEvent | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class ProgressThrottle {
  private readonly jobs = new Map<string, JobThrottle>();

  constructor(private readonly send: (event: JobEvent) => void) {}

  progress(event: ProgressEvent): void {
    const job = this.jobs.get(event.jobId) ?? { lastSentAt: 0, pending: undefined, timer: undefined };
    this.jobs.set(event.jobId, job);
    const wait = job.lastSentAt + PROGRESS_INTERVAL_MS - Date.now();
    if (wait <= 0 && !job.timer) {
      job.lastSentAt = Date.now();
      this.send(event);
      return;
    }
    job.pending = event;
    job.timer ??= setTimeout(() => this.flush(event.jobId), Math.max(0, wait));
  }

  /** A terminal event: flush the job's pending progress, then send it, then forget the job. */
  finish(event: JobEvent): void {
    this.flush(event.jobId);
    this.jobs.delete(event.jobId);
    this.send(event);
  }

  close(): void {
    for (const job of this.jobs.values()) clearTimeout(job.timer);
    this.jobs.clear();
  }

  private flush(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (!job) return;
    clearTimeout(job.timer);
    job.timer = undefined;
    if (job.pending) {
      const pending = job.pending;
      job.pending = undefined;
      job.lastSentAt = Date.now();
      this.send(pending);
    }
  }
}
