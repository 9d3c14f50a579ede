/**
 * Faults of the worker, not of the job: a database locked past the busy timeout, a database that
 * became read-only, a storage root that cannot be written. None of them spends a job's retries;
 * a computed result is written once the database lets it, never recomputed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { WorkerFaults } from '../../worker/daemon/worker-faults.js';
import { startWorker, type WorkerProcess } from '../helpers/worker-process.js';
import { useWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

/**
 * Tests run as root, whom file permissions do not stop: the daemon runs as `nobody` here, in a
 * workspace handed to it, so that taking write permission away is felt as it is in production.
 */
const NOBODY = { uid: 65534, gid: 65534 };
function handOver(workspace: Workspace): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  execFileSync('chown', ['-R', `${NOBODY.uid}:${NOBODY.gid}`, workspace.dir]);
  return NOBODY;
}

/** Queues a job whose folder belongs to the daemon's user, as it would in production. */
async function addJobFor(workspace: Workspace, user: { uid: number; gid: number } | undefined) {
  const jobId = await workspace.addJob('noop');
  if (user)
    execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, path.join(workspace.storageRoot, 'jobs', jobId)]);
  return jobId;
}

const logged = (worker: WorkerProcess, message: string) => worker.logs.filter((line) => line.msg === message);
const FAULT = 'worker-side fault: claiming stopped until it clears (no job is charged for it)';
const CLEARED = 'worker-side fault cleared; claiming again';

async function statusOf(workspace: Workspace, jobId: string) {
  return (await workspace.store.getJob(jobId))?.status;
}

/** Once the fault is logged: the job is back in the queue and no retry was spent on it. */
async function assertHeldWithoutRetry(
  worker: WorkerProcess,
  workspace: Workspace,
  jobId: string,
  reason: RegExp,
) {
  await worker.waitForLog((line) => line.msg === FAULT);
  assert.match(String(logged(worker, FAULT)[0]?.reason), reason);
  const held = await workspace.store.getJob(jobId);
  assert.equal(held?.status, 'queued');
  assert.equal(held?.retry_count, 0);
}

/** After the fault clears: the job completes, still without a retry, and the fault was said once. */
async function assertResumed(worker: WorkerProcess, workspace: Workspace, jobId: string) {
  await waitFor(async () => (await statusOf(workspace, jobId)) === 'completed', 'the held job');
  assert.equal((await workspace.store.getJob(jobId))?.retry_count, 0);
  assert.equal(logged(worker, FAULT).length, 1, 'the fault is said once');
  worker.child.kill('SIGTERM');
  assert.equal((await worker.exited).code, 0);
}

describe('worker-side faults never spend a job’s retries', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('a result that meets a locked database is written once the lock is gone, not recomputed', async () => {
    const startedFile = path.join(workspace.dir, 'started');
    const gateFile = path.join(workspace.dir, 'gate');
    const jobId = await workspace.addJob('gate', { started_file: startedFile, gate_file: gateFile });
    const worker = startWorker(workspace.dir, [
      '--tasks',
      'gate',
      '--drain',
      '--db-busy-timeout',
      '0.2',
      '--lease-ttl',
      '20',
    ]);
    await waitFor(() => fs.existsSync(startedFile), 'the job to start');
    // The API holds a write transaction past the busy timeout while the module finishes.
    const api = new Database(workspace.databasePath);
    api.prepare('BEGIN IMMEDIATE').run();
    fs.writeFileSync(gateFile, '');
    await worker.waitForLog((line) =>
      String(line.msg).startsWith('database busy; retrying recording the result'),
    );
    api.prepare('COMMIT').run();
    api.close();
    assert.equal((await worker.exited).code, 0, worker.stderr());
    const job = await workspace.store.getJob(jobId);
    assert.equal(job?.status, 'completed', job?.error_message ?? '');
    assert.equal(job?.retry_count, 0);
    assert.equal(fs.readFileSync(startedFile, 'utf8').trim().split('\n').length, 1, 'computed once');
  });

  test('a database made read-only: claiming stops with one line, no retry is spent, work resumes', async () => {
    const user = handOver(workspace);
    // A fresh runner per job. The one started before the database turns read-only runs the first
    // job; the spare started while it does, after the change, meets the fault with the second.
    const worker = startWorker(workspace.dir, ['--tasks', 'noop', '--runner-reuse', '1'], {}, user);
    await worker.waitForLog((line) => line.msg === 'worker started');
    fs.chmodSync(workspace.databasePath, 0o444);
    const first = await addJobFor(workspace, user);
    await waitFor(async () => (await statusOf(workspace, first)) === 'completed', 'the first job');
    const second = await addJobFor(workspace, user);
    await assertHeldWithoutRetry(worker, workspace, second, /attempt to write a readonly database/);
    fs.chmodSync(workspace.databasePath, 0o644);
    await worker.waitForLog((line) => line.msg === CLEARED);
    await assertResumed(worker, workspace, second);
  });

  test('a storage root that cannot be written: claiming stops, no retry is spent, work resumes', async () => {
    const jobsDir = path.join(workspace.storageRoot, 'jobs');
    fs.mkdirSync(jobsDir, { recursive: true });
    const user = handOver(workspace);
    const worker = startWorker(workspace.dir, ['--tasks', 'noop'], {}, user);
    await worker.waitForLog((line) => line.msg === 'worker started');
    // Unwritable before the job exists, so that its runner cannot be quicker than the change.
    fs.chmodSync(jobsDir, 0o555);
    const jobId = await workspace.addJob('noop'); // its folder is root's: the daemon cannot write it
    await assertHeldWithoutRetry(worker, workspace, jobId, /^storage cannot be written: EACCES/);
    fs.chmodSync(jobsDir, 0o755);
    if (user) execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, path.join(jobsDir, jobId)]);
    await assertResumed(worker, workspace, jobId);
  });

  test('a fault the check cannot see (one job’s own folder) is charged to the job after 3 free rounds', async () => {
    // The job's folder is root's and the rest of the storage the daemon's: the check passes, the job
    // cannot write its output.
    const jobId = await workspace.addJob('noop', {}, { maxRetries: 0 });
    const healthy = await workspace.addJob('noop');
    const user = handOver(workspace);
    const jobDir = path.join(workspace.storageRoot, 'jobs', jobId);
    if (user) execFileSync('chown', ['-R', '0:0', jobDir]);
    else fs.chmodSync(jobDir, 0o555);
    const worker = startWorker(workspace.dir, ['--tasks', 'noop', '--drain'], {}, user);
    assert.equal((await worker.exited).code, 0, worker.stderr());
    const job = await workspace.store.getJob(jobId);
    assert.equal(job?.status, 'error');
    assert.match(
      job?.error_message ?? '',
      /^Failed after 1 attempt; last error: worker-side fault met 4 times in a row: storage cannot be written: EACCES/,
    );
    const claims = worker.logs.filter((line) => line.msg === 'job claimed' && line.job_id === jobId);
    assert.equal(claims.length, 4, 'three free rounds, then charged');
    assert.equal((await workspace.store.getJob(healthy))?.status, 'completed');
  });

  test('a database the daemon cannot write at start-up: it refuses to start, saying why', async () => {
    const user = handOver(workspace);
    fs.chmodSync(workspace.databasePath, 0o444);
    const worker = startWorker(workspace.dir, ['--tasks', 'noop'], {}, user);
    assert.equal((await worker.exited).code, 2);
    assert.match(
      worker.stderr(),
      /media_store\.db cannot be written \(attempt to write a readonly database\)/,
    );
  });
});

describe('jobs held until the database takes their release', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('a held job is released and settled once, when a shutdown and a renewal both try', async () => {
    const jobId = await workspace.addJob('noop');
    const claimed = await workspace.store.claimNextJob({
      workerId: 'w',
      taskTypes: ['noop'],
      leaseMs: 60_000,
    });
    assert.equal(claimed?.jobId, jobId);
    const settled: string[] = [];
    const faults = new WorkerFaults({
      check: async () => {},
      release: (lease) => workspace.store.releaseJob(lease),
      onCleared: () => {},
      log: pino({ level: 'silent' }),
    });
    faults.hold(claimed.lease, async (released) => {
      settled.push(released);
    });
    await Promise.all([faults.releaseHeld(), faults.stop()]);
    assert.deepEqual(settled, ['requeued']);
    assert.equal(await statusOf(workspace, jobId), 'queued');
  });
});
