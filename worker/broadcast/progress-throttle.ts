/**
 * At most one progress event per job every PROGRESS_INTERVAL_MS (see LatestThrottle), and the
 * latest is flushed before the job's terminal event, so subscribers always see the first and the
 * last value.
 */
import { LatestThrottle } from '../latest-throttle.js';
import type { JobEvent } from './broadcaster.js';

const PROGRESS_INTERVAL_MS = 250;

type ProgressEvent = Extract<JobEvent, { type: 'processing' }>;

export class ProgressThrottle {
  private readonly jobs = new Map<string, LatestThrottle<ProgressEvent>>();

  constructor(private readonly send: (event: JobEvent) => void) {}

  progress(event: ProgressEvent): void {
    let throttle = this.jobs.get(event.jobId);
    if (!throttle) {
      throttle = new LatestThrottle<ProgressEvent>(PROGRESS_INTERVAL_MS, this.send);
      this.jobs.set(event.jobId, throttle);
    }
    throttle.offer(event);
  }

  /** A terminal event: flush the job's pending progress, then send it, then forget the job. */
  finish(event: JobEvent): void {
    this.jobs.get(event.jobId)?.flush();
    this.jobs.delete(event.jobId);
    this.send(event);
  }

  close(): void {
    for (const throttle of this.jobs.values()) throttle.cancel();
    this.jobs.clear();
  }
}
