/**
 * The behaviour every JobStore implementation owes the daemon, the runners and the API service,
 * run against a real database by each store's own test file (describeJobStoreContract). The API
 * side acts through its own connection, the way the API service writes.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { ClaimedJob, JobStore, RetryDelay } from '../../worker/store/job-store.js';
import type { JobStatus } from '../../worker/store/schema.js';
import { waitFor } from '../helpers/workspace.js';

export interface ApiJob {
  jobId: string;
  taskType: string;
  /** Epoch ms; by default now. */
  createdAt?: number;
  /** The queue entry's priority; null: the job gets no queue entry. Default 5. */
  priority?: number | null;
  maxRetries?: number;
}

/** What the API service does to the shared database, on a connection of its own. */
export interface ApiSide {
  /** The job row and (unless priority is null) its queue entry, in two transactions, as the API commits them. */
  insertJob(job: ApiJob): Promise<void>;
  /** Many jobs in one transaction (a library import). */
  insertJobs(jobs: readonly ApiJob[]): Promise<void>;
  addQueueEntry(jobId: string, priority: number): Promise<void>;
  setPriority(jobId: string, priority: number): Promise<void>;
  deleteQueueEntry(jobId: string): Promise<void>;
  deleteJob(jobId: string): Promise<void>;
  setStatus(jobId: string, status: JobStatus): Promise<void>;
}

export interface StoreHarness {
  store: JobStore;
  api: ApiSide;
  /** Another daemon's store on the same database. */
  openAnotherStore(): Promise<JobStore>;
  close(): Promise<void>;
}

const noDelay: RetryDelay = () => 0;
const LEASE_MS = 60_000;

export function describeJobStoreContract(name: string, openHarness: () => Promise<StoreHarness>): void {
  describe(`${name}: the JobStore contract`, () => {
    let harness: StoreHarness;
    let store: JobStore;
    let api: ApiSide;
    const extraStores: JobStore[] = [];
    beforeEach(async () => {
      harness = await openHarness();
      ({ store, api } = harness);
    });
    afterEach(async () => {
      for (const extra of extraStores.splice(0)) await extra.close();
      await harness.close();
    });

    let counter = 0;
    const uniqueId = (label: string) => {
      counter += 1;
      return `${label}-${process.pid}-${counter}`;
    };
    const claimFrom = (from: JobStore, taskTypes: readonly string[] = ['t'], workerId = 'w') =>
      from.claimNextJob({ workerId, taskTypes, leaseMs: LEASE_MS });
    const claim = (taskTypes: readonly string[] = ['t']) => claimFrom(store, taskTypes);
    /** Claims until nothing is left; returns the job ids in the order they were claimed. */
    const drainOrder = async (taskTypes: readonly string[] = ['t']) => {
      const order: string[] = [];
      for (let job = await claim(taskTypes); job; job = await claim(taskTypes)) order.push(job.jobId);
      return order;
    };
    const addJob = async (job: Partial<ApiJob> & { taskType?: string } = {}) => {
      const jobId = job.jobId ?? uniqueId('job');
      await api.insertJob({ taskType: 't', ...job, jobId });
      return jobId;
    };

    describe('queue order', () => {
      test('higher priority first, a job without a queue entry counts as 5, then created_at, then id', async () => {
        const base = Date.now() - 10_000;
        const low = await addJob({ priority: 1, createdAt: base });
        const noEntry = await addJob({ priority: null, createdAt: base + 2 });
        const normal = await addJob({ priority: 5, createdAt: base + 1 });
        const urgent = await addJob({ priority: 9, createdAt: base + 3 });
        const sameTimeFirst = await addJob({ priority: 5, createdAt: base + 5 });
        const sameTimeSecond = await addJob({ priority: 5, createdAt: base + 5 });
        assert.deepEqual(await drainOrder(), [urgent, normal, noEntry, sameTimeFirst, sameTimeSecond, low]);
      });

      test('FIFO within a priority, across task types the daemon serves', async () => {
        const base = Date.now() - 10_000;
        const ids: string[] = [];
        for (let i = 0; i < 6; i += 1) {
          ids.push(await addJob({ taskType: i % 2 === 0 ? 'a' : 'b', createdAt: base + i }));
        }
        await addJob({ taskType: 'not-mine', createdAt: base - 1 });
        assert.deepEqual(await drainOrder(['a', 'b']), ids);
      });

      test('a queue entry committed after its job still sets the job’s place', async () => {
        const base = Date.now() - 10_000;
        const first = await addJob({ createdAt: base });
        const late = await addJob({ priority: null, createdAt: base + 1 });
        await api.addQueueEntry(late, 8);
        assert.deepEqual(await drainOrder(), [late, first]);
      });

      test('a priority the API changes, or a queue entry it deletes, moves the job', async () => {
        const base = Date.now() - 10_000;
        const first = await addJob({ priority: 5, createdAt: base });
        const raised = await addJob({ priority: 5, createdAt: base + 1 });
        const demoted = await addJob({ priority: 9, createdAt: base + 2 });
        await api.setPriority(raised, 7);
        await api.deleteQueueEntry(demoted);
        assert.deepEqual(await drainOrder(), [raised, first, demoted]);
      });

      test('priorities changed after the worker has read the jobs move them, many at once included', async () => {
        const base = Date.now() - 10_000;
        const opener = await addJob({ priority: 10, createdAt: base - 1 });
        const first = await addJob({ priority: 5, createdAt: base });
        const raised = await addJob({ priority: 5, createdAt: base + 1 });
        const demoted = await addJob({ priority: 9, createdAt: base + 2 });
        const crowd: string[] = [];
        for (let i = 0; i < 100; i += 1) crowd.push(await addJob({ priority: 8, createdAt: base + 3 + i }));
        // A claim that finds a job: the next claim goes straight to its transaction, which reads what
        // changed since, a limited number at a time.
        assert.equal((await claim())?.jobId, opener);
        await api.setPriority(raised, 7);
        await api.deleteQueueEntry(demoted);
        // More changed entries than a claim reads in one go: the last one changed must still count.
        for (const jobId of crowd) await api.setPriority(jobId, 1);
        await api.setPriority(crowd.at(-1) ?? '', 6);
        assert.deepEqual(await drainOrder(), [raised, crowd.at(-1), first, demoted, ...crowd.slice(0, -1)]);
      });

      test('the right job is claimed among a large backlog of its own and other types', async () => {
        const base = Date.now() - 1_000_000;
        const backlog: ApiJob[] = [];
        for (let i = 0; i < 20_000; i += 1) {
          backlog.push({ jobId: uniqueId('bulk'), taskType: 't', createdAt: base + i, priority: i % 10 });
          backlog.push({ jobId: uniqueId('other'), taskType: 'other', createdAt: base + i, priority: 10 });
        }
        const wanted = { jobId: uniqueId('wanted'), taskType: 't', createdAt: base + 15_000, priority: 10 };
        backlog.push(wanted);
        await api.insertJobs(backlog);
        assert.equal((await claim())?.jobId, wanted.jobId);
        // Then the oldest of priority 9: the first i with i % 10 === 9.
        assert.equal((await claim())?.jobId, backlog[2 * 9]?.jobId);
      });
    });

    describe('what the API does to queued jobs', () => {
      test('a queued job the API deletes is never claimed, and the others still are', async () => {
        const kept = await addJob({ priority: 5 });
        const deleted = await addJob({ priority: 9 });
        await api.deleteJob(deleted);
        assert.deepEqual(await drainOrder(), [kept]);
        assert.equal(await store.getJob(deleted), undefined);
      });

      test('a queued job the API cancels (status error) is not claimed', async () => {
        const cancelled = await addJob({ priority: 9 });
        const kept = await addJob();
        await api.setStatus(cancelled, 'error');
        assert.deepEqual(await drainOrder(), [kept]);
      });

      test('a finished job the API puts back to queued is claimed again', async () => {
        const jobId = await addJob();
        const first = await claim();
        assert.ok(first);
        assert.equal(await store.completeJob(first.lease, { outputFiles: [], taskOutput: {} }), true);
        assert.equal(await claim(), undefined);
        await api.setStatus(jobId, 'queued');
        assert.equal((await claim())?.jobId, jobId);
      });

      test('the highest job id deleted and a new job inserted (SQLite may reuse the id): the new one is claimed', async () => {
        const first = await addJob();
        const last = await addJob();
        // A claim of another task type reads everything so far, the last job included.
        assert.equal(await claim(['nothing-queued']), undefined);
        await api.deleteJob(last);
        const replacement = await addJob();
        assert.deepEqual(await drainOrder(), [first, replacement]);
      });
    });

    describe('ids the database gives again', () => {
      test('the newest queue entry deleted, then another job’s entry inserted: its priority counts', async () => {
        const base = Date.now() - 10_000;
        const first = await addJob({ createdAt: base });
        const dropped = await addJob({ createdAt: base + 1 });
        // A claim of another task type reads everything so far, the dropped job's entry included.
        assert.equal(await claim(['nothing-queued']), undefined);
        await api.deleteQueueEntry(dropped);
        const urgent = await addJob({ priority: null, createdAt: base + 2 });
        assert.equal(await claim(['nothing-queued']), undefined);
        await api.addQueueEntry(urgent, 9);
        assert.deepEqual(await drainOrder(), [urgent, first, dropped]);
      });
    });

    describe('claiming', () => {
      test('claims only its own task types and marks the job claimed with a lease', async () => {
        await addJob({ taskType: 'other' });
        const mine = await addJob();
        const claimed = await claim();
        assert.equal(claimed?.jobId, mine);
        assert.equal(claimed?.attempt, 1);
        const row = await store.getJob(mine);
        assert.equal(row?.status, 'claimed');
        assert.equal(row?.worker?.worker_id, 'w');
        assert.ok((row?.worker?.lease_expires_at ?? 0) > Date.now());
        assert.equal(await claim(), undefined);
        assert.equal(await claim([]), undefined);
      });

      test('two daemons on one database never claim the same job', async () => {
        const other = await harness.openAnotherStore();
        extraStores.push(other);
        const jobs: ApiJob[] = [];
        for (let i = 0; i < 200; i += 1) jobs.push({ jobId: uniqueId('shared'), taskType: 't' });
        await api.insertJobs(jobs);
        const claimed: ClaimedJob[] = [];
        for (;;) {
          const [mine, theirs] = await Promise.all([
            claimFrom(store, ['t'], 'w1'),
            claimFrom(other, ['t'], 'w2'),
          ]);
          if (mine) claimed.push(mine);
          if (theirs) claimed.push(theirs);
          if (!mine && !theirs) break;
        }
        const ids = claimed.map((job) => job.jobId);
        assert.equal(new Set(ids).size, ids.length, 'a job was claimed twice');
        assert.deepEqual([...ids].sort(), jobs.map((job) => job.jobId).sort());
      });
    });

    describe('requeued jobs', () => {
      test('a retry waits out its backoff, then is claimed again in its place', async () => {
        const base = Date.now() - 10_000;
        const flaky = await addJob({ createdAt: base });
        const first = await claim();
        assert.equal(first?.jobId, flaky);
        assert.ok(first);
        const outcome = await store.failAttempt(
          first.lease,
          { message: 'flaky', retryable: true },
          () => 300,
        );
        assert.equal(outcome.kind, 'retrying');
        const younger = await addJob({ createdAt: base + 1 });
        assert.equal((await claim())?.jobId, younger, 'the retry was claimed during its backoff');
        assert.equal(await claim(), undefined);
        assert.equal(await store.hasQueuedJobs(['t']), true, 'a retry in backoff counts as queued');
        const dueAt = await store.nextRetryAt(['t']);
        assert.ok(
          dueAt !== undefined && dueAt > Date.now() - 1_000 && dueAt <= Date.now() + 300,
          `due at ${dueAt}`,
        );
        assert.equal(await store.nextRetryAt(['other']), undefined);
        const retried = await waitFor(() => claim(), 'the retry to be claimable after its backoff');
        assert.equal(retried.jobId, flaky);
        assert.equal(retried.attempt, 2);
        assert.equal((await store.getJob(flaky))?.worker?.last_error, 'flaky');
      });

      test('a job released at shutdown is claimable at once, ahead of younger jobs', async () => {
        const base = Date.now() - 10_000;
        const older = await addJob({ createdAt: base });
        const younger = await addJob({ createdAt: base + 1 });
        const claimed = await claim();
        assert.equal(claimed?.jobId, older);
        assert.ok(claimed);
        assert.equal(await store.releaseJob(claimed.lease), 'requeued');
        const again = await claim();
        assert.equal(again?.jobId, older);
        assert.equal(again?.retryCount, 0, 'a release spends no retry');
        assert.equal((await claim())?.jobId, younger);
      });

      test('a job taken back from a dead worker is claimed again', async () => {
        const jobId = await addJob();
        await store.claimNextJob({ workerId: 'dead', taskTypes: ['t'], leaseMs: -1 });
        const recovered = await store.recoverAbandonedJobs({ orphanAgeMs: 3_600_000, retryDelay: noDelay });
        assert.deepEqual(
          recovered.map((job) => [job.jobId, job.outcome.kind]),
          [[jobId, 'retrying']],
        );
        assert.match(recovered[0]?.reason ?? '', /worker dead stopped renewing its lease/);
        const again = await claim();
        assert.equal(again?.jobId, jobId);
        assert.equal(again?.attempt, 2);
      });

      test('retryable failures requeue until max_retries, then error names the attempts and the cause', async () => {
        const jobId = await addJob({ maxRetries: 2 });
        const outcomes = [];
        for (let attempt = 1; attempt <= 3; attempt += 1) {
          const claimed = await claim();
          assert.equal(claimed?.attempt, attempt);
          assert.ok(claimed);
          outcomes.push(
            await store.failAttempt(claimed.lease, { message: `boom ${attempt}`, retryable: true }, noDelay),
          );
        }
        assert.deepEqual(
          outcomes.map((outcome) => outcome.kind),
          ['retrying', 'retrying', 'failed'],
        );
        const row = await store.getJob(jobId);
        assert.equal(row?.status, 'error');
        assert.equal(row?.error_message, 'Failed after 3 attempts; last error: boom 3');
        assert.ok(row?.completed_at);
        assert.equal(row?.worker, null);
        assert.equal(await store.hasQueuedJobs(['t']), false);
      });

      test('a non-retryable failure ends in error at once', async () => {
        const jobId = await addJob();
        const claimed = await claim();
        assert.ok(claimed);
        await store.failAttempt(
          claimed.lease,
          { message: 'Invalid parameters: width: too small', retryable: false },
          noDelay,
        );
        const row = await store.getJob(jobId);
        assert.equal(row?.status, 'error');
        assert.equal(row?.retry_count, 0);
        assert.equal(row?.error_message, 'Invalid parameters: width: too small');
        assert.equal(await claim(), undefined);
      });
    });

    describe('leases', () => {
      test('a fenced runner (lease taken back) writes nothing', async () => {
        const jobId = await addJob();
        const stale = await claim();
        assert.ok(stale);
        assert.equal(await store.markProcessing(stale.lease), true);
        assert.equal(await store.releaseJob(stale.lease), 'requeued');
        const fresh = await claim();
        assert.ok(fresh);
        assert.notEqual(fresh.lease.token, stale.lease.token);

        assert.equal(await store.markProcessing(stale.lease), false);
        assert.equal(await store.reportProgress(stale.lease, 50), false);
        assert.equal(
          await store.completeJob(stale.lease, { outputFiles: [], taskOutput: { stale: true } }),
          false,
        );
        assert.deepEqual(await store.failAttempt(stale.lease, { message: 'x', retryable: true }, noDelay), {
          kind: 'fenced',
        });
        assert.equal(await store.releaseJob(stale.lease), 'fenced');
        const row = await store.getJob(jobId);
        assert.equal(row?.status, 'claimed');
        assert.equal(row?.task_output, null);

        assert.equal(
          await store.completeJob(fresh.lease, { outputFiles: [], taskOutput: { fresh: true } }),
          true,
        );
        const done = await store.getJob(jobId);
        assert.equal(done?.status, 'completed');
        assert.equal(done?.progress, 100);
        assert.deepEqual(done?.task_output, { fresh: true });
      });

      test('progress is stored as a whole number below 100 until completion', async () => {
        const jobId = await addJob();
        const claimed = await claim();
        assert.ok(claimed);
        await store.markProcessing(claimed.lease);
        await store.reportProgress(claimed.lease, 100);
        assert.equal((await store.getJob(jobId))?.progress, 99);
        await store.reportProgress(claimed.lease, 41.7);
        assert.equal((await store.getJob(jobId))?.progress, 41);
        await store.reportProgress(claimed.lease, Number.NaN);
        assert.equal((await store.getJob(jobId))?.progress, 0);
        const row = await store.getJob(jobId);
        assert.equal(row?.status, 'processing');
        assert.ok(row?.started_at);
      });

      test('renewLeases tells jobs taken by someone else from attempts that already ended', async () => {
        const kept = await addJob();
        const deleted = await addJob();
        const cancelled = await addJob();
        const completed = await addJob();
        const retried = await addJob();
        const stolen = await addJob();
        const leases = new Map<string, ClaimedJob['lease']>();
        for (let i = 0; i < 6; i += 1) {
          const job = await claim();
          assert.ok(job);
          leases.set(job.jobId, job.lease);
        }
        const leaseOf = (jobId: string) => leases.get(jobId) as ClaimedJob['lease'];
        await api.deleteJob(deleted);
        await api.setStatus(cancelled, 'error');
        // Its runner recorded the outcome itself, a moment before the daemon renews.
        assert.equal(await store.completeJob(leaseOf(completed), { outputFiles: [], taskOutput: {} }), true);
        await store.failAttempt(leaseOf(retried), { message: 'flaky', retryable: true }, () => 60_000);
        // Taken back and claimed by another worker.
        assert.equal(await store.releaseJob(leaseOf(stolen)), 'requeued');
        assert.equal((await claimFrom(store, ['t'], 'other'))?.jobId, stolen);

        const renewal = await store.renewLeases([...leases.values()], LEASE_MS);
        assert.deepEqual(renewal.lost.sort(), [deleted, cancelled, stolen].sort());
        assert.deepEqual(renewal.ended.sort(), [completed, retried].sort());
        assert.equal((await store.getJob(kept))?.status, 'claimed');
        assert.ok(((await store.getJob(kept))?.worker?.lease_expires_at ?? 0) > Date.now() + LEASE_MS / 2);
      });
    });

    describe('operator requests', () => {
      test('retry puts a job that ended in error back in the queue with a fresh budget, and refuses others', async () => {
        const jobId = await addJob({ maxRetries: 0 });
        const job = await claim();
        assert.ok(job);
        await store.failAttempt(job.lease, { message: 'broken', retryable: true }, noDelay);
        assert.equal((await store.getJob(jobId))?.status, 'error');
        assert.deepEqual(await store.retryJob(jobId), { kind: 'requeued' });
        const requeued = await store.getJob(jobId);
        assert.equal(requeued?.status, 'queued');
        assert.equal(requeued?.retry_count, 0);
        assert.equal(requeued?.error_message, null);
        assert.equal(requeued?.worker, null, 'the old attempts’ bookkeeping is gone');
        assert.equal((await claim())?.jobId, jobId);
        const refused = await store.retryJob(jobId);
        assert.equal(refused.kind, 'refused');
        assert.match(
          refused.kind === 'refused' ? refused.reason : '',
          /is claimed: only a job that ended in error/,
        );
        assert.deepEqual(await store.retryJob('no-such-job'), {
          kind: 'refused',
          reason: 'no job no-such-job',
        });
      });

      test('cancel ends a queued job at once, asks a running one to stop, and refuses a finished one', async () => {
        const queued = await addJob({ priority: 1 });
        const running = await addJob({ priority: 9 });
        const job = await claim();
        assert.equal(job?.jobId, running);
        assert.deepEqual(await store.cancelJob(queued), { kind: 'cancelled' });
        const cancelled = await store.getJob(queued);
        assert.equal(cancelled?.status, 'error');
        assert.equal(cancelled?.error_message, 'cancelled');
        assert.equal(await claim(), undefined, 'a cancelled job is never claimed');

        assert.ok(job);
        assert.deepEqual(await store.cancelRequested([job.lease]), []);
        assert.deepEqual(await store.cancelJob(running), { kind: 'cancel-requested', workerId: 'w' });
        assert.deepEqual(await store.cancelRequested([job.lease]), [job.lease]);
        // A request belongs to the attempt it was made for, not to a later one: this attempt
        // completes before its daemon acts on it, and the API runs the job again.
        assert.equal(await store.completeJob(job.lease, { outputFiles: [], taskOutput: {} }), true);
        await api.setStatus(running, 'queued');
        const again = await claim();
        assert.equal(again?.jobId, running);
        assert.ok(again);
        assert.deepEqual(await store.cancelRequested([again.lease]), []);
        await store.completeJob(again.lease, { outputFiles: [], taskOutput: {} });
        assert.deepEqual(await store.cancelJob(running), {
          kind: 'refused',
          reason: `job ${running} has already ended (completed)`,
        });
      });

      test('a cancel its daemon could not carry out ends the job when it is released or taken back', async () => {
        const released = await addJob({ priority: 9 });
        const recovered = await addJob({ priority: 1 });
        const first = await claim();
        const second = await store.claimNextJob({ workerId: 'dead', taskTypes: ['t'], leaseMs: 1 });
        assert.deepEqual([first?.jobId, second?.jobId], [released, recovered]);
        assert.ok(first);
        assert.equal((await store.cancelJob(released)).kind, 'cancel-requested');
        assert.equal((await store.cancelJob(recovered)).kind, 'cancel-requested');
        // A shutdown releases the job: the cancel wins over the requeue.
        assert.equal(await store.releaseJob(first.lease), 'cancelled');
        // A dead daemon's job is taken back: the cancel wins over the retry.
        await waitFor(async () => {
          const back = await store.recoverAbandonedJobs({ orphanAgeMs: 3_600_000, retryDelay: noDelay });
          return back.find((job) => job.jobId === recovered);
        }, 'the dead daemon’s lease to expire').then((job) =>
          assert.deepEqual(job.outcome, { kind: 'failed', errorMessage: 'cancelled', cancelled: true }),
        );
        // Its runner failed in a way worth a retry: the cancel wins over the retry.
        const failing = await addJob();
        const third = await claim();
        assert.equal(third?.jobId, failing);
        assert.ok(third);
        await store.cancelJob(failing);
        assert.deepEqual(
          await store.failAttempt(third.lease, { message: 'flaky', retryable: true }, noDelay),
          { kind: 'failed', errorMessage: 'cancelled', cancelled: true },
        );
        for (const jobId of [released, recovered, failing]) {
          const job = await store.getJob(jobId);
          assert.deepEqual([job?.status, job?.error_message], ['error', 'cancelled'], jobId);
        }
        assert.equal(await claim(), undefined);
      });

      test('jobs list: newest first, queued jobs in claim order, by status and task type', async () => {
        const base = Date.now() - 10_000;
        const low = await addJob({ priority: 1, createdAt: base });
        const high = await addJob({ priority: 8, createdAt: base + 1 });
        const noEntry = await addJob({ priority: null, createdAt: base + 2 });
        const other = await addJob({ taskType: 'other', createdAt: base + 3 });
        const ids = (jobs: { job_id: string }[]) => jobs.map((job) => job.job_id);
        assert.deepEqual(ids(await store.listJobs({ limit: 10 })), [other, noEntry, high, low]);
        assert.deepEqual(ids(await store.listJobs({ status: 'queued', taskType: 't', limit: 10 })), [
          high,
          noEntry,
          low,
        ]);
        assert.deepEqual(ids(await store.listJobs({ status: 'queued', limit: 3 })), [high, noEntry, other]);
        const [first] = await store.listJobs({ taskType: 'other', limit: 1 });
        assert.equal(first?.status, 'queued');
        assert.equal(first?.priority, 5);
        assert.equal(first?.created_at, base + 3);
        assert.deepEqual(await store.listJobs({ status: 'completed', limit: 10 }), []);
      });

      test('jobs list pages on, and lists finished jobs by when they finished', async () => {
        const base = Date.now() - 10_000;
        const created = [];
        for (let index = 0; index < 5; index += 1) created.push(await addJob({ createdAt: base + index }));
        const ids = (jobs: { job_id: string }[]) => jobs.map((job) => job.job_id);
        assert.deepEqual(ids(await store.listJobs({ limit: 2, offset: 2 })), [created[2], created[1]]);
        assert.deepEqual(ids(await store.listJobs({ limit: 2, offset: 4 })), [created[0]]);
        assert.deepEqual(await store.listJobs({ limit: 2, offset: 5 }), []);
        // Claimed oldest first; the first claimed fails last, so it heads the list of errors.
        const first = await claim();
        const second = await claim();
        assert.ok(first && second);
        await store.failAttempt(second.lease, { message: 'second', retryable: false }, noDelay);
        await waitFor(
          async () => (await store.getJob(second.jobId))?.completed_at !== Date.now(),
          'a new ms',
        );
        await store.failAttempt(first.lease, { message: 'first', retryable: false }, noDelay);
        assert.deepEqual(ids(await store.listJobs({ status: 'error', limit: 10 })), [
          first.jobId,
          second.jobId,
        ]);
      });

      test('queue overview: totals, unfinished jobs by type, and finished jobs per minute', async () => {
        const since = Date.now() - 60_000;
        const before = await store.changeMarker();
        await addJob();
        await addJob();
        await addJob({ taskType: 'other' });
        await waitFor(async () => (await store.changeMarker()) !== before, 'the marker to move');
        const done = await claim();
        const running = await claim();
        assert.ok(done && running);
        await store.completeJob(done.lease, { outputFiles: [], taskOutput: {} });
        const overview = await store.queueOverview(since);
        assert.deepEqual(overview.totals, [
          { status: 'claimed', jobs: 1 },
          { status: 'completed', jobs: 1 },
          { status: 'queued', jobs: 1 },
        ]);
        assert.deepEqual(overview.active, [
          { task_type: 'other', status: 'queued', jobs: 1 },
          { task_type: 't', status: 'claimed', jobs: 1 },
        ]);
        const completedAt = (await store.getJob(done.jobId))?.completed_at ?? 0;
        assert.deepEqual(overview.finished, [
          { minute: Math.floor(completedAt / 60_000), task_type: 't', status: 'completed', jobs: 1 },
        ]);
        assert.deepEqual((await store.queueOverview(completedAt + 1)).finished, []);
      });

      test('jobs stats: counts by task type and status, and the oldest queued job of each type', async () => {
        const base = Date.now() - 10_000;
        await addJob({ createdAt: base + 5 });
        await addJob({ createdAt: base + 1 });
        await addJob({ taskType: 'other', createdAt: base + 3 });
        const job = await claim();
        assert.ok(job);
        await store.completeJob(job.lease, { outputFiles: [], taskOutput: {} });
        const stats = await store.jobStats();
        assert.deepEqual(stats.counts, [
          { task_type: 'other', status: 'queued', jobs: 1 },
          { task_type: 't', status: 'completed', jobs: 1 },
          { task_type: 't', status: 'queued', jobs: 1 },
        ]);
        assert.deepEqual(stats.oldestQueued, [
          { task_type: 'other', created_at: base + 3 },
          { task_type: 't', created_at: base + 5 },
        ]);
      });
    });

    describe('wake-up', () => {
      test('watchQueue reports a job another connection inserts', async () => {
        const controller = new AbortController();
        let changes = 0;
        const watching = store.watchQueue(() => {
          changes += 1;
        }, controller.signal);
        try {
          assert.equal(watching, true, 'this store can report changes');
          const jobId = await addJob();
          await waitFor(() => changes > 0, 'the change to be reported');
          assert.equal((await claim())?.jobId, jobId);
        } finally {
          controller.abort();
        }
      });
    });
  });
}
