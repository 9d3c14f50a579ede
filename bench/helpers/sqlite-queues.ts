/**
 * The hand-written queues the claim bench times the store against, each in a database file of its
 * own: the best one-table queue, the fewest writes any queue on the API's tables makes, and a queue
 * with the store's duties (queue order, leases) in as few writes as we found. And the API's inserts.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BENCH_TASK_TYPE, INPUT_FILES, INSERT_ENTRY_SQL, INSERT_JOB_SQL } from './daemon-bench.js';
import type { TimedQueue } from './timed-in-turn.js';

const API_DDL = fs.readFileSync(new URL('../../../docs/media_store-v1.sql', import.meta.url), 'utf8');

/** A queue set up in its own database file, ready to be timed. */
export interface QueueUnderTest extends TimedQueue {
  databasePath: string;
  close(): Promise<void> | void;
}

/** Inserts jobs as the API does (job, then its queue entry, a UUID for job_id); returns a function
 * adding one more. */
export function apiInserter(databasePath: string, backlog: number): { addOne(): void; close(): void } {
  const db = new Database(databasePath, { timeout: 15_000 });
  db.pragma('journal_mode = WAL');
  const insertJob = db.prepare(INSERT_JOB_SQL);
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
export function settle(databasePath: string): void {
  const db = new Database(databasePath);
  db.pragma('synchronous = FULL');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

/** The best hand-written queue: one table in claim order, two autocommit statements per job. */
export function rawQueue(dir: string, label: string, jobs: number): QueueUnderTest {
  const databasePath = path.join(dir, `raw-${label}.db`);
  const db = new Database(databasePath, { timeout: 15_000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE queue (id INTEGER PRIMARY KEY, task_type TEXT, priority INTEGER, created_at INTEGER,
      status TEXT, input_files TEXT, output_files TEXT, task_output TEXT, completed_at INTEGER);
    CREATE INDEX queue_order ON queue (task_type, priority DESC, created_at, id) WHERE status = 'queued';`);
  const insert = db.prepare(
    `INSERT INTO queue (task_type, priority, created_at, status, input_files) VALUES (?, ?, ?, 'queued', ?)`,
  );
  db.transaction(() => {
    for (let i = 0; i < jobs; i += 1) insert.run(BENCH_TASK_TYPE, i % 11, Date.now(), INPUT_FILES);
  })();
  settle(databasePath);
  return twoStatementQueue(
    databasePath,
    db,
    `UPDATE queue SET status = 'claimed' WHERE id = (SELECT id FROM queue WHERE task_type = '${BENCH_TASK_TYPE}' AND status = 'queued'
       ORDER BY priority DESC, created_at, id LIMIT 1) RETURNING id, input_files`,
    `UPDATE queue SET status = 'completed', output_files = ?, task_output = ?, completed_at = ? WHERE id = ? AND status = 'claimed'`,
  );
}

/**
 * The fewest writes a queue on the API's tables makes: a status change on `jobs` to claim and one
 * to complete (the API's ix_jobs_status moves each time), FIFO by id with no priority and no lease.
 */
export function apiTablesFloorQueue(dir: string, jobs: number): QueueUnderTest {
  const databasePath = path.join(dir, 'floor.db');
  const setup = new Database(databasePath);
  setup.pragma('journal_mode = WAL');
  setup.exec(API_DDL);
  setup.close();
  apiInserter(databasePath, jobs).close();
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

/**
 * A queue with the store's duties on the API's tables, written by hand in as few writes as we found:
 * a yardstick for any store there, not a store. Jobs are taken in queue order from a table of its
 * own keyed in that order (WITHOUT ROWID, so a row is one page and there is no second index), the
 * lease kept in that same row, the completion fenced by it, the job's status changed in `jobs`, and
 * (unless `finishedIndex` is false) the finished-jobs index the dashboard reads kept. It has none of
 * the rest: no triggers following the API's changes, no arrivals read, no retries, no recovery, and
 * its completion knows the row's whole key, which a runner's lease does not carry.
 */
export function leasedOrderedFloorQueue(
  dir: string,
  jobs: number,
  { finishedIndex = true } = {},
): QueueUnderTest {
  const databasePath = path.join(dir, `leased-floor-${finishedIndex}.db`);
  const setup = new Database(databasePath);
  setup.pragma('journal_mode = WAL');
  setup.exec(API_DDL);
  if (finishedIndex) {
    setup.exec(
      'CREATE INDEX media_worker_finished ON jobs (status, completed_at) WHERE completed_at IS NOT NULL',
    );
  }
  setup.exec(`CREATE TABLE ordered (task_type TEXT NOT NULL, priority INTEGER NOT NULL, created_at INTEGER NOT NULL,
      id INTEGER NOT NULL, job_id TEXT NOT NULL, lease_token TEXT, worker_id TEXT, lease_expires_at INTEGER,
      PRIMARY KEY (task_type, priority DESC, created_at, id)) WITHOUT ROWID;`);
  setup.close();
  apiInserter(databasePath, jobs).close();
  const db = new Database(databasePath, { timeout: 15_000 });
  db.pragma('synchronous = NORMAL');
  db.exec(`INSERT INTO ordered (task_type, priority, created_at, id, job_id)
    SELECT j.task_type, coalesce(q.priority, 5), j.created_at, j.id, j.job_id FROM jobs j LEFT JOIN queue_entries q USING (job_id)`);
  settle(databasePath);
  type Key = { task_type: string; priority: number; created_at: number; id: number; job_id: string };
  const byKey = 'task_type = @task_type AND priority = @priority AND created_at = @created_at AND id = @id';
  const head = db.prepare<[], Key>(`SELECT task_type, priority, created_at, id, job_id FROM ordered
    WHERE task_type = '${BENCH_TASK_TYPE}' AND lease_token IS NULL ORDER BY priority DESC, created_at, id LIMIT 1`);
  const take =
    db.prepare(`UPDATE jobs SET status = 'claimed' WHERE id = @id AND job_id = @job_id AND status = 'queued'
    RETURNING input_files`);
  const lease =
    db.prepare(`UPDATE ordered SET lease_token = @token, worker_id = 'bench', lease_expires_at = @expires
    WHERE ${byKey}`);
  const complete = db.prepare(`UPDATE jobs SET status = 'completed', progress = 100, output_files = '[]',
      task_output = '{"success":true}', completed_at = @now
    WHERE id = @id AND status IN ('claimed', 'processing')
      AND EXISTS (SELECT 1 FROM ordered WHERE ${byKey} AND lease_token = @token)`);
  const release = db.prepare(`DELETE FROM ordered WHERE ${byKey}`);
  const claim = db.transaction((): Key & { token: string } => {
    const key = head.get();
    if (!key || take.get(key) === undefined) throw new Error(`${databasePath} had nothing to claim`);
    const token = randomUUID();
    lease.run({ ...key, token, expires: Date.now() + 60_000 });
    return { ...key, token };
  });
  const finish = db.transaction((held: Key & { token: string }) => {
    const { task_type, priority, created_at, id, token } = held;
    if (complete.run({ task_type, priority, created_at, id, token, now: Date.now() }).changes !== 1) {
      throw new Error(`${databasePath} lost a lease`);
    }
    release.run({ task_type, priority, created_at, id });
  });
  return {
    databasePath,
    // Two transactions, as a claim and its runner's completion are.
    oneJob: () => finish.immediate(claim.immediate()),
    close() {
      db.close();
    },
  };
}
