/**
 * What the dashboard shows from the database, read again only when it may have changed: while a
 * page is open, the store's change marker is checked every second (a pragma on SQLite, one tiny
 * query on PostgreSQL) and the counts and short lists are read when it moved. With no page open
 * nothing is read at all, so an idle dashboard costs next to nothing.
 */
import type { JobStore, JobSummary, QueueOverview } from '../store/job-store.js';

const CHECK_MS = 1000;
/**
 * While changes keep coming, reads are spaced to this many times their own duration, so a large
 * database under constant change costs the dashboard at most a fortieth of a core.
 */
const READ_SPACING = 40;
/** Read even with no change seen: the hour of throughput slides, and a marker may miss a change. */
const REREAD_MS = 30_000;
const THROUGHPUT_WINDOW_MS = 60 * 60 * 1000;
export const SHORT_LIST = 10;
const RUNNING_LIST = 50;

export interface QueueSnapshot {
  readAt: number;
  overview: QueueOverview;
  /** The first queued jobs, in claim order. */
  queuedHead: JobSummary[];
  running: JobSummary[];
  recentFailures: JobSummary[];
}

export type QueueView = { ok: true; snapshot: QueueSnapshot } | { ok: false; error: string; at: number };

export class QueueReader {
  private view: QueueView | undefined;
  private marker: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private followUp: Promise<void> | undefined;
  private lastReadEnded = 0;
  private lastReadMs = 0;

  constructor(
    private readonly store: JobStore,
    private readonly onChange: (view: QueueView) => void,
  ) {}

  get current(): QueueView | undefined {
    return this.view;
  }

  /** Keeps reading while `active` says someone is watching. */
  start(active: () => boolean): void {
    this.timer = setInterval(() => {
      if (active()) void this.check();
    }, CHECK_MS);
  }

  /**
   * Reads now (a page connected, or an action changed a job). A read already under way may have
   * begun before the change: then one more follows it, shared by everyone who asks meanwhile.
   */
  refresh(): Promise<void> {
    if (this.reading) {
      this.followUp ??= this.reading.then(() => {
        this.followUp = undefined;
        return this.refresh();
      });
      return this.followUp;
    }
    this.reading = this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async check(): Promise<void> {
    if (this.reading) return;
    let marker: string;
    try {
      marker = await this.store.changeMarker();
    } catch (error) {
      this.publish({ ok: false, error: (error as Error).message, at: Date.now() });
      return;
    }
    const now = Date.now();
    if (now - this.lastReadEnded < this.lastReadMs * READ_SPACING) return;
    const stale = !this.view || now - (this.view.ok ? this.view.snapshot.readAt : this.view.at) > REREAD_MS;
    if (marker !== this.marker || stale || !this.view?.ok) await this.refresh();
  }

  private async read(): Promise<void> {
    const began = Date.now();
    try {
      // Taken before the reads: a change during them moves it again, and the next check reads.
      this.marker = await this.store.changeMarker();
      const readAt = Date.now();
      const [overview, queuedHead, processing, claimed, recentFailures] = await Promise.all([
        this.store.queueOverview(readAt - THROUGHPUT_WINDOW_MS),
        this.store.listJobs({ status: 'queued', limit: SHORT_LIST }),
        this.store.listJobs({ status: 'processing', limit: RUNNING_LIST }),
        this.store.listJobs({ status: 'claimed', limit: RUNNING_LIST }),
        this.store.listJobs({ status: 'error', limit: SHORT_LIST }),
      ]);
      this.publish({
        ok: true,
        snapshot: { readAt, overview, queuedHead, running: [...processing, ...claimed], recentFailures },
      });
    } catch (error) {
      this.publish({ ok: false, error: (error as Error).message, at: Date.now() });
    } finally {
      this.lastReadEnded = Date.now();
      this.lastReadMs = this.lastReadEnded - began;
    }
  }

  private publish(view: QueueView): void {
    this.view = view;
    this.onChange(view);
  }
}
