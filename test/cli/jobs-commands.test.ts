/** The operator's commands, through the real CLI: jobs list, stats, retry, cancel; submit's checks; --version. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { type Broker, useBroker } from '../helpers/mosquitto.js';
import { deadDaemonsCancelledJobLeavesNoOutput, runningJobIsCancelled } from '../helpers/scenarios.js';
import { runCli, runScript, startWorker, TEST_MODULES } from '../helpers/worker-process.js';
import { repoFile, useWorkspace, type Workspace } from '../helpers/workspace.js';

describe('operator commands', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });
  const cli = (args: readonly string[], env: Record<string, string> = {}) =>
    runCli(args, {
      CL_SERVER_DIR: workspace.dir,
      WORKER_MODULES_DIR: TEST_MODULES,
      BROADCAST_TYPE: 'noop',
      ...env,
    });

  test('--version prints the package version', async () => {
    const result = await cli(['--version']);
    const { version } = JSON.parse(
      fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
    );
    assert.equal(result.stdout.trim(), version);
  });

  test('submit refuses an unknown task type and parameters its module rejects, inserting nothing', async () => {
    const input = path.join(workspace.dir, 'in.txt');
    fs.writeFileSync(input, 'x');
    const unknown = await cli(['submit', 'nosuchtask', input]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown task type 'nosuchtask'; the modules are: .*noop/);
    const badParams = await cli(['submit', 'sleep', input, '--params', '{"seconds":"soon"}']);
    assert.equal(badParams.code, 2);
    assert.match(badParams.stderr, /sleep: Invalid parameters: seconds: /);
    assert.deepEqual(await workspace.store.listJobs({ limit: 10 }), []);
  });

  test('jobs list and jobs stats, as text and as JSON', async () => {
    const low = await workspace.addJob('noop', {}, { priority: 1 });
    const high = await workspace.addJob('noop', {}, { priority: 9 });
    const sleeper = await workspace.addJob('sleep', { seconds: 1 });
    const queued = JSON.parse((await cli(['jobs', 'list', '--status', 'queued', '--json'])).stdout);
    assert.deepEqual(
      queued.map((job: { job_id: string }) => job.job_id),
      [high, sleeper, low],
    );
    const text = (await cli(['jobs', 'list', '--task', 'noop'])).stdout;
    assert.match(text, /^JOB_ID\s+TASK\s+STATUS\s+PRIORITY/);
    assert.match(text, new RegExp(`${high}\\s+noop\\s+queued\\s+9`));
    const bad = await cli(['jobs', 'list', '--status', 'done']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /expected one of queued, claimed, processing, completed, error/);

    const stats = JSON.parse((await cli(['jobs', 'stats', '--json'])).stdout);
    assert.deepEqual(stats.counts, [
      { task_type: 'noop', status: 'queued', jobs: 2 },
      { task_type: 'sleep', status: 'queued', jobs: 1 },
    ]);
    assert.deepEqual(
      stats.oldest_queued.map((row: { task_type: string }) => row.task_type),
      ['noop', 'sleep'],
    );
    assert.equal(stats.unserved, null);
    assert.match(stats.unserved_unknown_because, /no broker configured/);
    const table = (await cli(['jobs', 'stats'])).stdout;
    assert.match(table, /^TASK\s+QUEUED\s+CLAIMED\s+PROCESSING\s+COMPLETED\s+ERROR\s+OLDEST QUEUED/);
    assert.match(table, /noop\s+2\s+0\s+0\s+0\s+0\s+\d+ s/);
  });

  test('jobs retry requeues a failed job with a fresh budget, and refuses the rest with the reason', async () => {
    const failing = await workspace.addJob('noop', {}, { maxRetries: 0 });
    const job = await workspace.store.claimNextJob({ workerId: 'w', taskTypes: ['noop'], leaseMs: 60_000 });
    assert.ok(job);
    await workspace.store.failAttempt(job.lease, { message: 'broken input', retryable: false }, () => 0);
    const queued = await workspace.addJob('noop');
    const result = await cli(['jobs', 'retry', failing, queued, 'no-such-job']);
    assert.equal(result.code, 1, 'some were refused');
    assert.deepEqual(result.stdout.trim().split('\n'), [
      `${failing}: requeued`,
      `${queued}: refused: job ${queued} is queued: only a job that ended in error is retried`,
      'no-such-job: refused: no job no-such-job',
    ]);
    const retried = await workspace.store.getJob(failing);
    assert.equal(retried?.status, 'queued');
    assert.equal(retried?.error_message, null);
    const worker = startWorker(workspace.dir, ['--tasks', 'noop', '--drain']);
    assert.equal((await worker.exited).code, 0);
    assert.equal((await workspace.store.getJob(failing))?.status, 'completed');
    const completed = worker.logs.find((line) => line.msg === 'job completed' && line.job_id === failing);
    assert.equal(typeof completed?.duration_ms, 'number', 'job completed lines carry duration_ms');
  });

  test('jobs cancel ends a queued job at once and refuses a finished one', async () => {
    const queued = await workspace.addJob('noop');
    const first = await cli(['jobs', 'cancel', queued, '--json']);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), [{ job_id: queued, outcome: 'cancelled' }]);
    const job = await workspace.store.getJob(queued);
    assert.equal(job?.status, 'error');
    assert.equal(job?.error_message, 'cancelled');
    const again = await cli(['jobs', 'cancel', queued]);
    assert.equal(again.code, 1);
    assert.equal(again.stdout.trim(), `${queued}: refused: job ${queued} has already ended (error)`);
  });

  test('jobs cancel stops a running job through the daemon that runs it', () =>
    runningJobIsCancelled(workspace));

  test('a cancel whose daemon died first: the daemon that takes the job back ends it and removes its output', () =>
    deadDaemonsCancelledJobLeavesNoOutput(workspace));
});

describe('what operators expect of a command line', () => {
  test('a worker that creates the database says where', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-fresh-'));
    try {
      const worker = startWorker(dir, ['--tasks', 'noop', '--drain']);
      assert.equal((await worker.exited).code, 0, worker.stderr());
      const created = worker.logs.find((line) => String(line.msg).startsWith('created the database'));
      assert.equal(created?.database, path.join(dir, 'media_store.db'));
      const again = startWorker(dir, ['--tasks', 'noop', '--drain']);
      assert.equal((await again.exited).code, 0);
      assert.equal(
        again.logs.some((line) => String(line.msg).startsWith('created the database')),
        false,
        'only when it did',
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('jobs commands on a folder with no database, or a file with no jobs table, say so and create nothing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-nodb-'));
    try {
      const env = { CL_SERVER_DIR: dir, BROADCAST_TYPE: 'noop' };
      const missing = await runCli(['jobs', 'list'], env);
      assert.equal(missing.code, 2);
      assert.equal(
        missing.stderr.trim(),
        `media-worker: no database at ${path.join(dir, 'media_store.db')} (from DATABASE_URL or CL_SERVER_DIR); the worker or the API service creates it`,
      );
      assert.deepEqual(fs.readdirSync(dir), [], 'no file was created');

      const other = new Database(path.join(dir, 'media_store.db'));
      other.exec('CREATE TABLE notes (text TEXT)');
      other.close();
      const foreign = await runCli(['jobs', 'show', 'some-job'], env);
      assert.equal(foreign.code, 2);
      assert.match(
        foreign.stderr,
        /media_store\.db has no jobs table: it is not media_store\.db, or neither/,
      );
      const after = new Database(path.join(dir, 'media_store.db'), { readonly: true });
      assert.equal(after.pragma('journal_mode', { simple: true }), 'delete', 'the file is left as it was');
      after.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('jobs list on a database only the API service has used lists its jobs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-apidb-'));
    try {
      const api = new Database(path.join(dir, 'media_store.db'));
      api.pragma('journal_mode = WAL');
      api.exec(fs.readFileSync(repoFile('docs/media_store-v1.sql'), 'utf8'));
      api
        .prepare(
          `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files,
             status, progress, created_at, retry_count, max_retries)
           VALUES ('from-the-api', 'noop', 'upload', '', '[]', '[]', 'queued', 0, ?, 0, 3)`,
        )
        .run(Date.now());
      api.close();
      const listed = await runCli(['jobs', 'list', '--json'], { CL_SERVER_DIR: dir, BROADCAST_TYPE: 'noop' });
      assert.equal(listed.code, 0, listed.stderr);
      assert.deepEqual(
        JSON.parse(listed.stdout).map((job: { job_id: string }) => job.job_id),
        ['from-the-api'],
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the command says so when the build is missing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-unbuilt-'));
    try {
      fs.mkdirSync(path.join(dir, 'bin'));
      fs.copyFileSync(repoFile('bin/media-worker.js'), path.join(dir, 'bin', 'media-worker.js'));
      const result = await runScript(path.join(dir, 'bin', 'media-worker.js'), ['--version']);
      assert.equal(result.code, 2);
      assert.match(
        result.stderr,
        /the worker is not built \(dist\/ is missing\)\. Run `npm ci && npm run build`/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('jobs stats with a broker', () => {
  let broker: Broker;
  useBroker((started) => {
    broker = started;
  });
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('names the queued task types no live worker serves, from the retained announcements', async () => {
    const mqttEnv = { BROADCAST_TYPE: 'mqtt', MQTT_BROKER: broker.url };
    const daemon = startWorker(workspace.dir, ['--worker-id', 'noop-only', '--tasks', 'noop'], mqttEnv);
    await daemon.waitForLog((line) => line.msg === 'worker started');
    await workspace.addJob('sleep', { seconds: 1 });
    const env = { CL_SERVER_DIR: workspace.dir, ...mqttEnv };
    const stats = JSON.parse((await runCli(['jobs', 'stats', '--json'], env)).stdout);
    assert.deepEqual(stats.unserved, ['sleep']);
    const text = (await runCli(['jobs', 'stats'], env)).stdout;
    assert.match(text, /queued but served by no live worker: sleep/);
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.exited).code, 0);
  });
});
