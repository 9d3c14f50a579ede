/**
 * Claims-and-completes per second through the store, beside a raw better-sqlite3 loop running a
 * claim (UPDATE … RETURNING) and a complete (UPDATE) prepared once, on identical databases.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteJobStore } from '../worker/store/sqlite/sqlite-job-store.js';

const JOBS = Number(process.env.BENCH_CLAIM_JOBS ?? 20_000);
const OTHER_TYPE_BACKLOG = 10_000;

function seed(databasePath: string, otherTypeJobs = 0): void {
  SqliteJobStore.open(databasePath, { ensureSchema: true }).close();
  const db = new Database(databasePath);
  const insertJob = db.prepare(
    `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files, status,
       progress, created_at, retry_count, max_retries) VALUES (?, 'bench', 'upload', 'x', '[{"path":"x"}]', '[]', 'queued', 0, ?, 0, 3)`,
  );
  const insertEntry = db.prepare(
    'INSERT INTO queue_entries (job_id, priority, enqueued_at) VALUES (?, 5, ?)',
  );
  const insertOther = db.prepare(
    `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files, status,
       progress, created_at, retry_count, max_retries) VALUES (?, 'other', 'upload', 'x', '[{"path":"x"}]', '[]', 'queued', 0, ?, 0, 3)`,
  );
  db.transaction(() => {
    for (let i = 0; i < otherTypeJobs; i += 1) insertOther.run(`other-${i}`, i);
    for (let i = 0; i < JOBS; i += 1) {
      insertJob.run(`job-${i}`, otherTypeJobs + i);
      insertEntry.run(`job-${i}`, otherTypeJobs + i);
    }
  })();
  db.close();
}

async function storeLoop(databasePath: string): Promise<number> {
  const store = SqliteJobStore.open(databasePath, { ensureSchema: true });
  const result = { outputFiles: [], taskOutput: { success: true } };
  const started = performance.now();
  let done = 0;
  for (;;) {
    const job = await store.claimNextJob({ workerId: 'bench', taskTypes: ['bench'], leaseMs: 60_000 });
    if (!job) break;
    await store.completeJob(job.lease, result);
    done += 1;
  }
  const seconds = (performance.now() - started) / 1000;
  await store.close();
  if (done !== JOBS) throw new Error(`store loop completed ${done} of ${JOBS}`);
  return done / seconds;
}

function rawLoop(databasePath: string): number {
  const db = new Database(databasePath, { timeout: 15_000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const claim = db.prepare(
    `UPDATE jobs SET status = 'claimed' WHERE id = (SELECT j.id FROM jobs j LEFT JOIN queue_entries q ON q.job_id = j.job_id
       WHERE j.status = 'queued' AND j.task_type = 'bench' ORDER BY coalesce(q.priority, 5) DESC, j.created_at, j.id LIMIT 1)
     RETURNING id`,
  );
  const complete = db.prepare(
    `UPDATE jobs SET status = 'completed', progress = 100, output_files = ?, task_output = ?, completed_at = ?
     WHERE id = ? AND status = 'claimed'`,
  );
  const started = performance.now();
  let done = 0;
  for (;;) {
    const row = claim.get() as { id: number } | undefined;
    if (!row) break;
    complete.run('[]', '{"success":true}', Date.now(), row.id);
    done += 1;
  }
  const seconds = (performance.now() - started) / 1000;
  db.close();
  if (done !== JOBS) throw new Error(`raw loop completed ${done} of ${JOBS}`);
  return done / seconds;
}

export async function benchClaimThroughput(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-bench-'));
  try {
    const rawDb = path.join(dir, 'raw.db');
    const storeDb = path.join(dir, 'store.db');
    const crowdedDb = path.join(dir, 'crowded.db');
    seed(rawDb);
    seed(storeDb);
    seed(crowdedDb, OTHER_TYPE_BACKLOG);
    const raw = rawLoop(rawDb);
    const store = await storeLoop(storeDb);
    const crowded = await storeLoop(crowdedDb);
    console.log(`claim+complete, ${JOBS} jobs (one run)`);
    console.log(`  raw better-sqlite3 (2 statements)  ${raw.toFixed(0).padStart(7)} jobs/s`);
    console.log(
      `  store (leased, fenced)             ${store.toFixed(0).padStart(7)} jobs/s   ratio ${(store / raw).toFixed(2)} (goal >= 0.5)`,
    );
    console.log(
      `  store, ${OTHER_TYPE_BACKLOG} older jobs of another type queued  ${crowded.toFixed(0).padStart(7)} jobs/s   ratio ${(crowded / store).toFixed(2)} to the line above`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
