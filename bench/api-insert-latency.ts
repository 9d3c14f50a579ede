/**
 * What a busy daemon costs the API: an API stand-in in its own process inserts a job (row, then
 * queue entry, two autocommit statements, 15 s busy timeout) every 20 ms for a fixed window, timing
 * each pair, while one daemon drains a 200,000-job backlog of the same database: first with its
 * default single slot, then with two slots (on two cores, three processes then write at once);
 * beside them, the same inserter on the same database with no daemon running.
 */
import Database from 'better-sqlite3';
import {
  type ApiInserter,
  type BenchDir,
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

const seconds = Number(process.env.BENCH_API_SECONDS ?? 20);

/** The inserter's latencies while a daemon with this many slots drains the backlog. */
async function whileDraining(
  workspace: BenchDir,
  concurrency: number,
  inserter: ApiInserter,
): Promise<{ latencies: number[]; completed: number }> {
  const daemon = startDaemon(
    workspace.dir,
    ['--concurrency', String(concurrency), '--runner-reuse', '0', '--poll-interval', '1'],
    () => {},
  );
  const reader = new Database(workspace.databasePath, { readonly: true, timeout: 15_000 });
  const completedCount = reader.prepare("SELECT count(*) FROM jobs WHERE status = 'completed'").pluck();
  let result: { latencies: number[]; completed: number };
  let exitCode: number | null;
  try {
    await within(daemon.started, 120_000, '"worker started"');
    const before = completedCount.get() as number;
    const latencies = await inserter.steady(`live-${concurrency}`, PERIOD_MS, seconds);
    result = { latencies, completed: (completedCount.get() as number) - before };
  } finally {
    reader.close();
    exitCode = await daemon.stop();
  }
  if (exitCode !== 0) throw new Error(`the daemon exited ${exitCode} on SIGTERM, expected 0`);
  return result;
}

export async function benchApiInsertLatency(): Promise<void> {
  const workspace = createBenchDir();
  const inserter = startApiInserter(workspace.databasePath);
  try {
    seedNoopJobs(workspace.databasePath, BACKLOG);
    const baseline = await inserter.steady('baseline', PERIOD_MS, seconds);

    const runs: { concurrency: number; latencies: number[]; completed: number }[] = [];
    for (const concurrency of [1, 2]) {
      runs.push({ concurrency, ...(await whileDraining(workspace, concurrency, inserter)) });
    }

    console.log(
      `API insert latency: job row + queue entry (two autocommit statements) every ${PERIOD_MS} ms for ` +
        `${seconds} s, from another process (one run)`,
    );
    console.log(
      `  ${BACKLOG} no-op jobs queued; warm runners                         p50        p99        max  inserts`,
    );
    console.log(`  no daemon (baseline)                                       ${summary(baseline)}`);
    for (const run of runs) {
      const label = `daemon draining, --concurrency ${run.concurrency}${run.concurrency === 1 ? ' (default)' : ''}`;
      console.log(`  ${label.padEnd(57)}${summary(run.latencies)}`);
      const p99 = percentile(run.latencies, 99);
      console.log(
        `    p99 ${p99.toFixed(1)} ms (goal <= ${GOAL_P99_MS} ms: ${p99 <= GOAL_P99_MS ? 'met' : 'NOT met'}), ` +
          `${(p99 / percentile(baseline, 99)).toFixed(1)}x baseline; the daemon completed ${run.completed} jobs ` +
          `(${(run.completed / seconds).toFixed(0)} jobs/s)`,
      );
    }
  } finally {
    await inserter.close();
    workspace.remove();
  }
}
