import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { startWorker } from '../helpers/worker-process.js';
import { useWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

describe('wake-up', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('an idle daemon starts a job another process inserts, long before its next poll', async () => {
    const worker = startWorker(workspace.dir, ['--tasks', 'noop', '--poll-interval', '3600']);
    await worker.waitForLog((line) => line.msg === 'worker started');
    // A second look after the first claim loop came up empty: the daemon now waits for its hour-long poll.
    const api = new Database(workspace.databasePath);
    try {
      for (let round = 0; round < 3; round += 1) {
        const jobId = `woken-${round}`;
        api
          .prepare(
            `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files,
               status, progress, created_at, retry_count, max_retries) VALUES (?, 'noop', 'upload', '', ?, '[]', 'queued', 0, ?, 0, 3)`,
          )
          .run(jobId, JSON.stringify([{ path: workspace.addInputFile(jobId, 'in.txt', 'x') }]), Date.now());
        api
          .prepare('INSERT INTO queue_entries (job_id, priority, enqueued_at) VALUES (?, 5, ?)')
          .run(jobId, Date.now());
        await waitFor(
          async () => (await workspace.store.getJob(jobId))?.status === 'completed',
          `${jobId} to complete`,
        );
      }
    } finally {
      api.close();
    }
    const started = worker.logs.find((line) => line.msg === 'worker started');
    assert.equal(started?.new_jobs_noticed, 'at once');
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
  });

  test('a retry is claimed when its backoff ends, not at the next poll', async () => {
    const jobId = await workspace.addJob('fail', { retryable: true, message: 'flaky' }, { maxRetries: 1 });
    const worker = startWorker(workspace.dir, [
      '--tasks',
      'fail',
      '--poll-interval',
      '3600',
      '--retry-backoff',
      '0.5',
    ]);
    // Both attempts run within the hour-long poll only if the daemon wakes for the retry itself.
    await waitFor(async () => (await workspace.store.getJob(jobId))?.status === 'error', 'the retry to run');
    assert.equal(
      (await workspace.store.getJob(jobId))?.error_message,
      'Failed after 2 attempts; last error: flaky',
    );
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
  });
});
