/** End-to-end scenarios each store must pass, run by the SQLite and the PostgreSQL test files. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCli, startWorker } from './worker-process.js';
import { isAlive, type Workspace, waitFor } from './workspace.js';

/** Lines of a `started_file` the sleep fixture writes: `<job_id> <runner pid> <ms>`. */
export const startedLines = (file: string) =>
  fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];

/** The daemon's environment for the workspace's database. */
export const databaseEnv = (workspace: Workspace): Record<string, string> => ({
  DATABASE_URL: workspace.databaseUrl,
});

/** kill -9 of a daemon mid-job: another daemon completes the job after the lease expires. */
export async function killedDaemonJobIsRecovered(workspace: Workspace): Promise<void> {
  const env = databaseEnv(workspace);
  const startedFile = path.join(workspace.dir, 'started');
  const jobId = await workspace.addJob('sleep', { seconds: 0.5, started_file: startedFile });
  const victim = startWorker(
    workspace.dir,
    ['--worker-id', 'victim', '--tasks', 'sleep', '--lease-ttl', '1'],
    env,
  );
  const started = await waitFor(() => startedLines(startedFile)[0], 'the job to start');
  const runnerPid = Number(started.split(' ')[1]);
  victim.child.kill('SIGKILL');
  await victim.exited;
  assert.equal((await workspace.store.getJob(jobId))?.status, 'processing');
  // The runner notices its daemon is gone and exits rather than finishing unsupervised.
  await waitFor(() => !isAlive(runnerPid), 'the orphaned runner to exit');
  // A draining daemon exits when nothing is queued: start it once the job is up for recovery.
  await waitFor(async () => {
    const expiresAt = (await workspace.store.getJob(jobId))?.worker?.lease_expires_at;
    return typeof expiresAt === 'number' && expiresAt < Date.now();
  }, 'the lease to expire');
  const rescuer = startWorker(
    workspace.dir,
    ['--worker-id', 'rescuer', '--tasks', 'sleep', '--lease-ttl', '1', '--drain', '--retry-backoff', '0'],
    env,
  );
  assert.equal((await rescuer.exited).code, 0, rescuer.stderr());
  const job = await workspace.store.getJob(jobId);
  assert.equal(job?.status, 'completed');
  assert.equal(job?.retry_count, 1, 'the lost attempt counts');
  assert.ok(rescuer.logs.some((line) => line.msg === 'took back an abandoned job' && line.job_id === jobId));
  assert.equal(startedLines(startedFile).length, 2);
}

/** A 10-minute sleep job that has written part of its output, running under a daemon of its own. */
async function startLongJobWithOutput(workspace: Workspace, daemonArgs: readonly string[]) {
  const startedFile = path.join(workspace.dir, 'started');
  const jobId = await workspace.addJob('sleep', {
    seconds: 600,
    started_file: startedFile,
    partial_output: true,
  });
  const daemon = startWorker(workspace.dir, [...daemonArgs, '--tasks', 'sleep'], databaseEnv(workspace));
  const started = await waitFor(() => startedLines(startedFile)[0], 'the job to start');
  const outputDir = path.join(workspace.storageRoot, 'jobs', jobId, 'output');
  assert.ok(fs.existsSync(path.join(outputDir, 'partial.bin')));
  return { jobId, startedFile, runnerPid: Number(started.split(' ')[1]), outputDir, daemon };
}

/**
 * `jobs cancel` on a running job, as an operator on another host would: the daemon running it stops
 * it, the job ends in `error` "cancelled" with no retry, its runner is gone and its half-written
 * output with it.
 */
export async function runningJobIsCancelled(workspace: Workspace): Promise<void> {
  const env = databaseEnv(workspace);
  const { jobId, runnerPid, outputDir, daemon } = await startLongJobWithOutput(workspace, [
    '--worker-id',
    'canceller-target',
  ]);

  const cancelled = await runCli(['jobs', 'cancel', jobId], { CL_SERVER_DIR: workspace.dir, ...env });
  assert.equal(cancelled.code, 0, cancelled.stderr);
  assert.equal(cancelled.stdout.trim(), `${jobId}: cancelled (worker canceller-target stopped it)`);
  const job = await workspace.store.getJob(jobId);
  assert.equal(job?.status, 'error');
  assert.equal(job?.error_message, 'cancelled');
  assert.equal(job?.retry_count, 0, 'a cancelled job is not retried');
  // The daemon removes the output once "cancelled" is written, which `jobs cancel` has just seen:
  // waited for, not looked up.
  await waitFor(() => !fs.existsSync(outputDir), 'no half-written output to stay behind');
  await waitFor(() => !isAlive(runnerPid), 'the runner to be gone');
  // Waited for: the daemon is still running, and its line may not have been read yet.
  await daemon.waitForLog((line) => line.msg === 'stopping the job' && line.reason === 'cancelled');
  daemon.child.kill('SIGTERM');
  assert.equal((await daemon.exited).code, 0);
}

/**
 * A cancel the daemon running the job could not carry out (it was killed first): the daemon that
 * takes the job back ends it "cancelled", not retried, and removes what the attempt wrote.
 */
export async function deadDaemonsCancelledJobLeavesNoOutput(workspace: Workspace): Promise<void> {
  const env = databaseEnv(workspace);
  const {
    jobId,
    runnerPid,
    outputDir,
    startedFile,
    daemon: victim,
  } = await startLongJobWithOutput(workspace, ['--worker-id', 'victim', '--lease-ttl', '1']);
  victim.child.kill('SIGKILL');
  await victim.exited;
  await waitFor(() => !isAlive(runnerPid), 'the orphaned runner to exit');
  assert.equal((await workspace.store.cancelJob(jobId)).kind, 'cancel-requested');

  const rescuer = startWorker(
    workspace.dir,
    ['--worker-id', 'rescuer', '--tasks', 'sleep', '--lease-ttl', '1'],
    env,
  );
  await rescuer.waitForLog((line) => line.msg === 'took back an abandoned job' && line.job_id === jobId);
  const job = await workspace.store.getJob(jobId);
  assert.deepEqual([job?.status, job?.error_message, job?.retry_count], ['error', 'cancelled', 0]);
  assert.equal(fs.existsSync(outputDir), false, 'the output is removed before the sweep logs the job');
  assert.equal(startedLines(startedFile).length, 1, 'a cancelled job is not run again');
  rescuer.child.kill('SIGTERM');
  assert.equal((await rescuer.exited).code, 0);
}
