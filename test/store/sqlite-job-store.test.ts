import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { StartupError } from '../../worker/errors.js';
import type { JobStore } from '../../worker/store/job-store.js';
import { API_TABLES_DDL } from '../../worker/store/sqlite/ddl.js';
import { SqliteJobStore } from '../../worker/store/sqlite/sqlite-job-store.js';
import { repoFile, useWorkspace, type Workspace } from '../helpers/workspace.js';
import { type ApiJob, type ApiSide, describeJobStoreContract } from './job-store-contract.js';

/** The API service's DDL, as the contract documents it (docs/media_store-v1.sql). */
const CONTRACT_DDL = fs.readFileSync(repoFile('docs/media_store-v1.sql'), 'utf8');

/** The API service's writes, on a connection of its own with SQLite's default settings. */
/** `raw` runs what ApiSide has no method for, on the same connection. */
function apiConnection(databasePath: string): ApiSide & { raw: Database.Database; close(): void } {
  const db = new Database(databasePath, { timeout: 15_000 });
  db.pragma('journal_mode = WAL');
  const insertJob = db.prepare(
    `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files,
       status, progress, created_at, started_at, completed_at, task_output, error_message, retry_count,
       max_retries, created_by)
     VALUES (@jobId, @taskType, 'upload', 'in.txt', '[{"path":"in.txt"}]', '[]', 'queued', 0, @createdAt,
       NULL, NULL, NULL, NULL, 0, @maxRetries, NULL)`,
  );
  const insertEntry = db.prepare(
    'INSERT INTO queue_entries (job_id, priority, enqueued_at) VALUES (?, ?, ?)',
  );
  const insertOne = (job: ApiJob) => {
    insertJob.run({
      jobId: job.jobId,
      taskType: job.taskType,
      createdAt: job.createdAt ?? Date.now(),
      maxRetries: job.maxRetries ?? 3,
    });
    if (job.priority !== null) insertEntry.run(job.jobId, job.priority ?? 5, Date.now());
  };
  return {
    async insertJob(job) {
      insertOne(job);
    },
    async insertJobs(jobs) {
      db.transaction(() => {
        for (const job of jobs) insertOne(job);
      })();
    },
    async addQueueEntry(jobId, priority) {
      insertEntry.run(jobId, priority, Date.now());
    },
    async setPriority(jobId, priority) {
      db.prepare('UPDATE queue_entries SET priority = ? WHERE job_id = ?').run(priority, jobId);
    },
    async deleteQueueEntry(jobId) {
      db.prepare('DELETE FROM queue_entries WHERE job_id = ?').run(jobId);
    },
    async deleteJob(jobId) {
      db.transaction(() => {
        db.prepare('DELETE FROM queue_entries WHERE job_id = ?').run(jobId);
        db.prepare('DELETE FROM jobs WHERE job_id = ?').run(jobId);
      })();
    },
    async setStatus(jobId, status) {
      db.prepare('UPDATE jobs SET status = ? WHERE job_id = ?').run(status, jobId);
    },
    raw: db,
    close: () => db.close(),
  };
}

describeJobStoreContract('SqliteJobStore', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-store-'));
  const databasePath = path.join(dir, 'media_store.db');
  const store = SqliteJobStore.open(databasePath, { ensureSchema: true });
  const api = apiConnection(databasePath);
  return {
    store,
    api,
    async openAnotherStore() {
      return SqliteJobStore.open(databasePath, { ensureSchema: true });
    },
    async close() {
      api.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteJobStore on SQLite', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('the change marker holds still while no other connection writes, and moves when one does', async () => {
    const store = workspace.store;
    const first = await store.changeMarker();
    await store.listJobs({ limit: 10 });
    await store.queueOverview(0);
    // A pause, so that a marker drawn from a clock would differ: nothing else is awaited here.
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await store.changeMarker(), first, 'reads change nothing');
    const api = new Database(workspace.databasePath);
    try {
      api.prepare('UPDATE jobs SET progress = 1 WHERE 0').run();
      api.exec('CREATE TABLE IF NOT EXISTS api_scratch (x)');
    } finally {
      api.close();
    }
    assert.notEqual(await store.changeMarker(), first);
  });

  test('a job inserted exactly as the contract does (no queue entry, no worker tables) is claimed', async () => {
    const databasePath = path.join(workspace.dir, 'api.db');
    const api = new Database(databasePath);
    api.pragma('journal_mode = WAL');
    api.exec(CONTRACT_DDL);
    api
      .prepare(
        `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files,
           status, progress, created_at, started_at, completed_at, task_output, error_message, retry_count,
           max_retries, created_by)
         VALUES ('api-job', 't', 'upload', 'jobs/api-job/input/a.png', '[{"path":"jobs/api-job/input/a.png"}]',
           '[]', 'queued', 0, ?, NULL, NULL, NULL, NULL, 0, 3, 'user-1')`,
      )
      .run(Date.now());
    api.close();
    const store = SqliteJobStore.open(databasePath, { ensureSchema: true });
    try {
      const claimed = await store.claimNextJob({ workerId: 'w', taskTypes: ['t'], leaseMs: 1000 });
      assert.equal(claimed?.jobId, 'api-job');
      assert.deepEqual(JSON.parse(claimed?.inputFilesJson ?? ''), [{ path: 'jobs/api-job/input/a.png' }]);
    } finally {
      await store.close();
    }
  });

  test('a backlog queued before the worker’s ready index existed is claimed in order, retries in backoff kept', async () => {
    const databasePath = path.join(workspace.dir, 'upgraded.db');
    const old = new Database(databasePath);
    old.pragma('journal_mode = WAL');
    old.exec(CONTRACT_DDL);
    // What the previous worker version left: its state table, with one retry still in backoff.
    old.exec(`CREATE TABLE worker_job_state (job_id VARCHAR NOT NULL PRIMARY KEY, worker_id VARCHAR,
      lease_token VARCHAR, lease_expires_at BIGINT, not_before BIGINT, last_error TEXT) WITHOUT ROWID`);
    const api = apiConnection(databasePath);
    const base = Date.now() - 60_000;
    const jobs: ApiJob[] = [];
    for (let i = 0; i < 12_000; i += 1) {
      jobs.push({ jobId: `old-${i}`, taskType: 't', createdAt: base + i, priority: i === 7_000 ? 9 : 5 });
    }
    await api.insertJobs(jobs);
    old
      .prepare('INSERT INTO worker_job_state (job_id, not_before) VALUES (?, ?)')
      .run('old-0', Date.now() + 3_600_000);
    api.close();
    old.close();
    const store = SqliteJobStore.open(databasePath, { ensureSchema: true });
    try {
      const claimOne = async () =>
        (await store.claimNextJob({ workerId: 'w', taskTypes: ['t'], leaseMs: 60_000 }))?.jobId;
      assert.deepEqual(
        [await claimOne(), await claimOne(), await claimOne()],
        ['old-7000', 'old-1', 'old-2'],
      );
      assert.equal(await store.hasQueuedJobs(['t']), true);
    } finally {
      await store.close();
    }
  });

  test('a store that cannot create the worker’s missing tables now says so instead of failing later', async () => {
    const databasePath = path.join(workspace.dir, 'api-only.db');
    const api = new Database(databasePath);
    api.pragma('journal_mode = WAL');
    api.exec(CONTRACT_DDL);
    api.exec('BEGIN IMMEDIATE');
    try {
      assert.throws(
        () => SqliteJobStore.open(databasePath, { ensureSchema: false, busyTimeoutMs: 50 }),
        (error: unknown) =>
          error instanceof StartupError &&
          /lacks the worker's tables, and they could not be created now \(database is locked\)/.test(
            error.message,
          ),
      );
    } finally {
      api.exec('ROLLBACK');
      api.close();
    }
    const store = SqliteJobStore.open(databasePath, { ensureSchema: false });
    try {
      assert.deepEqual(await store.listJobs({ limit: 10 }), []);
    } finally {
      await store.close();
    }
  });

  test('the previous layout of the ready index (keyed by job_id) is replaced, and every queued job is claimed in order', async () => {
    const api = apiConnection(workspace.databasePath);
    const { raw } = api;
    try {
      const base = Date.now() - 60_000;
      await api.insertJob({ jobId: 'older', taskType: 't', createdAt: base, priority: 5 });
      await api.insertJob({ jobId: 'urgent', taskType: 't', createdAt: base + 1, priority: 9 });
      // What the previous release left: its table and trigger names, its layout, a stale copy.
      raw.exec(`DROP TABLE media_worker_ready; DROP TABLE media_worker_reranks;
        CREATE TABLE media_worker_ready (job_id VARCHAR NOT NULL PRIMARY KEY, id INTEGER, task_type VARCHAR,
          priority INTEGER, created_at BIGINT, not_before BIGINT) WITHOUT ROWID;
        INSERT INTO media_worker_ready VALUES ('gone', 999, 't', 10, 0, NULL);
        UPDATE media_worker_marks SET seen = (SELECT max(id) FROM jobs) WHERE name = 'jobs';
        UPDATE media_worker_meta SET value = 'ready index, layout 3' WHERE name = 'ready_index';`);
      const upgraded = SqliteJobStore.open(workspace.databasePath, { ensureSchema: true });
      try {
        const claimOne = async () =>
          (await upgraded.claimNextJob({ workerId: 'w', taskTypes: ['t'], leaseMs: 60_000 }))?.jobId;
        assert.deepEqual(
          [await claimOne(), await claimOne(), await claimOne()],
          ['urgent', 'older', undefined],
        );
        const key = raw
          .prepare("SELECT name FROM pragma_table_info('media_worker_ready') WHERE pk = 1")
          .pluck()
          .get();
        assert.equal(key, 'id');
      } finally {
        await upgraded.close();
      }
    } finally {
      api.close();
    }
  });

  test('a migration that rebuilds jobs drops the triggers: they come back and the index is rebuilt before a claim', async () => {
    const api = apiConnection(workspace.databasePath);
    const { raw } = api;
    const claimOne = async () =>
      (await workspace.store.claimNextJob({ workerId: 'w', taskTypes: ['t'], leaseMs: 60_000 }))?.jobId;
    const triggers = () =>
      raw
        .prepare("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'jobs'")
        .pluck()
        .get();
    try {
      const ours = triggers();
      assert.ok(ours, 'the worker keeps triggers on jobs');
      await api.insertJob({ jobId: 'before', taskType: 't', priority: 5 });
      assert.deepEqual([await claimOne(), await claimOne()], ['before', undefined]);
      // SQLite's ALTER TABLE by copy, as Alembic's batch mode does it: triggers go with the old table.
      const jobsDdl = CONTRACT_DDL.slice(CONTRACT_DDL.indexOf('CREATE TABLE IF NOT EXISTS jobs'));
      raw.exec(`BEGIN;
        ${jobsDdl.slice(0, jobsDdl.indexOf(';')).replace('IF NOT EXISTS jobs', '_alembic_tmp_jobs')};
        INSERT INTO _alembic_tmp_jobs SELECT * FROM jobs;
        DROP TABLE jobs;
        ALTER TABLE _alembic_tmp_jobs RENAME TO jobs;
        COMMIT;`);
      raw.exec(API_TABLES_DDL);
      assert.equal(triggers(), 0, 'the rebuild should have dropped the triggers on jobs');
      const base = Date.now() - 60_000;
      await api.insertJob({ jobId: 'second', taskType: 't', createdAt: base, priority: 5 });
      await api.insertJob({ jobId: 'first', taskType: 't', createdAt: base + 1, priority: 9 });
      assert.deepEqual(
        [await claimOne(), await claimOne(), await claimOne()],
        ['first', 'second', undefined],
      );
      assert.equal(triggers(), ours);
    } finally {
      api.close();
    }
  });

  test('an API statement with its own conflict clause on a queued job succeeds, and the index follows it', async () => {
    const api = apiConnection(workspace.databasePath);
    const { raw } = api;
    const claimOne = async (taskType: string) =>
      (await workspace.store.claimNextJob({ workerId: 'w', taskTypes: [taskType], leaseMs: 60_000 }))?.jobId;
    try {
      await api.insertJob({ jobId: 'resubmitted', taskType: 't' });
      await api.insertJob({ jobId: 'moved', taskType: 't' });
      assert.equal(await claimOne('nothing-queued'), undefined); // the store has read both
      // A trigger statement that met a conflict would take the API statement's conflict clause.
      raw
        .prepare(
          `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files,
             status, progress, created_at, retry_count, max_retries)
           VALUES ('resubmitted', 't', 'upload', '', '[]', '[]', 'queued', 0, 0, 0, 3)
           ON CONFLICT (job_id) DO UPDATE SET status = 'queued'`,
        )
        .run();
      raw.prepare("UPDATE OR ABORT jobs SET status = 'queued' WHERE job_id = 'resubmitted'").run();
      raw.prepare("UPDATE OR IGNORE jobs SET task_type = 'u' WHERE job_id = 'moved'").run();
      assert.deepEqual(
        [await claimOne('u'), await claimOne('t'), await claimOne('t')],
        ['moved', 'resubmitted', undefined],
      );
    } finally {
      api.close();
    }
  });

  test('a job the API rewrites with INSERT OR REPLACE under its old id is found by an idle daemon', async () => {
    const api = apiConnection(workspace.databasePath);
    const { raw } = api;
    try {
      await api.insertJob({ jobId: 'rewritten', taskType: 't' });
      const first = await workspace.store.claimNextJob({ workerId: 'w', taskTypes: ['t'], leaseMs: 60_000 });
      assert.ok(first);
      await workspace.store.completeJob(first.lease, { outputFiles: [], taskOutput: {} });
      // REPLACE's implicit delete fires no delete trigger, and the id is one the store has read.
      raw.exec(`INSERT OR REPLACE INTO jobs SELECT id, job_id, task_type, input_file_source, input_file_path,
        input_files, '[]', 'queued', 0, created_at, NULL, NULL, NULL, NULL, 0, max_retries, created_by
        FROM jobs WHERE job_id = 'rewritten'`);
      // A daemon that has just started sweeps on its first idle look; others within a minute.
      const daemon = SqliteJobStore.open(workspace.databasePath, { ensureSchema: true });
      try {
        const again = await daemon.claimNextJob({ workerId: 'w2', taskTypes: ['t'], leaseMs: 60_000 });
        assert.equal(again?.jobId, 'rewritten');
      } finally {
        await daemon.close();
      }
    } finally {
      api.close();
    }
  });

  test('a queued job the API replaces in place by another (INSERT OR REPLACE, same id) is not claimed in its stead', async () => {
    const api = apiConnection(workspace.databasePath);
    const { raw } = api;
    const claimOne = async (from: JobStore, taskType: string) =>
      (await from.claimNextJob({ workerId: 'w', taskTypes: [taskType], leaseMs: 60_000 }))?.jobId;
    try {
      await api.insertJob({ jobId: 'replaced', taskType: 't', priority: 9 });
      await api.insertJob({ jobId: 'kept', taskType: 't', priority: 5 });
      assert.equal(await claimOne(workspace.store, 'nothing-queued'), undefined); // the store has read both
      // Under the replaced job's id, a job of another type: no trigger of ours fires.
      raw.exec(`INSERT OR REPLACE INTO jobs SELECT id, 'newcomer', 'other', input_file_source, input_file_path,
        input_files, output_files, 'queued', 0, created_at, NULL, NULL, NULL, NULL, 0, max_retries, created_by
        FROM jobs WHERE job_id = 'replaced'`);
      assert.equal(await claimOne(workspace.store, 't'), 'kept');
      assert.equal(await claimOne(workspace.store, 't'), undefined);
      // A daemon serving the other type finds the newcomer on its first idle look.
      const daemon = SqliteJobStore.open(workspace.databasePath, { ensureSchema: true });
      try {
        assert.equal(await claimOne(daemon, 'other'), 'newcomer');
      } finally {
        await daemon.close();
      }
    } finally {
      api.close();
    }
  });

  test('refuses a jobs table of another shape, naming the missing columns', () => {
    const databasePath = path.join(workspace.dir, 'other.db');
    const other = new Database(databasePath);
    other.exec('CREATE TABLE jobs (id INTEGER PRIMARY KEY, job_id TEXT, status TEXT)');
    other.close();
    assert.throws(
      () => SqliteJobStore.open(databasePath, { ensureSchema: true }),
      (error: unknown) =>
        error instanceof StartupError &&
        /missing column\(s\) task_type, input_file_source, .*created_by/.test(error.message),
    );
  });

  test("creates the API's tables with exactly the contract's DDL", () => {
    const statements = (ddl: string) =>
      ddl
        .replace(/--.*$/gm, '')
        .split(';')
        .map((statement) => statement.replace(/\s+/g, ' ').trim())
        .filter(Boolean);
    assert.deepEqual(statements(API_TABLES_DDL), statements(CONTRACT_DDL));
  });

  test('opens with WAL and the contract pragmas', () => {
    const raw = new Database(workspace.databasePath);
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    raw.close();
  });
});
