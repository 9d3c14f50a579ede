import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { startedLines } from '../helpers/scenarios.js';
import { startWorker } from '../helpers/worker-process.js';
import { isAlive, useWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

const startedPids = (file: string) => startedLines(file).map((line) => Number(line.split(' ')[1]));
/** The pids of the runners that started the sleep job, once there is one. */
const runnerPids = (file: string) => {
  const pids = startedPids(file);
  return pids.length > 0 ? pids : undefined;
};
describe('daemon lifecycle', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('SIGTERM while runners are still warming up: the daemon stops at once, without waiting for them', async () => {
    const markers = path.join(workspace.dir, 'markers');
    fs.mkdirSync(markers);
    const worker = startWorker(workspace.dir, ['--tasks', 'slow_warmup'], { SLOW_WARMUP_MARKERS: markers });
    await waitFor(
      () => fs.readdirSync(markers).some((name) => name.startsWith('began-')),
      'a warm-up to begin',
    );
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0, worker.stderr());
    assert.deepEqual(
      fs.readdirSync(markers).filter((name) => name.startsWith('done-')),
      [],
      'the runner was stopped, not waited for',
    );
    assert.ok(!worker.logs.some((line) => line.msg === 'worker started'));
    assert.ok(worker.logs.some((line) => line.msg === 'worker stopped'));
  });

  test('a job cancelled while it waits for its runner to start ends cancelled, and the daemon goes on', async () => {
    const markers = path.join(workspace.dir, 'markers');
    fs.mkdirSync(markers);
    fs.writeFileSync(path.join(markers, 'fast'), '');
    const worker = startWorker(workspace.dir, ['--tasks', 'slow_warmup,noop', '--runner-reuse', '1'], {
      SLOW_WARMUP_MARKERS: markers,
    });
    await worker.waitForLog((line) => line.msg === 'worker started');
    // From here a runner takes 25 s to warm up: the spare started for the next job, among them.
    fs.rmSync(path.join(markers, 'fast'));
    const first = await workspace.addJob('slow_warmup');
    await waitFor(async () => (await workspace.store.getJob(first))?.status === 'completed', 'the first job');
    const waiting = await workspace.addJob('slow_warmup');
    await worker.waitForLog((line) => line.msg === 'job claimed' && line.job_id === waiting);
    assert.equal((await workspace.store.cancelJob(waiting)).kind, 'cancel-requested');
    await waitFor(async () => (await workspace.store.getJob(waiting))?.status === 'error', 'the cancel');
    assert.equal((await workspace.store.getJob(waiting))?.error_message, 'cancelled');
    const after = await workspace.addJob('noop');
    await waitFor(async () => (await workspace.store.getJob(after))?.status === 'completed', 'a later job');
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0, worker.stderr());
  });

  test('SIGTERM: a running job that finishes within the grace completes, and the daemon exits 0', async () => {
    const startedFile = path.join(workspace.dir, 'started');
    const jobId = await workspace.addJob('sleep', { seconds: 0.8, started_file: startedFile });
    const queued = await workspace.addJob('sleep', { seconds: 0 });
    const worker = startWorker(workspace.dir, ['--tasks', 'sleep', '--shutdown-grace', '10']);
    await waitFor(() => runnerPids(startedFile), 'the job to start');
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
    assert.equal((await workspace.store.getJob(jobId))?.status, 'completed');
    assert.equal((await workspace.store.getJob(queued))?.status, 'queued', 'no new claim after SIGTERM');
  });

  test('SIGTERM: a job still running after the grace is requeued without spending a retry', async () => {
    const startedFile = path.join(workspace.dir, 'started');
    const jobId = await workspace.addJob('sleep', { seconds: 60, started_file: startedFile });
    const worker = startWorker(workspace.dir, ['--tasks', 'sleep', '--shutdown-grace', '0.3']);
    const [runnerPid] = await waitFor(() => runnerPids(startedFile), 'the job to start');
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
    const job = await workspace.store.getJob(jobId);
    assert.equal(job?.status, 'queued');
    assert.equal(job?.retry_count, 0);
    assert.equal(job?.worker?.lease_expires_at, null);
    assert.equal(isAlive(runnerPid as number), false, 'runner killed');
  });

  test('a second signal exits at once; the lease later returns the job', async () => {
    const startedFile = path.join(workspace.dir, 'started');
    const jobId = await workspace.addJob('sleep', { seconds: 60, started_file: startedFile });
    const worker = startWorker(workspace.dir, [
      '--tasks',
      'sleep',
      '--shutdown-grace',
      '30',
      '--lease-ttl',
      '0.5',
    ]);
    const [runnerPid] = await waitFor(() => runnerPids(startedFile), 'the job to start');
    worker.child.kill('SIGTERM');
    await worker.waitForLog((line) => String(line.msg).startsWith('stopping gracefully'));
    worker.child.kill('SIGTERM');
    const exit = await worker.exited;
    assert.equal(exit.code, 1);
    await waitFor(() => !isAlive(runnerPid as number), 'the runner to exit with its daemon');
    const recovered = await workspace.store.recoverAbandonedJobs({
      orphanAgeMs: 3_600_000,
      retryDelay: () => 0,
    });
    await waitFor(async () => {
      const all = [
        ...recovered,
        ...(await workspace.store.recoverAbandonedJobs({ orphanAgeMs: 3_600_000, retryDelay: () => 0 })),
      ];
      return all.some((job) => job.jobId === jobId);
    }, 'the lease to expire');
    assert.equal((await workspace.store.getJob(jobId))?.status, 'queued');
  });

  test('Ctrl-C in the terminal (SIGINT to the process group) does not reach runners directly', async () => {
    const startedFile = path.join(workspace.dir, 'started');
    const jobId = await workspace.addJob('sleep', { seconds: 1, started_file: startedFile });
    const worker = startWorker(workspace.dir, ['--tasks', 'sleep', '--shutdown-grace', '10']);
    const [runnerPid] = await waitFor(() => runnerPids(startedFile), 'the job to start');
    const processGroup = (pid: number) =>
      Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[2]);
    assert.equal(processGroup(runnerPid as number), runnerPid, 'runner leads its own process group');
    assert.notEqual(processGroup(runnerPid as number), processGroup(worker.child.pid as number));
    worker.child.kill('SIGINT');
    assert.equal((await worker.exited).code, 0);
    assert.equal(
      (await workspace.store.getJob(jobId))?.status,
      'completed',
      'the job finished during the grace',
    );
  });
});
