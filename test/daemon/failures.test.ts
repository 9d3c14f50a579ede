import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { startWorker } from '../helpers/worker-process.js';
import { isAlive, useWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

describe('failures end a job precisely, and the daemon keeps going', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('a crashing runner is retried with backoff, then error names the attempts, the exit and stderr', async () => {
    const jobId = await workspace.addJob('crash', { exit_code: 3 }, { maxRetries: 2 });
    const healthy = await workspace.addJob('noop');
    const worker = startWorker(workspace.dir, ['--tasks', 'crash,noop', '--drain', '--retry-backoff', '0.2']);
    assert.equal((await worker.exited).code, 0, worker.stderr());
    const job = await workspace.store.getJob(jobId);
    assert.equal(job?.status, 'error');
    assert.equal(job?.retry_count, 2);
    assert.match(
      job?.error_message ?? '',
      /^Failed after 3 attempts; last error: runner crashed: exit code 3; stderr: .*crash module: giving up/,
    );
    const retries = worker.logs.filter((line) => line.msg === 'job failed; will retry');
    assert.equal(retries.length, 2);
    for (const retry of retries) {
      assert.ok(
        Number(retry.retry_in_ms) >= 100 && Number(retry.retry_in_ms) <= 800,
        `backoff ${retry.retry_in_ms}`,
      );
    }
    const claims = worker.logs.filter((line) => line.msg === 'job claimed' && line.job_id === jobId);
    assert.deepEqual(
      claims.map((line) => line.attempt),
      [1, 2, 3],
    );
    const secondClaimAt = Number(claims[1]?.time);
    const firstRetryAt = Number(retries[0]?.time);
    assert.ok(secondClaimAt - firstRetryAt >= 90, 'the retry waited for its backoff');
    assert.equal((await workspace.store.getJob(healthy))?.status, 'completed');
  });

  test('a runner killed by a signal is a retryable failure that says so', async () => {
    const jobId = await workspace.addJob('crash', { signal: 'SIGKILL' }, { maxRetries: 0 });
    const worker = startWorker(workspace.dir, ['--tasks', 'crash', '--drain']);
    assert.equal((await worker.exited).code, 0);
    const job = await workspace.store.getJob(jobId);
    assert.equal(job?.status, 'error');
    assert.match(
      job?.error_message ?? '',
      /Failed after 1 attempt; last error: runner crashed: killed by SIGKILL/,
    );
  });

  test('a hanging runner that ignores SIGTERM is killed at the timeout', async () => {
    const jobId = await workspace.addJob('hang', { timeout_s: 1 }, { maxRetries: 0 });
    const worker = startWorker(workspace.dir, ['--tasks', 'hang', '--drain', '--kill-grace', '0.5']);
    const claimed = await worker.waitForLog((line) => line.msg === 'job claimed');
    assert.equal(claimed.timeout_s, 1);
    assert.equal((await worker.exited).code, 0);
    // The hang ignores SIGTERM: only the SIGKILL after --kill-grace ends it, which the stop says.
    const stopped = worker.logs.find((line) => line.msg === 'stopping the job');
    assert.equal(stopped?.reason, 'timeout');
    const ranFor = Number(worker.logs.find((line) => line.msg === 'job failed')?.time) - Number(claimed.time);
    assert.ok(ranFor >= 1000, `the job was stopped after ${ranFor} ms, before its 1 s timeout`);
    const job = await workspace.store.getJob(jobId);
    assert.equal(job?.status, 'error');
    assert.equal(job?.error_message, 'Failed after 1 attempt; last error: timed out after 1 s');
  });

  test('the timeout comes from --timeout when the job does not set timeout_s', async () => {
    const jobId = await workspace.addJob('sleep', { seconds: 30 }, { maxRetries: 0 });
    const worker = startWorker(workspace.dir, ['--tasks', 'sleep', '--drain', '--timeout', 'sleep=0.5']);
    assert.equal((await worker.exited).code, 0);
    assert.equal(
      (await workspace.store.getJob(jobId))?.error_message,
      'Failed after 1 attempt; last error: timed out after 0.5 s',
    );
  });

  test("a job's timeout_s is capped by the operator's ceiling, --max-timeout", async () => {
    const jobId = await workspace.addJob('sleep', { seconds: 30, timeout_s: 2_000_000 }, { maxRetries: 0 });
    const worker = startWorker(workspace.dir, ['--tasks', 'sleep', '--drain', '--max-timeout', '0.5s']);
    const claimed = await worker.waitForLog((line) => line.msg === 'job claimed');
    assert.equal(claimed.timeout_s, 0.5);
    assert.equal((await worker.exited).code, 0);
    assert.equal(
      (await workspace.store.getJob(jobId))?.error_message,
      'Failed after 1 attempt; last error: timed out after 0.5 s',
    );
  });

  test('bad parameters end in error at once, naming the parameter, with no retry', async () => {
    const jobId = await workspace.addJob('sleep', { seconds: 'ten' });
    const missing = await workspace.addJob('noop');
    const raw = new Database(workspace.databasePath);
    raw
      .prepare('UPDATE jobs SET input_files = ? WHERE job_id = ?')
      .run(JSON.stringify([{ path: `jobs/${missing}/input/gone.png` }]), missing);
    const hostile = await workspace.addJob('noop');
    raw
      .prepare('UPDATE jobs SET input_files = ? WHERE job_id = ?')
      .run(JSON.stringify([{ path: '../../etc/passwd' }]), hostile);
    raw.close();
    const worker = startWorker(workspace.dir, ['--tasks', 'sleep,noop', '--drain']);
    assert.equal((await worker.exited).code, 0);
    const bad = await workspace.store.getJob(jobId);
    assert.equal(bad?.status, 'error');
    assert.equal(bad?.retry_count, 0);
    assert.match(bad?.error_message ?? '', /^Invalid parameters: seconds: /);
    assert.equal(
      (await workspace.store.getJob(missing))?.error_message,
      `Input file not found: jobs/${missing}/input/gone.png`,
    );
    assert.match((await workspace.store.getJob(hostile))?.error_message ?? '', /^Input path refused/);
    assert.equal(worker.logs.filter((line) => line.msg === 'job claimed').length, 3, 'each claimed once');
  });

  test('a job deleted while it runs: its runner is killed and nothing is written', async () => {
    const startedFile = path.join(workspace.dir, 'started');
    const jobId = await workspace.addJob('sleep', { seconds: 30, started_file: startedFile });
    const worker = startWorker(workspace.dir, ['--tasks', 'sleep', '--lease-ttl', '0.6']);
    const line = await waitFor(
      () => (fs.existsSync(startedFile) ? fs.readFileSync(startedFile, 'utf8') : ''),
      'job start',
    );
    const runnerPid = Number(line.trim().split(' ')[1]);
    const raw = new Database(workspace.databasePath);
    raw.prepare('DELETE FROM jobs WHERE job_id = ?').run(jobId);
    await worker.waitForLog((entry) =>
      String(entry.msg).startsWith('job was taken back, deleted or finished elsewhere'),
    );
    await waitFor(() => !isAlive(runnerPid), 'runner to die');
    const count = (table: string) =>
      (raw.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    assert.equal(count('jobs'), 0, 'nothing was written back');
    assert.equal(count('worker_job_state'), 0, 'bookkeeping dropped');
    raw.close();
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
  });
});
