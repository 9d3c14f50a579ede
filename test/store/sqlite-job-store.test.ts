import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { StartupError } from '../../worker/errors.js';
import { API_TABLES_DDL } from '../../worker/store/sqlite-ddl.js';
import { SqliteJobStore } from '../../worker/store/sqlite-job-store.js';
import { repoFile, useWorkspace, type Workspace } from '../helpers/workspace.js';

/** The API service's DDL, as the contract documents it (docs/media_store-v1.sql). */
const CONTRACT_DDL = fs.readFileSync(repoFile('docs/media_store-v1.sql'), 'utf8');
const noDelay = () => 0;
const claim = (workspace: Workspace, taskTypes = ['t']) =>
  workspace.store.claimNextJob({ workerId: 'w', taskTypes, leaseMs: 60_000 });

describe('SqliteJobStore', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('claims by priority (higher first), then created_at, then id', async () => {
    const low = await workspace.addJob('t', {}, { priority: 1 });
    const firstNormal = await workspace.addJob('t');
    const secondNormal = await workspace.addJob('t');
    const urgent = await workspace.addJob('t', {}, { priority: 9 });
    const order = [];
    for (let i = 0; i < 4; i += 1) order.push((await claim(workspace))?.jobId);
    assert.deepEqual(order, [urgent, firstNormal, secondNormal, low]);
    assert.equal(await claim(workspace), undefined);
  });

  test('claims only its own task types and marks the job claimed with a lease', async () => {
    await workspace.addJob('other');
    const mine = await workspace.addJob('t');
    const claimed = await claim(workspace);
    assert.equal(claimed?.jobId, mine);
    assert.equal(claimed?.attempt, 1);
    const row = await workspace.store.getJob(mine);
    assert.equal(row?.status, 'claimed');
    assert.equal(row?.worker?.worker_id, 'w');
    assert.ok((row?.worker?.lease_expires_at ?? 0) > Date.now());
    assert.equal(await claim(workspace), undefined);
  });

  test('a job in retry backoff is not claimed before its time', async () => {
    const jobId = await workspace.addJob('t');
    const first = await claim(workspace);
    assert.ok(first);
    const outcome = await workspace.store.failAttempt(
      first.lease,
      { message: 'flaky', retryable: true },
      () => 60_000,
    );
    assert.equal(outcome.kind, 'retrying');
    assert.equal(await claim(workspace), undefined, 'claimed during backoff');
    assert.equal(await workspace.store.hasQueuedJobs(['t']), true);
    const row = await workspace.store.getJob(jobId);
    assert.equal(row?.status, 'queued');
    assert.equal(row?.retry_count, 1);
    assert.equal(row?.worker?.last_error, 'flaky');
  });

  test('retryable failures requeue until max_retries, then error names the attempts and the cause', async () => {
    const jobId = await workspace.addJob('t', {}, { maxRetries: 2 });
    const outcomes = [];
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      const claimed = await claim(workspace);
      assert.equal(claimed?.attempt, attempt);
      assert.ok(claimed);
      outcomes.push(
        await workspace.store.failAttempt(
          claimed.lease,
          { message: `boom ${attempt}`, retryable: true },
          noDelay,
        ),
      );
    }
    assert.deepEqual(
      outcomes.map((outcome) => outcome.kind),
      ['retrying', 'retrying', 'failed'],
    );
    const row = await workspace.store.getJob(jobId);
    assert.equal(row?.status, 'error');
    assert.equal(row?.error_message, 'Failed after 3 attempts; last error: boom 3');
    assert.ok(row?.completed_at);
    assert.equal(row?.worker, null);
  });

  test('a non-retryable failure ends in error at once', async () => {
    const jobId = await workspace.addJob('t');
    const claimed = await claim(workspace);
    assert.ok(claimed);
    await workspace.store.failAttempt(
      claimed.lease,
      { message: 'Invalid parameters: width: too small', retryable: false },
      noDelay,
    );
    const row = await workspace.store.getJob(jobId);
    assert.equal(row?.status, 'error');
    assert.equal(row?.retry_count, 0);
    assert.equal(row?.error_message, 'Invalid parameters: width: too small');
  });

  test('a fenced runner (lease taken back) writes nothing', async () => {
    const jobId = await workspace.addJob('t');
    const stale = await claim(workspace);
    assert.ok(stale);
    assert.equal(await workspace.store.markProcessing(stale.lease), true);
    // The lease is taken back (as after expiry) and the job claimed again with a new token.
    assert.equal(await workspace.store.releaseJob(stale.lease), true);
    const fresh = await claim(workspace);
    assert.ok(fresh);
    assert.notEqual(fresh.lease.token, stale.lease.token);

    assert.equal(await workspace.store.markProcessing(stale.lease), false);
    assert.equal(await workspace.store.reportProgress(stale.lease, 50), false);
    assert.equal(
      await workspace.store.completeJob(stale.lease, { outputFiles: [], taskOutput: { stale: true } }),
      false,
    );
    assert.deepEqual(
      await workspace.store.failAttempt(stale.lease, { message: 'x', retryable: true }, noDelay),
      { kind: 'fenced' },
    );
    assert.equal(await workspace.store.releaseJob(stale.lease), false);
    const row = await workspace.store.getJob(jobId);
    assert.equal(row?.status, 'claimed');
    assert.equal(row?.progress, 0);
    assert.equal(row?.task_output, null);

    assert.equal(
      await workspace.store.completeJob(fresh.lease, { outputFiles: [], taskOutput: { fresh: true } }),
      true,
    );
    const done = await workspace.store.getJob(jobId);
    assert.equal(done?.status, 'completed');
    assert.equal(done?.progress, 100);
    assert.deepEqual(done?.task_output, { fresh: true });
  });

  test('progress is stored at most 99 until completion', async () => {
    const jobId = await workspace.addJob('t');
    const claimed = await claim(workspace);
    assert.ok(claimed);
    await workspace.store.markProcessing(claimed.lease);
    await workspace.store.reportProgress(claimed.lease, 100);
    assert.equal((await workspace.store.getJob(jobId))?.progress, 99);
    const row = await workspace.store.getJob(jobId);
    assert.equal(row?.status, 'processing');
    assert.ok(row?.started_at);
  });

  test('renewLeases reports jobs that were deleted or finished by someone else', async () => {
    const kept = await workspace.addJob('t');
    const deleted = await workspace.addJob('t');
    const cancelled = await workspace.addJob('t');
    const leases = [];
    for (let i = 0; i < 3; i += 1) leases.push((await claim(workspace))?.lease);
    const raw = new Database(workspace.databasePath);
    raw.prepare('DELETE FROM jobs WHERE job_id = ?').run(deleted);
    raw
      .prepare("UPDATE jobs SET status = 'error', error_message = 'cancelled by user' WHERE job_id = ?")
      .run(cancelled);
    raw.close();
    const lost = await workspace.store.renewLeases(
      leases.filter((lease) => lease !== undefined),
      60_000,
    );
    assert.deepEqual(lost.sort(), [deleted, cancelled].sort());
    assert.equal((await workspace.store.getJob(kept))?.status, 'claimed');
  });

  test('recovers jobs whose lease expired, and lease-less orphans older than the orphan age', async () => {
    const expired = await workspace.addJob('t', {}, { maxRetries: 3 });
    await workspace.store.claimNextJob({ workerId: 'dead', taskTypes: ['t'], leaseMs: -1 });
    const orphan = await workspace.addJob('t', {}, { maxRetries: 0 });
    const youngOrphan = await workspace.addJob('t');
    const raw = new Database(workspace.databasePath);
    raw
      .prepare("UPDATE jobs SET status = 'processing', started_at = ? WHERE job_id = ?")
      .run(Date.now() - 7_200_000, orphan);
    raw
      .prepare("UPDATE jobs SET status = 'processing', started_at = ? WHERE job_id = ?")
      .run(Date.now(), youngOrphan);
    raw.close();
    const recovered = await workspace.store.recoverAbandonedJobs({
      orphanAgeMs: 3_600_000,
      retryDelay: noDelay,
    });
    assert.deepEqual(recovered.map((job) => job.jobId).sort(), [expired, orphan].sort());
    const expiredRow = await workspace.store.getJob(expired);
    assert.equal(expiredRow?.status, 'queued');
    assert.equal(expiredRow?.retry_count, 1);
    assert.match(expiredRow?.worker?.last_error ?? '', /worker dead stopped renewing its lease/);
    const orphanRow = await workspace.store.getJob(orphan);
    assert.equal(orphanRow?.status, 'error');
    assert.match(
      orphanRow?.error_message ?? '',
      /Failed after 1 attempt; last error: left in 'processing' with no lease/,
    );
    assert.equal((await workspace.store.getJob(youngOrphan))?.status, 'processing');
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
