/**
 * The PostgreSQL store, each figure a ratio from one run:
 * - claim + complete through the store against the best hand-written queue over `pg`: one table in
 *   claim order, a `FOR UPDATE SKIP LOCKED` claim and a `DELETE` to complete, as prepared
 *   statements on one connection (graphile-worker and pg-boss do the same two steps);
 * - the store at 1,000,000 queued against 1,000 queued;
 * - no-op jobs per second end to end with 8 daemons × 2 slots against 1 daemon × 2 slots;
 * - enqueue→start of a job the API inserts into an idle daemon (LISTEN/NOTIFY; poll interval 5 s),
 *   and the idle daemon's CPU.
 * Each run has a database of its own on BENCH_DATABASE_URL's server (by default the local one),
 * dropped afterwards.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { API_TABLES_DDL } from '../worker/store/postgres/ddl.js';
import { PostgresJobStore } from '../worker/store/postgres/postgres-job-store.js';
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
import { idleCpu } from './wake-up.js';

const SERVER_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const TIMED_JOBS = Number(process.env.BENCH_PG_JOBS ?? 5000);
const LARGE_BACKLOG = Number(process.env.BENCH_PG_BACKLOG ?? 1_000_000);
const SMALL_BACKLOG = 1000;
const DAEMON_JOBS = Number(process.env.BENCH_PG_DAEMON_JOBS ?? 3000);

async function withDatabase<T>(label: string, work: (url: string) => Promise<T>): Promise<T> {
  const name = `media_worker_bench_${label}_${process.pid}`;
  const admin = new pg.Client({ connectionString: SERVER_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  try {
    return await work(url.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * Queues `count` jobs as the API does: a `jobs` row with a UUID `job_id` and a `queue_entries` row
 * each, priorities 0–10.
 */
async function seedJobs(url: string, taskType: string, count: number): Promise<void> {
  await withClient(url, async (client) => {
    const now = Date.now() - count;
    for (let start = 0; start < count; start += 100_000) {
      const end = Math.min(count, start + 100_000) - 1;
      await client.query(
        `WITH added AS (
           INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files,
             status, progress, created_at, retry_count, max_retries)
           SELECT gen_random_uuid()::text, $1, 'upload', $2, $3, '[]', 'queued', 0, $4::bigint + n, 0, 3
           FROM generate_series($5::int, $6::int) AS n
           RETURNING job_id, created_at)
         INSERT INTO queue_entries (job_id, priority, enqueued_at)
         SELECT job_id, (created_at - $4::bigint) % 11, created_at FROM added`,
        [taskType, INPUT_PATH, INPUT_FILES, now, start, end],
      );
    }
    await client.query('VACUUM ANALYZE');
  });
}

async function timed(oneJob: () => Promise<void>): Promise<number> {
  // A few hundred untimed first: connections opened, statements planned, caches warm.
  for (let i = 0; i < 200; i += 1) await oneJob();
  const started = performance.now();
  for (let i = 0; i < TIMED_JOBS; i += 1) await oneJob();
  return ((performance.now() - started) / TIMED_JOBS) * 1000;
}

/** Microseconds per claim + complete through the store with `backlog` queued. */
async function storeRun(backlog: number): Promise<number> {
  return withDatabase(`store_${backlog}`, async (url) => {
    (await PostgresJobStore.open(url, { ensureSchema: true })).close();
    await seedJobs(url, 'bench', backlog + TIMED_JOBS + 200);
    const store = await PostgresJobStore.open(url, { ensureSchema: true, connections: 2 });
    const result = { outputFiles: [], taskOutput: { success: true } };
    try {
      return await timed(async () => {
        const job = await store.claimNextJob({ workerId: 'bench', taskTypes: ['bench'], leaseMs: 60_000 });
        if (!job) throw new Error('the store found nothing to claim');
        if (!(await store.completeJob(job.lease, result))) throw new Error('the store lost a lease');
      });
    } finally {
      await store.close();
    }
  });
}

/** The best hand-written queue over pg: one table in claim order, SKIP LOCKED claim, DELETE on completion. */
async function rawQueueRun(backlog: number): Promise<number> {
  return withDatabase(`raw_${backlog}`, (url) =>
    withClient(url, async (client) => {
      await client.query(`CREATE TABLE queue (id BIGSERIAL PRIMARY KEY, task_type TEXT NOT NULL,
        priority INT NOT NULL, created_at BIGINT NOT NULL, status TEXT NOT NULL, payload TEXT NOT NULL)`);
      await client.query(
        "CREATE INDEX queue_order ON queue (task_type, priority DESC, created_at, id) WHERE status = 'queued'",
      );
      await client.query(
        `INSERT INTO queue (task_type, priority, created_at, status, payload)
         SELECT 'bench', n % 11, $1::bigint + n, 'queued', $2 FROM generate_series(1, $3::int) AS n`,
        [Date.now(), INPUT_FILES, backlog + TIMED_JOBS + 200],
      );
      await client.query('VACUUM ANALYZE queue');
      // Prepared (named) statements, one round trip each: the claim marks the row taken (so it
      // stays taken after the statement), the completion deletes it.
      const claim = {
        name: 'claim',
        text: `UPDATE queue SET status = 'running' WHERE id = (
                 SELECT id FROM queue WHERE task_type = 'bench' AND status = 'queued'
                 ORDER BY priority DESC, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
               RETURNING id, payload`,
      };
      const complete = { name: 'complete', text: 'DELETE FROM queue WHERE id = $1' };
      return timed(async () => {
        const { rows } = await client.query<{ id: string }>(claim);
        const row = rows[0];
        if (!row) throw new Error('the raw queue found nothing to claim');
        await client.query({ ...complete, values: [row.id] });
      });
    }),
  );
}

/**
 * The fewest writes any queue on the API's tables makes: a status change on `jobs` to claim (with
 * SKIP LOCKED) and one to complete, in no order (the first row ix_jobs_status gives), no lease, no
 * trigger of ours. Every status change moves the row in the API's ix_jobs_status, so neither
 * update can be HOT.
 */
async function apiTablesFloorRun(backlog: number): Promise<number> {
  return withDatabase(`floor_${backlog}`, async (url) => {
    await withClient(url, (client) => client.query(API_TABLES_DDL));
    await seedJobs(url, 'bench', backlog + TIMED_JOBS + 200);
    return withClient(url, async (client) => {
      const claim = {
        name: 'claim',
        text: `UPDATE jobs SET status = 'claimed' WHERE id = (
                 SELECT id FROM jobs WHERE status = 'queued' LIMIT 1 FOR UPDATE SKIP LOCKED)
               RETURNING id, input_files`,
      };
      const complete = {
        name: 'complete',
        text: `UPDATE jobs SET status = 'completed', progress = 100, output_files = '[]',
                 task_output = '{"success":true}', completed_at = $2 WHERE id = $1`,
      };
      return timed(async () => {
        const { rows } = await client.query<{ id: number }>(claim);
        const row = rows[0];
        if (!row) throw new Error('the floor queue found nothing to claim');
        await client.query({ ...complete, values: [row.id, Date.now()] });
      });
    });
  });
}

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
      await sleep(1000); // the last job's writes settle before the idle window
      const idle = await idleCpu(daemon.pid, 10);
      return { delays, idle };
    } finally {
      await daemon.stop();
      workspace.remove();
    }
  });
}

const n = (count: number) => count.toLocaleString('en');
const perSecond = (microseconds: number) => (1e6 / microseconds).toFixed(0).padStart(7);

async function claimFigures(): Promise<void> {
  const small = await storeRun(SMALL_BACKLOG);
  const raw = await rawQueueRun(SMALL_BACKLOG);
  const floor = await apiTablesFloorRun(SMALL_BACKLOG);
  const large = await storeRun(LARGE_BACKLOG);
  const rawLarge = await rawQueueRun(LARGE_BACKLOG);
  console.log(`PostgreSQL: claim + complete, ${n(TIMED_JOBS)} jobs timed on one connection (one run)`);
  console.log(`  store, ${n(SMALL_BACKLOG)} queued                      ${perSecond(small)} jobs/s`);
  console.log(
    `  raw SKIP LOCKED queue, ${n(SMALL_BACKLOG)} queued      ${perSecond(raw)} jobs/s   store/raw ${(raw / small).toFixed(2)} (goal >= 0.5)`,
  );
  console.log(
    `  floor on the API's tables, ${n(SMALL_BACKLOG)} queued  ${perSecond(floor)} jobs/s   store/floor ${(floor / small).toFixed(2)}; floor/raw ${(raw / floor).toFixed(2)}`,
  );
  console.log(
    `  store, ${n(LARGE_BACKLOG)} queued                  ${perSecond(large)} jobs/s   ratio ${(small / large).toFixed(2)} to ${n(SMALL_BACKLOG)} (goal >= 0.8)`,
  );
  console.log(
    `  raw SKIP LOCKED queue, ${n(LARGE_BACKLOG)} queued  ${perSecond(rawLarge)} jobs/s   ratio ${(raw / rawLarge).toFixed(2)} to ${n(SMALL_BACKLOG)}`,
  );
}

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
    `  idle CPU over 10 s: ${(idle.daemon + idle.runners).toFixed(2)} % of one core (daemon ${idle.daemon.toFixed(2)} %, runner ${idle.runners.toFixed(2)} %)`,
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
  if (parts.includes('claim')) await claimFigures();
  if (parts.includes('wake-up')) await wakeUpFigures();
  if (parts.includes('daemons')) await manyDaemonFigures();
}
