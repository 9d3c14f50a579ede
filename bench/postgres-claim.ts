/**
 * Claim + complete on PostgreSQL, each figure a ratio from one run:
 * - through the store against the best hand-written queue over `pg`: one table in claim order, a
 *   `FOR UPDATE SKIP LOCKED` claim and a `DELETE` to complete, as prepared statements on one
 *   connection (graphile-worker and pg-boss do the same two steps);
 * - against the fewest writes any queue on the API's tables makes;
 * - the store at 1,000,000 queued against 1,000 queued.
 * Every queue has a database of its own, set up first; then each is timed in blocks, in turn. The
 * same three at 1,000 queued run again, timed apart, in databases whose commits do not wait for the
 * disk (`synchronous_commit = off`): a commit's flush costs each queue the same, so where it is dear
 * (this machine's disk) it narrows the gaps, and without it what is left is the queries' own work.
 * Job ids are UUIDs, as the API's are.
 */

import pg from 'pg';
import { API_TABLES_DDL } from '../worker/store/postgres/ddl.js';
import { PostgresJobStore } from '../worker/store/postgres/postgres-job-store.js';
import { type BenchDatabase, createBenchDatabase, seedJobs } from './helpers/bench-database.js';
import { INPUT_FILES } from './helpers/daemon-bench.js';
import {
  claimAndComplete,
  count,
  rateLine,
  ratio,
  type TimedQueue,
  timedInTurn,
} from './helpers/timed-in-turn.js';

const TIMED_JOBS = Number(process.env.BENCH_PG_JOBS ?? 5000);
const LARGE_BACKLOG = Number(process.env.BENCH_PG_BACKLOG ?? 1_000_000);
const SMALL_BACKLOG = 1000;
const WARM_UP_JOBS = 200;
const BLOCK_JOBS = 250;

interface QueueUnderTest extends TimedQueue {
  close(): Promise<void>;
}

async function connected(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

async function storeQueue(database: BenchDatabase, backlog: number): Promise<QueueUnderTest> {
  (await PostgresJobStore.open(database.url, { ensureSchema: true })).close();
  await seedJobs(database.url, 'bench', backlog + TIMED_JOBS + WARM_UP_JOBS);
  const store = await PostgresJobStore.open(database.url, { ensureSchema: true, connections: 2 });
  return {
    oneJob: claimAndComplete(store, 'bench'),
    close: () => store.close(),
  };
}

/** The best hand-written queue over pg: one table in claim order, SKIP LOCKED claim, DELETE on completion. */
async function rawQueue(database: BenchDatabase, backlog: number): Promise<QueueUnderTest> {
  const client = await connected(database.url);
  await client.query(`CREATE TABLE queue (id BIGSERIAL PRIMARY KEY, task_type TEXT NOT NULL,
    priority INT NOT NULL, created_at BIGINT NOT NULL, status TEXT NOT NULL, payload TEXT NOT NULL)`);
  await client.query(
    "CREATE INDEX queue_order ON queue (task_type, priority DESC, created_at, id) WHERE status = 'queued'",
  );
  await client.query(
    `INSERT INTO queue (task_type, priority, created_at, status, payload)
     SELECT 'bench', n % 11, $1::bigint + n, 'queued', $2 FROM generate_series(1, $3::int) AS n`,
    [Date.now(), INPUT_FILES, backlog + TIMED_JOBS + WARM_UP_JOBS],
  );
  await client.query('VACUUM ANALYZE queue');
  await client.query('CHECKPOINT').catch(() => undefined);
  // Prepared (named) statements, one round trip each: the claim marks the row taken (so it stays
  // taken after the statement), the completion deletes it.
  const claim = {
    name: 'claim',
    text: `UPDATE queue SET status = 'running' WHERE id = (
             SELECT id FROM queue WHERE task_type = 'bench' AND status = 'queued'
             ORDER BY priority DESC, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING id, payload`,
  };
  const complete = { name: 'complete', text: 'DELETE FROM queue WHERE id = $1' };
  return twoStatementQueue(client, 'raw', claim, complete, (id) => [id]);
}

/**
 * The fewest writes any queue on the API's tables makes: a status change on `jobs` to claim (with
 * SKIP LOCKED) and one to complete, in no order (the first row ix_jobs_status gives), no lease, no
 * trigger of ours. Every status change moves the row in the API's ix_jobs_status, so neither
 * update can be HOT.
 */
async function apiTablesFloorQueue(database: BenchDatabase, backlog: number): Promise<QueueUnderTest> {
  const client = await connected(database.url);
  await client.query(API_TABLES_DDL);
  await seedJobs(database.url, 'bench', backlog + TIMED_JOBS + WARM_UP_JOBS);
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
  return twoStatementQueue(client, 'floor', claim, complete, (id) => [id, Date.now()]);
}

/**
 * A queue of two prepared statements on its own client, one round trip each: `claim` takes a row
 * and returns its id, `complete` finishes it with the values `completion` gives for that id.
 */
function twoStatementQueue(
  client: pg.Client,
  label: string,
  claim: pg.QueryConfig,
  complete: pg.QueryConfig,
  completion: (id: string) => unknown[],
): QueueUnderTest {
  return {
    async oneJob() {
      const { rows } = await client.query<{ id: string }>(claim);
      const row = rows[0];
      if (!row) throw new Error(`the ${label} queue found nothing to claim`);
      await client.query({ ...complete, values: completion(row.id) });
    },
    close: () => client.end(),
  };
}

export async function postgresClaimFigures(): Promise<void> {
  const databases: BenchDatabase[] = [];
  const queues: QueueUnderTest[] = [];
  const setUp = async (
    label: string,
    durable: boolean,
    make: (database: BenchDatabase) => Promise<QueueUnderTest>,
  ) => {
    const database = await createBenchDatabase(label, { durable });
    databases.push(database);
    queues.push(await make(database));
  };
  try {
    await setUp('store_small', true, (database) => storeQueue(database, SMALL_BACKLOG));
    await setUp('raw_small', true, (database) => rawQueue(database, SMALL_BACKLOG));
    await setUp('floor_small', true, (database) => apiTablesFloorQueue(database, SMALL_BACKLOG));
    await setUp('store_large', true, (database) => storeQueue(database, LARGE_BACKLOG));
    await setUp('raw_large', true, (database) => rawQueue(database, LARGE_BACKLOG));
    const turns = { timedJobs: TIMED_JOBS, blockJobs: BLOCK_JOBS, warmUpJobs: WARM_UP_JOBS };
    const [store = 0, raw = 0, floor = 0, storeLarge = 0, rawLarge = 0] = await timedInTurn(queues, turns);
    // Timed apart from the durable ones: the server has one WAL, and a durable commit would flush
    // what the others' commits left in it.
    const durableCount = queues.length;
    await setUp('store_async', false, (database) => storeQueue(database, SMALL_BACKLOG));
    await setUp('raw_async', false, (database) => rawQueue(database, SMALL_BACKLOG));
    await setUp('floor_async', false, (database) => apiTablesFloorQueue(database, SMALL_BACKLOG));
    const [storeAsync = 0, rawAsync = 0, floorAsync = 0] = await timedInTurn(
      queues.slice(durableCount),
      turns,
    );

    const n = count;
    const line = rateLine(52);
    console.log(
      `PostgreSQL: claim + complete, ${n(TIMED_JOBS)} jobs timed per line, ` +
        `in blocks of ${BLOCK_JOBS} taken in turn (one run)`,
    );
    line(`store, ${n(SMALL_BACKLOG)} queued`, store);
    line(
      `raw SKIP LOCKED queue, ${n(SMALL_BACKLOG)} queued`,
      raw,
      `   store/raw ${ratio(raw, store)} (goal >= 0.5)`,
    );
    line(
      `floor on the API's tables, ${n(SMALL_BACKLOG)} queued`,
      floor,
      `   store/floor ${ratio(floor, store)}; floor/raw ${ratio(raw, floor)}`,
    );
    line(
      `store, ${n(LARGE_BACKLOG)} queued`,
      storeLarge,
      `   ratio ${ratio(store, storeLarge)} to ${n(SMALL_BACKLOG)} (goal >= 0.8)`,
    );
    line(
      `raw SKIP LOCKED queue, ${n(LARGE_BACKLOG)} queued`,
      rawLarge,
      `   ratio ${ratio(raw, rawLarge)} to ${n(SMALL_BACKLOG)}`,
    );
    console.log('  commits not waiting for the disk (synchronous_commit = off):');
    line(`store, ${n(SMALL_BACKLOG)} queued`, storeAsync);
    line(
      `raw SKIP LOCKED queue, ${n(SMALL_BACKLOG)} queued`,
      rawAsync,
      `   store/raw ${ratio(rawAsync, storeAsync)}`,
    );
    line(
      `floor on the API's tables, ${n(SMALL_BACKLOG)} queued`,
      floorAsync,
      `   store/floor ${ratio(floorAsync, storeAsync)}; floor/raw ${ratio(rawAsync, floorAsync)}`,
    );
  } finally {
    for (const queue of queues) await queue.close();
    for (const database of databases) await database.drop();
  }
}
