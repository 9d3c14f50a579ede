/**
 * Claim + complete through the SQLite store, each figure a ratio from one run:
 * - at 1,000,000 queued jobs against 1,000 queued (the claim must not grow with the backlog), from
 *   a backlog that holds still, and with a job arriving (inserted as the API does, untimed) after
 *   each claim, which the store then reads into its ready index on its own time;
 * - against the best hand-written better-sqlite3 queue: one table, an index in claim order, an
 *   autocommit `UPDATE … RETURNING` to claim and an `UPDATE` to complete;
 * - against the fewest writes any queue on the API's tables must make (status changes on `jobs`,
 *   which the API indexes). WAL pages written per job say where the time goes.
 * Every queue is set up first; then each is timed in blocks of BLOCK_JOBS, in turn, so that load on
 * the machine meanwhile falls on all of them alike. Job ids are UUIDs, as the API's are.
 * Priorities 0–10 are spread over the backlog. The store is opened as the daemon opens it, with
 * SQLite's default checkpoints like the raw queue; one more line opens it as runners do, which
 * checkpoint the WAL early for the API's sake (StoreOpenOptions.upkeep).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteJobStore } from '../worker/store/sqlite/sqlite-job-store.js';
import { INSERT_ENTRY_SQL } from './helpers/daemon-bench.js';
import {
  claimAndComplete,
  count,
  rateLine,
  ratio,
  type TimedQueue,
  timedInTurn,
} from './helpers/timed-in-turn.js';

const TIMED_JOBS = Number(process.env.BENCH_CLAIM_JOBS ?? 20_000);
const LARGE_BACKLOG = Number(process.env.BENCH_CLAIM_BACKLOG ?? 1_000_000);
const SMALL_BACKLOG = 1000;
/** Jobs each queue runs untimed: a warm-up before the timed blocks, and the WAL pages counted after. */
const WARM_UP_JOBS = 200;
const FRAME_COUNT_JOBS = 200;
const UNTIMED_JOBS = WARM_UP_JOBS + FRAME_COUNT_JOBS;
/** Jobs timed on one queue before the next queue's turn. */
const BLOCK_JOBS = 500;
const WAL_FRAME_BYTES = 4096 + 24;

const INSERT_JOB = `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files,
  status, progress, created_at, retry_count, max_retries) VALUES (?, 'bench', 'upload', 'x', '[{"path":"x"}]', '[]', 'queued', 0, ?, 0, 3)`;

interface QueueUnderTest extends TimedQueue {
  databasePath: string;
  close(): Promise<void> | void;
}

/** Inserts jobs as the API does (job, then its queue entry, a UUID for job_id); returns a function
 * adding one more. */
function apiInserter(databasePath: string, backlog: number): { addOne(): void; close(): void } {
  const db = new Database(databasePath, { timeout: 15_000 });
  db.pragma('journal_mode = WAL');
  const insertJob = db.prepare(INSERT_JOB);
  const insertEntry = db.prepare(INSERT_ENTRY_SQL);
  let next = 0;
  const addOne = () => {
    const jobId = randomUUID();
    insertJob.run(jobId, Date.now());
    insertEntry.run(jobId, next % 11, Date.now());
    next += 1;
  };
  db.transaction(() => {
    for (let i = 0; i < backlog; i += 1) addOne();
  })();
  return { addOne, close: () => db.close() };
}

/**
 * Writes the setup's pages back into the database file and syncs it (untimed): a million jobs
 * inserted leave hundreds of megabytes for the OS to flush, and the first checkpoint's fsync in the
 * timed loop would otherwise wait for all of it.
 */
function settle(databasePath: string): void {
  const db = new Database(databasePath);
  db.pragma('synchronous = FULL');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

function walFrames(databasePath: string): number {
  try {
    return Math.max(0, (fs.statSync(`${databasePath}-wal`).size - 32) / WAL_FRAME_BYTES);
  } catch {
    return 0;
  }
}

/** WAL pages one job writes, over FRAME_COUNT_JOBS jobs with checkpoints held off (untimed). */
async function countFrames({ databasePath, oneJob }: QueueUnderTest): Promise<number> {
  const holder = new Database(databasePath);
  holder.pragma('wal_checkpoint(TRUNCATE)');
  // An open read transaction keeps every connection's automatic checkpoint from resetting the WAL.
  holder.exec('BEGIN');
  holder.prepare('SELECT count(*) FROM sqlite_master').get();
  const before = walFrames(databasePath);
  for (let i = 0; i < FRAME_COUNT_JOBS; i += 1) await oneJob();
  const frames = (walFrames(databasePath) - before) / FRAME_COUNT_JOBS;
  holder.exec('COMMIT');
  holder.close();
  return frames;
}

/**
 * The store with `backlog` queued while it runs: seeded with every job the run takes when nothing
 * arrives, else held by one arrival after each job.
 */
async function storeQueue(
  dir: string,
  backlog: number,
  { arrivals = false, upkeep = false } = {},
): Promise<QueueUnderTest & { buildSeconds: number }> {
  const databasePath = path.join(dir, `store-${backlog}-${arrivals}-${upkeep}.db`);
  SqliteJobStore.open(databasePath, { ensureSchema: true }).close();
  const api = apiInserter(databasePath, arrivals ? backlog : backlog + TIMED_JOBS + UNTIMED_JOBS);
  const store = SqliteJobStore.open(databasePath, { ensureSchema: true, upkeep });
  // The backlog was queued before the store first looked: reading it into the ready index is the
  // one-time cost of a first start.
  const buildStarted = performance.now();
  await store.hasQueuedJobs(['bench']);
  const buildSeconds = (performance.now() - buildStarted) / 1000;
  settle(databasePath);
  return {
    databasePath,
    buildSeconds,
    oneJob: claimAndComplete(store, 'bench'),
    between: arrivals ? api.addOne : undefined,
    async close() {
      await store.close();
      api.close();
    },
  };
}

/** The best hand-written queue: one table in claim order, two autocommit statements per job. */
function rawQueue(dir: string, backlog: number): QueueUnderTest {
  const databasePath = path.join(dir, `raw-${backlog}.db`);
  const db = new Database(databasePath, { timeout: 15_000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE queue (id INTEGER PRIMARY KEY, task_type TEXT, priority INTEGER, created_at INTEGER,
      status TEXT, input_files TEXT, output_files TEXT, task_output TEXT, completed_at INTEGER);
    CREATE INDEX queue_order ON queue (task_type, priority DESC, created_at, id) WHERE status = 'queued';`);
  const insert = db.prepare(
    `INSERT INTO queue (task_type, priority, created_at, status, input_files) VALUES ('bench', ?, ?, 'queued', '[{"path":"x"}]')`,
  );
  db.transaction(() => {
    for (let i = 0; i < backlog + TIMED_JOBS + UNTIMED_JOBS; i += 1) insert.run(i % 11, Date.now());
  })();
  settle(databasePath);
  return twoStatementQueue(
    databasePath,
    db,
    `UPDATE queue SET status = 'claimed' WHERE id = (SELECT id FROM queue WHERE task_type = 'bench' AND status = 'queued'
       ORDER BY priority DESC, created_at, id LIMIT 1) RETURNING id, input_files`,
    `UPDATE queue SET status = 'completed', output_files = ?, task_output = ?, completed_at = ? WHERE id = ? AND status = 'claimed'`,
  );
}

/**
 * The fewest writes a queue on the API's tables makes: a status change on `jobs` to claim and one
 * to complete (the API's ix_jobs_status moves each time), FIFO by id with no priority and no lease.
 */
function apiTablesFloorQueue(dir: string, backlog: number): QueueUnderTest {
  const databasePath = path.join(dir, 'floor.db');
  const setup = new Database(databasePath);
  setup.pragma('journal_mode = WAL');
  setup.exec(fs.readFileSync(new URL('../../docs/media_store-v1.sql', import.meta.url), 'utf8'));
  setup.close();
  apiInserter(databasePath, backlog + TIMED_JOBS + UNTIMED_JOBS).close();
  settle(databasePath);
  const db = new Database(databasePath, { timeout: 15_000 });
  db.pragma('synchronous = NORMAL');
  return twoStatementQueue(
    databasePath,
    db,
    `UPDATE jobs SET status = 'claimed' WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1)
     RETURNING id, input_files`,
    `UPDATE jobs SET status = 'completed', progress = 100, output_files = ?, task_output = ?, completed_at = ?
     WHERE id = ? AND status = 'claimed'`,
  );
}

/**
 * A queue of two autocommit statements on `db`: `claimSql` takes a row and returns its id,
 * `completeSql` (output files, task output, completed_at, id) finishes it.
 */
function twoStatementQueue(
  databasePath: string,
  db: Database.Database,
  claimSql: string,
  completeSql: string,
): QueueUnderTest {
  const claim = db.prepare(claimSql);
  const complete = db.prepare(completeSql);
  return {
    databasePath,
    oneJob() {
      const row = claim.get() as { id: number } | undefined;
      if (!row) throw new Error(`${databasePath} had nothing to claim`);
      complete.run('[]', '{"success":true}', Date.now(), row.id);
    },
    close() {
      db.close();
    },
  };
}

export async function benchClaimThroughput(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-bench-'));
  const queues: QueueUnderTest[] = [];
  const add = <Queue extends QueueUnderTest>(queue: Queue): Queue => {
    queues.push(queue);
    return queue;
  };
  try {
    const small = add(await storeQueue(dir, SMALL_BACKLOG));
    const large = add(await storeQueue(dir, LARGE_BACKLOG));
    add(await storeQueue(dir, SMALL_BACKLOG, { arrivals: true }));
    const largeArriving = add(await storeQueue(dir, LARGE_BACKLOG, { arrivals: true }));
    add(await storeQueue(dir, SMALL_BACKLOG, { upkeep: true }));
    const rawSmall = add(rawQueue(dir, SMALL_BACKLOG));
    add(rawQueue(dir, LARGE_BACKLOG));
    const floorQueue = add(apiTablesFloorQueue(dir, SMALL_BACKLOG));
    const [
      storeSmall = 0,
      storeLarge = 0,
      arrivingSmall = 0,
      arrivingLarge = 0,
      withUpkeep = 0,
      raw = 0,
      rawLarge = 0,
      floor = 0,
    ] = await timedInTurn(queues, { timedJobs: TIMED_JOBS, blockJobs: BLOCK_JOBS, warmUpJobs: WARM_UP_JOBS });
    const smallFrames = await countFrames(small);
    const largeFrames = await countFrames(large);
    const rawFrames = await countFrames(rawSmall);
    const floorFrames = await countFrames(floorQueue);

    const n = count;
    const line = rateLine(60);
    console.log(
      `claim + complete, ${n(TIMED_JOBS)} jobs timed per line, in blocks of ${BLOCK_JOBS} taken in turn (one run)`,
    );
    line(`store, ${n(SMALL_BACKLOG)} queued (+ the jobs timed)`, storeSmall);
    line(
      `store, ${n(LARGE_BACKLOG)} queued`,
      storeLarge,
      `   ratio ${ratio(storeSmall, storeLarge)} to ${n(SMALL_BACKLOG)} (goal >= 0.8)`,
    );
    line(`store, ${n(SMALL_BACKLOG)} queued, a job arriving after each`, arrivingSmall);
    line(
      `store, ${n(LARGE_BACKLOG)} queued, a job arriving after each`,
      arrivingLarge,
      `   ratio ${ratio(arrivingSmall, arrivingLarge)} to ${n(SMALL_BACKLOG)}`,
    );
    line(`store, ${n(SMALL_BACKLOG)} queued, checkpoints at 250 pages (as runners)`, withUpkeep);
    line(
      `raw one-table queue, ${n(SMALL_BACKLOG)} queued`,
      raw,
      `   store/raw ${ratio(raw, storeSmall)} (goal >= 0.5)`,
    );
    line(
      `raw one-table queue, ${n(LARGE_BACKLOG)} queued`,
      rawLarge,
      `   ratio ${ratio(raw, rawLarge)} to ${n(SMALL_BACKLOG)}`,
    );
    line(
      `floor on the API's tables (status changes alone)`,
      floor,
      `   store/floor ${ratio(floor, storeSmall)}; floor/raw ${ratio(raw, floor)}`,
    );
    console.log(
      `  reading ${n(LARGE_BACKLOG)} jobs queued before the store first looked: ` +
        `${large.buildSeconds.toFixed(1)} s (untimed, once; with arrivals ${largeArriving.buildSeconds.toFixed(1)} s)`,
    );
    console.log(
      `  WAL pages written per job: store ${smallFrames.toFixed(1)} (at ${n(LARGE_BACKLOG)}: ${largeFrames.toFixed(1)}), ` +
        `raw ${rawFrames.toFixed(1)}, floor ${floorFrames.toFixed(1)}`,
    );
  } finally {
    for (const queue of queues) await queue.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
