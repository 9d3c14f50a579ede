/**
 * How soon `jobs cancel` stops a running job: the cancel request written (JobStore.cancelJob, as
 * the CLI does) to the job in `error` "cancelled", its runner killed by the daemon that runs it.
 * The daemon looks for cancel requests every second, so the expected median is about half that
 * plus the kill; the goal is within 2 s. SQLite, and PostgreSQL when BENCH_DATABASE_URL's server answers.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { JobStore } from '../worker/store/job-store.js';
import { openJobStore } from '../worker/store/open-job-store.js';
import { createBenchDir, INPUT_FILES, ms, percentile, startDaemon, within } from './helpers/daemon-bench.js';

const ROUNDS = Number(process.env.BENCH_CANCEL_ROUNDS ?? 20);
const SERVER_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

async function cancelLatencies(databaseUrl: string, dir: string): Promise<number[]> {
  const store: JobStore = await openJobStore(databaseUrl, { ensureSchema: true });
  const daemon = startDaemon(dir, ['--tasks', 'sleep'], () => {}, {
    DATABASE_URL: databaseUrl,
  });
  const latencies: number[] = [];
  try {
    await within(daemon.started, 60_000, '"worker started"');
    for (let round = 0; round < ROUNDS; round += 1) {
      const jobId = `cancel-${round}`;
      await store.insertJob({
        jobId,
        taskType: 'sleep',
        inputFileSource: 'upload',
        inputFiles: [{ ...JSON.parse(INPUT_FILES)[0], metadata: { seconds: 600 } }],
        priority: 5,
        maxRetries: 3,
        createdBy: null,
      });
      while ((await store.getJob(jobId))?.status !== 'processing') await sleep(5);
      await sleep(Math.random() * 1000); // anywhere in the daemon's one-second check
      const requested = performance.now();
      const outcome = await store.cancelJob(jobId);
      if (outcome.kind !== 'cancel-requested')
        throw new Error(`cancel of ${jobId}: ${JSON.stringify(outcome)}`);
      for (;;) {
        const job = await store.getJob(jobId);
        if (job?.status === 'error') {
          if (job.error_message !== 'cancelled') throw new Error(`${jobId} ended with ${job.error_message}`);
          break;
        }
        await sleep(5);
      }
      latencies.push(performance.now() - requested);
    }
  } finally {
    await daemon.stop();
    await store.close();
  }
  return latencies;
}

function report(label: string, latencies: number[]): void {
  const worst = Math.max(...latencies);
  console.log(
    `  ${label.padEnd(12)} median ${ms(percentile(latencies, 50))}   p90 ${ms(percentile(latencies, 90))}   max ${ms(worst)}   goal within 2 s: ${worst <= 2000 ? 'met' : 'NOT met'}`,
  );
}

export async function benchCancelLatency(): Promise<void> {
  console.log(`cancel of a running job, request to 'cancelled' in the database, ${ROUNDS} rounds (one run)`);
  const sqliteDir = createBenchDir();
  try {
    report('SQLite', await cancelLatencies(sqliteDir.databasePath, sqliteDir.dir));
  } finally {
    sqliteDir.remove();
  }
  const admin = new pg.Client({ connectionString: SERVER_URL });
  try {
    await admin.connect();
  } catch (error) {
    console.log(`  PostgreSQL   skipped: ${(error as Error).message}`);
    return;
  }
  const name = `media_worker_bench_cancel_${process.pid}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const pgDir = createBenchDir();
  try {
    report('PostgreSQL', await cancelLatencies(url.toString(), pgDir.dir));
  } finally {
    pgDir.remove();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}
