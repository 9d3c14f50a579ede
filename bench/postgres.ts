/**
 * The PostgreSQL store, each figure a ratio from one run:
 * - claim + complete (postgres-claim.ts);
 * - no-op jobs per second end to end with 8 daemons × 2 slots against 1 daemon × 2 slots;
 * - enqueue→start of a job the API inserts into an idle daemon (LISTEN/NOTIFY; poll interval 5 s),
 *   and the idle daemon's CPU.
 * Each run has a database of its own on BENCH_DATABASE_URL's server (by default the local one),
 * dropped afterwards.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { PostgresJobStore } from '../worker/store/postgres/postgres-job-store.js';
import { seedJobs, withClient, withDatabase } from './helpers/bench-database.js';
import {
  createBenchDir,
  INPUT_FILES,
  INPUT_PATH,
  ms,
  percentile,
  startDaemon,
  within,
} from './helpers/daemon-bench.js';
import { type DrainResult, drainWith } from './many-daemons.js';
import { postgresClaimFigures } from './postgres-claim.js';
import { IDLE_SETTLE_MS, idleCpu } from './wake-up.js';

const DAEMON_JOBS = Number(process.env.BENCH_PG_DAEMON_JOBS ?? 3000);
const IDLE_SECONDS = 30;

async function drainPostgres(daemons: number): Promise<DrainResult> {
  return withDatabase(`daemons_${daemons}`, async (url) => {
    const workspace = createBenchDir();
    try {
      (await PostgresJobStore.open(url, { ensureSchema: true })).close();
      await seedJobs(url, 'noop', DAEMON_JOBS);
      return await drainWith(daemons, DAEMON_JOBS, { dir: workspace.dir, databaseUrl: url });
    } finally {
      workspace.remove();
    }
  });
}

/** An idle daemon; jobs inserted one at a time as the API does; started_at - created_at of each. */
async function wakeUp(
  jobs: number,
): Promise<{ delays: number[]; idle: { daemon: number; runners: number } }> {
  return withDatabase('wake_up', async (url) => {
    const workspace = createBenchDir();
    (await PostgresJobStore.open(url, { ensureSchema: true })).close();
    const daemon = startDaemon(workspace.dir, ['--concurrency', '1', '--runner-reuse', '0'], () => {}, {
      DATABASE_URL: url,
    });
    try {
      await within(daemon.started, 60_000, '"worker started"');
      const delays = await withClient(url, async (api) => {
        const found: number[] = [];
        for (let i = 0; i < jobs; i += 1) {
          const jobId = `wake-${i}`;
          await api.query(
            `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files,
               status, progress, created_at, retry_count, max_retries)
             VALUES ($1, 'noop', 'upload', $2, $3, '[]', 'queued', 0, $4, 0, 3)`,
            [jobId, INPUT_PATH, INPUT_FILES, Date.now()],
          );
          await api.query('INSERT INTO queue_entries (job_id, priority, enqueued_at) VALUES ($1, 5, $2)', [
            jobId,
            Date.now(),
          ]);
          for (const deadline = Date.now() + 30_000; ; ) {
            const { rows } = await api.query<{
              status: string;
              created_at: number;
              started_at: string | null;
            }>('SELECT status, created_at, started_at FROM jobs WHERE job_id = $1', [jobId]);
            const row = rows[0];
            if (row?.status === 'completed' && row.started_at !== null) {
              found.push(Number(row.started_at) - Number(row.created_at));
              break;
            }
            if (Date.now() > deadline) throw new Error(`bench job ${jobId} not completed after 30 s`);
            await sleep(2);
          }
          await sleep(20 + Math.random() * 80);
        }
        return found;
      });
      await sleep(IDLE_SETTLE_MS);
      const idle = await idleCpu(daemon.pid, IDLE_SECONDS);
      return { delays, idle };
    } finally {
      await daemon.stop();
      workspace.remove();
    }
  });
}

const n = (count: number) => count.toLocaleString('en');

async function wakeUpFigures(): Promise<void> {
  const { delays, idle } = await wakeUp(50);
  const median = percentile(delays, 50);
  console.log(
    'PostgreSQL: wake-up, 50 no-op jobs inserted one at a time into an idle daemon (poll interval 5 s; one run)',
  );
  console.log(
    `  enqueue→start median ${ms(median)}   p90 ${ms(percentile(delays, 90))}   goal median < 50 ms: ${median < 50 ? 'met' : 'NOT met'}`,
  );
  console.log(
    `  idle CPU over ${IDLE_SECONDS} s: ${(idle.daemon + idle.runners).toFixed(2)} % of one core (daemon ${idle.daemon.toFixed(2)} %, runner ${idle.runners.toFixed(2)} %)`,
  );
}

async function manyDaemonFigures(): Promise<void> {
  const one = await drainPostgres(1);
  const eight = await drainPostgres(8);
  console.log(
    `PostgreSQL: ${n(DAEMON_JOBS)} no-op jobs end to end, first claim to last completion (one run)`,
  );
  console.log(
    `  1 daemon  x 2 slots   ${one.jobsPerSecond.toFixed(1).padStart(8)} jobs/s   (${one.seconds.toFixed(2)} s)`,
  );
  console.log(
    `  8 daemons x 2 slots   ${eight.jobsPerSecond.toFixed(1).padStart(8)} jobs/s   (${eight.seconds.toFixed(2)} s)   ` +
      `ratio ${(eight.jobsPerSecond / one.jobsPerSecond).toFixed(2)} to 1 daemon, on ${os.availableParallelism()} cores; every job once`,
  );
}

/** BENCH_PG_PARTS picks some of claim, wake-up and daemons (all by default). */
export async function benchPostgres(): Promise<void> {
  const parts = (process.env.BENCH_PG_PARTS ?? 'claim,wake-up,daemons').split(',');
  if (parts.includes('claim')) await postgresClaimFigures();
  if (parts.includes('wake-up')) await wakeUpFigures();
  if (parts.includes('daemons')) await manyDaemonFigures();
}
