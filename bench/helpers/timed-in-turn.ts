/** Queues timed side by side in one run, so that their ratios hold still between runs. */
import type { JobStore } from '../../worker/store/job-store.js';

/** One queue under test, set up and ready: a claim + complete, and what runs untimed after each. */
export interface TimedQueue {
  oneJob(): Promise<void> | void;
  between?: (() => Promise<void> | void) | undefined;
}

/** The job every store line times: one claim and its completion through the store. */
export function claimAndComplete(store: JobStore, taskType: string): () => Promise<void> {
  const result = { outputFiles: [], taskOutput: { success: true } };
  return async () => {
    const job = await store.claimNextJob({ workerId: 'bench', taskTypes: [taskType], leaseMs: 60_000 });
    if (!job) throw new Error('the store found nothing to claim');
    if (!(await store.completeJob(job.lease, result))) throw new Error('the store lost a lease');
  };
}

export interface TurnOptions {
  /** Jobs timed on each queue in all. */
  timedJobs: number;
  /** Jobs timed on one queue before the next queue's turn. */
  blockJobs: number;
  /** Jobs each queue runs untimed before any is timed. */
  warmUpJobs: number;
}

/**
 * Microseconds per job of each queue. Every queue warms up first (untimed: connections, plans,
 * caches, and a store's first look for jobs its index lacks); then each is timed in blocks, in
 * turn, so whatever else the machine does meanwhile (a disk flushing, another process) falls on
 * every queue alike.
 */
export async function timedInTurn(
  queues: readonly TimedQueue[],
  { timedJobs, blockJobs, warmUpJobs }: TurnOptions,
): Promise<number[]> {
  for (const queue of queues) {
    for (let i = 0; i < warmUpJobs; i += 1) {
      await queue.oneJob();
      await queue.between?.();
    }
  }
  const elapsed = queues.map(() => 0);
  for (let done = 0; done < timedJobs; done += blockJobs) {
    for (const [index, queue] of queues.entries()) {
      for (let i = 0; i < Math.min(blockJobs, timedJobs - done); i += 1) {
        const started = performance.now();
        await queue.oneJob();
        elapsed[index] = (elapsed[index] ?? 0) + performance.now() - started;
        await queue.between?.();
      }
    }
  }
  return elapsed.map((total) => (total / timedJobs) * 1000);
}

/** A count as the bench lines print it: 1,000,000. */
export const count = (value: number) => value.toLocaleString('en');

/** How a numerator compares with a denominator, to two places. */
export const ratio = (numerator: number, denominator: number) => (numerator / denominator).toFixed(2);

/** Prints "  label … N jobs/s note" lines, the labels padded to `labelWidth`. */
export const rateLine =
  (labelWidth: number) =>
  (label: string, microseconds: number, note = ''): void =>
    console.log(`  ${label.padEnd(labelWidth)}${(1e6 / microseconds).toFixed(0).padStart(7)} jobs/s${note}`);
