/**
 * What a busy daemon costs the API: an API stand-in in its own process inserts a job (row, then
 * queue entry, two autocommit statements, 15 s busy timeout) every 20 ms for a fixed window, timing
 * each pair, while one daemon (--concurrency 2, warm runners) drains a 200,000-job backlog of the
 * same database; beside it, the same inserter on the same database with no daemon running.
 */
import Database from 'better-sqlite3';
import {
  createBenchDir,
  ms,
  percentile,
  seedNoopJobs,
  startApiInserter,
  startDaemon,
  within,
} from './helpers/daemon-bench.js';

const BACKLOG = 200_000;
const PERIOD_MS = 20;
const GOAL_P99_MS = 10;

function summary(latencies: number[]): string {
  const over = (limit: number) => latencies.filter((value) => value > limit).length;
  return (
    `${ms(percentile(latencies, 50))} ${ms(percentile(latencies, 99))} ${ms(Math.max(...latencies))}` +
    `  ${String(latencies.length).padStart(5)}   >5 ms: ${over(5)}, >10 ms: ${over(10)}, >50 ms: ${over(50)}`
  );
}

export async function benchApiInsertLatency(): Promise<void> {
  const seconds = Number(process.env.BENCH_API_SECONDS ?? 20);
  const workspace = createBenchDir();
  const inserter = startApiInserter(workspace.databasePath);
  try {
    seedNoopJobs(workspace.databasePath, BACKLOG);
    const baseline = await inserter.steady('baseline', PERIOD_MS, seconds);

    const daemon = startDaemon(
      workspace.dir,
      ['--concurrency', '2', '--runner-reuse', '0', '--poll-interval', '1'],
      () => {},
    );
    let completed: number;
    let live: number[];
    let exitCode: number | null = null;
    const reader = new Database(workspace.databasePath, { readonly: true, timeout: 15_000 });
    const completedCount = reader.prepare("SELECT count(*) FROM jobs WHERE status = 'completed'").pluck();
    try {
      await within(daemon.started, 120_000, '"worker started"');
      const before = completedCount.get() as number;
      live = await inserter.steady('live', PERIOD_MS, seconds);
      completed = (completedCount.get() as number) - before;
    } finally {
      reader.close();
      exitCode = await daemon.stop();
    }
    if (exitCode !== 0) throw new Error(`the daemon exited ${exitCode} on SIGTERM, expected 0`);

    console.log(
      `API insert latency: job row + queue entry (two autocommit statements) every ${PERIOD_MS} ms for ` +
        `${seconds} s, from another process (one run)`,
    );
    console.log(
      `  ${BACKLOG} no-op jobs queued; daemon --concurrency 2 --runner-reuse 0   p50        p99        max  inserts`,
    );
    console.log(`  no daemon (baseline)                                       ${summary(baseline)}`);
    console.log(`  daemon draining the backlog                                ${summary(live)}`);
    const p99 = percentile(live, 99);
    const baseP99 = percentile(baseline, 99);
    console.log(
      `  p99 ${p99.toFixed(1)} ms, ${(p99 / baseP99).toFixed(1)}x baseline (goal p99 <= ${GOAL_P99_MS} ms: ` +
        `${p99 <= GOAL_P99_MS ? 'met' : 'NOT met'}); max ${(Math.max(...live) / Math.max(...baseline)).toFixed(1)}x baseline`,
    );
    console.log(
      `  the daemon completed ${completed} jobs in the window (${(completed / seconds).toFixed(0)} jobs/s)`,
    );
  } finally {
    await inserter.close();
    workspace.remove();
  }
}
