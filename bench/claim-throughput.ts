/**
 * Claim + complete through the SQLite store, each figure a ratio from one run:
 * - at 1,000,000 queued jobs against 1,000 queued (the claim must not grow with the backlog), from
 *   a backlog that holds still, and with a job arriving (inserted as the API does, untimed) after
 *   each claim, which the store then reads into its ready index on its own time;
 * - against the best hand-written better-sqlite3 queue: one table, an index in claim order, an
 *   autocommit `UPDATE … RETURNING` to claim and an `UPDATE` to complete;
 * - against the fewest writes any queue on the API's tables must make (status changes on `jobs`,
 *   which the API indexes). WAL pages written per job say where the time goes.
 * Priorities 0–10 are spread over the backlog. The store is opened as the daemon opens it, with
 * SQLite's default checkpoints like the raw queue; one more line opens it as runners do, which
 * checkpoint the WAL early for the API's sake (StoreOpenOptions.upkeep).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteJobStore } from '../worker/store/sqlite/sqlite-job-store.js';

const TIMED_JOBS = Number(process.env.BENCH_CLAIM_JOBS ?? 20_000);
const LARGE_BACKLOG = Number(process.env.BENCH_CLAIM_BACKLOG ?? 1_000_000);
const SMALL_BACKLOG = 1000;
const WAL_FRAME_BYTES = 4096 + 24;

const INSERT_JOB = `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files,
  status, progress, created_at, retry_count, max_retries) VALUES (?, 'bench', 'upload', 'x', '[{"path":"x"}]', '[]', 'queued', 0, ?, 0, 3)`;
const INSERT_ENTRY = 'INSERT INTO queue_entries (job_id, priority, enqueued_at) VALUES (?, ?, ?)';

interface Figures {
  microseconds: number;
  frames: number;
}

/** Inserts jobs as the API does (job, then its queue entry); returns a function adding one more. */
function apiInserter(databasePath: string, backlog: number): { addOne(): void; close(): void } {
  const db = new Database(databasePath, { timeout: 15_000 });
  db.pragma('journal_mode = WAL');
  const insertJob = db.prepare(INSERT_JOB);
  const insertEntry = db.prepare(INSERT_ENTRY);
  let next = 0;
  const addOne = () => {
    const jobId = `job-${next}`;
    insertJob.run(jobId, Date.now());
    insertEntry.run(jobId, next % 11, Date.now());
    next += 1;
  };
  db.transaction(() => {
    for (let i = 0; i < backlog; i += 1) addOne();
  })();
  return { addOne, close: () => db.close() };
}

function walFrames(databasePath: string): number {
  try {
    return Math.max(0, (fs.statSync(`${databasePath}-wal`).size - 32) / WAL_FRAME_BYTES);
  } catch {
    return 0;
  }
}

/** WAL pages one job writes, over 200 jobs with checkpoints held off (untimed). */
async function countFrames(databasePath: string, oneJob: () => Promise<void> | void): Promise<number> {
  const holder = new Database(databasePath);
  holder.pragma('wal_checkpoint(TRUNCATE)');
  // An open read transaction keeps every connection's automatic checkpoint from resetting the WAL.
  holder.exec('BEGIN');
  holder.prepare('SELECT count(*) FROM sqlite_master').get();
  const before = walFrames(databasePath);
  for (let i = 0; i < 200; i += 1) await oneJob();
  const frames = (walFrames(databasePath) - before) / 200;
  holder.exec('COMMIT');
  holder.close();
  return frames;
}

/** Times `oneJob` TIMED_JOBS times; `between` (untimed) runs after each. */
async function timed(oneJob: () => Promise<void> | void, between?: () => void): Promise<number> {
  let elapsed = 0;
  for (let i = 0; i < TIMED_JOBS; i += 1) {
    const started = performance.now();
    await oneJob();
    elapsed += performance.now() - started;
    between?.();
  }
  return (elapsed / TIMED_JOBS) * 1000;
}

/**
 * Microseconds per claim + complete through the store, `backlog` queued while it runs: seeded with
 * TIMED_JOBS more when nothing arrives, else held by one arrival after each job.
 */
async function storeRun(
  dir: string,
  backlog: number,
  { arrivals = false, upkeep = false } = {},
): Promise<Figures & { buildSeconds: number }> {
  const databasePath = path.join(dir, `store-${backlog}-${arrivals}-${upkeep}.db`);
  SqliteJobStore.open(databasePath, { ensureSchema: true }).close();
  const api = apiInserter(databasePath, arrivals ? backlog : backlog + TIMED_JOBS + 200);
  const store = SqliteJobStore.open(databasePath, { ensureSchema: true, upkeep });
  // The backlog was queued before the store first looked: reading it into the ready index is the
  // one-time cost of a first start.
  const buildStarted = performance.now();
  await store.hasQueuedJobs(['bench']);
  const buildSeconds = (performance.now() - buildStarted) / 1000;
  const result = { outputFiles: [], taskOutput: { success: true } };
  const oneJob = async () => {
    const job = await store.claimNextJob({ workerId: 'bench', taskTypes: ['bench'], leaseMs: 60_000 });
    if (!job) throw new Error('the store found nothing to claim');
    await store.completeJob(job.lease, result);
  };
  const microseconds = await timed(oneJob, arrivals ? api.addOne : undefined);
  const frames = await countFrames(databasePath, oneJob);
  await store.close();
  api.close();
  return { microseconds, frames, buildSeconds };
}

/** The best hand-written queue: one table in claim order, two autocommit statements per job. */
async function rawQueueRun(dir: string, backlog: number): Promise<Figures> {
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
    for (let i = 0; i < backlog + TIMED_JOBS + 200; i += 1) insert.run(i % 11, Date.now());
  })();
  const claim = db.prepare(
    `UPDATE queue SET status = 'claimed' WHERE id = (SELECT id FROM queue WHERE task_type = 'bench' AND status = 'queued'
       ORDER BY priority DESC, created_at, id LIMIT 1) RETURNING id, input_files`,
  );
  const complete = db.prepare(
    `UPDATE queue SET status = 'completed', output_files = ?, task_output = ?, completed_at = ? WHERE id = ? AND status = 'claimed'`,
  );
  const oneJob = () => {
    const row = claim.get() as { id: number } | undefined;
    if (!row) throw new Error('the raw queue found nothing to claim');
    complete.run('[]', '{"success":true}', Date.now(), row.id);
  };
  const microseconds = await timed(oneJob);
  const frames = await countFrames(databasePath, oneJob);
  db.close();
  return { microseconds, frames };
}

/**
 * The fewest writes a queue on the API's tables makes: a status change on `jobs` to claim and one
 * to complete (the API's ix_jobs_status moves each time), FIFO by id with no priority and no lease.
 */
async function apiTablesFloorRun(dir: string, backlog: number): Promise<Figures> {
  const databasePath = path.join(dir, 'floor.db');
  const setup = new Database(databasePath);
  setup.pragma('journal_mode = WAL');
  setup.exec(fs.readFileSync(new URL('../../docs/media_store-v1.sql', import.meta.url), 'utf8'));
  setup.close();
  const api = apiInserter(databasePath, backlog + TIMED_JOBS + 200);
  api.close();
  const db = new Database(databasePath, { timeout: 15_000 });
  db.pragma('synchronous = NORMAL');
  const claim = db.prepare(
    `UPDATE jobs SET status = 'claimed' WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1)
     RETURNING id, input_files`,
  );
  const complete = db.prepare(
    `UPDATE jobs SET status = 'completed', progress = 100, output_files = ?, task_output = ?, completed_at = ?
     WHERE id = ? AND status = 'claimed'`,
  );
  const oneJob = () => {
    const row = claim.get() as { id: number } | undefined;
    if (!row) throw new Error('the floor queue found nothing to claim');
    complete.run('[]', '{"success":true}', Date.now(), row.id);
  };
  const microseconds = await timed(oneJob);
  const frames = await countFrames(databasePath, oneJob);
  db.close();
  return { microseconds, frames };
}

export async function benchClaimThroughput(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-bench-'));
  try {
    const small = await storeRun(dir, SMALL_BACKLOG);
    const large = await storeRun(dir, LARGE_BACKLOG);
    const smallArriving = await storeRun(dir, SMALL_BACKLOG, { arrivals: true });
    const largeArriving = await storeRun(dir, LARGE_BACKLOG, { arrivals: true });
    const withUpkeep = await storeRun(dir, SMALL_BACKLOG, { upkeep: true });
    const raw = await rawQueueRun(dir, SMALL_BACKLOG);
    const rawLarge = await rawQueueRun(dir, LARGE_BACKLOG);
    const floor = await apiTablesFloorRun(dir, SMALL_BACKLOG);

    const n = (count: number) => count.toLocaleString('en');
    const line = (label: string, microseconds: number, note = '') =>
      console.log(`  ${label.padEnd(60)}${(1e6 / microseconds).toFixed(0).padStart(7)} jobs/s${note}`);
    const ratio = (numerator: number, denominator: number) => (numerator / denominator).toFixed(2);
    console.log(`claim + complete, ${TIMED_JOBS} jobs timed (one run)`);
    line(`store, ${n(SMALL_BACKLOG)} queued (+ the jobs timed)`, small.microseconds);
    line(
      `store, ${n(LARGE_BACKLOG)} queued`,
      large.microseconds,
      `   ratio ${ratio(small.microseconds, large.microseconds)} to ${n(SMALL_BACKLOG)} (goal >= 0.8)`,
    );
    line(`store, ${n(SMALL_BACKLOG)} queued, a job arriving after each`, smallArriving.microseconds);
    line(
      `store, ${n(LARGE_BACKLOG)} queued, a job arriving after each`,
      largeArriving.microseconds,
      `   ratio ${ratio(smallArriving.microseconds, largeArriving.microseconds)} to ${n(SMALL_BACKLOG)}`,
    );
    line(`store, ${n(SMALL_BACKLOG)} queued, checkpoints at 250 pages (as runners)`, withUpkeep.microseconds);
    line(
      `raw one-table queue, ${n(SMALL_BACKLOG)} queued`,
      raw.microseconds,
      `   store/raw ${ratio(raw.microseconds, small.microseconds)} (goal >= 0.5)`,
    );
    line(
      `raw one-table queue, ${n(LARGE_BACKLOG)} queued`,
      rawLarge.microseconds,
      `   ratio ${ratio(raw.microseconds, rawLarge.microseconds)} to ${n(SMALL_BACKLOG)}`,
    );
    line(
      `floor on the API's tables (status changes alone)`,
      floor.microseconds,
      `   store/floor ${ratio(floor.microseconds, small.microseconds)}; floor/raw ${ratio(raw.microseconds, floor.microseconds)}`,
    );
    console.log(
      `  reading ${n(LARGE_BACKLOG)} jobs queued before the store first looked: ${large.buildSeconds.toFixed(1)} s (untimed, once)`,
    );
    console.log(
      `  WAL pages written per job: store ${small.frames.toFixed(1)} (at ${n(LARGE_BACKLOG)}: ${large.frames.toFixed(1)}), ` +
        `raw ${raw.frames.toFixed(1)}, floor ${floor.frames.toFixed(1)}`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
