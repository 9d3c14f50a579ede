/**
 * PostgreSQL databases for benchmarks: each on BENCH_DATABASE_URL's server (by default the local
 * one), made for one measurement and dropped afterwards, and jobs queued in them as the API does.
 */
import pg from 'pg';
import { INPUT_FILES, INPUT_PATH } from './daemon-bench.js';

const SERVER_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A new database. `durable: false` makes every connection to it commit without waiting for the
 * WAL to reach the disk (`synchronous_commit = off`), which leaves what the queries themselves cost.
 */
export async function createBenchDatabase(label: string, { durable = true } = {}): Promise<BenchDatabase> {
  const name = `media_worker_bench_${label}_${process.pid}`;
  const admin = new pg.Client({ connectionString: SERVER_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
    if (!durable) await admin.query(`ALTER DATABASE ${name} SET synchronous_commit = off`);
  } finally {
    await admin.end();
  }
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const dropper = new pg.Client({ connectionString: SERVER_URL });
      await dropper.connect();
      try {
        await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await dropper.end();
      }
    },
  };
}

export async function withDatabase<T>(label: string, work: (url: string) => Promise<T>): Promise<T> {
  const database = await createBenchDatabase(label);
  try {
    return await work(database.url);
  } finally {
    await database.drop();
  }
}

export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
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
export async function seedJobs(url: string, taskType: string, count: number): Promise<void> {
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
    // The setup's writes flushed before anything is timed (a superuser's right; skipped otherwise).
    await client.query('CHECKPOINT').catch(() => undefined);
  });
}
