/**
 * The daemon on PostgreSQL, end to end: real daemons, real runners, a real server. Each test has a
 * database of its own on the shared server, or (for a restart) a server of its own.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import sharp from 'sharp';
import { solidJpeg } from '../helpers/images.js';
import { startPrivateServer } from '../helpers/postgres.js';
import {
  databaseEnv,
  deadDaemonsCancelledJobLeavesNoOutput,
  killedDaemonJobIsRecovered,
  runningJobIsCancelled,
  startedLines,
} from '../helpers/scenarios.js';
import { drainBuiltIn, runCli, startWorker } from '../helpers/worker-process.js';
import { createWorkspace, useWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

const JOBS = 2000;
const DAEMONS = 4;

async function query<Row extends pg.QueryResultRow>(
  databaseUrl: string,
  text: string,
  values: unknown[] = [],
) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<Row>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('the daemon on PostgreSQL', () => {
  let workspace: Workspace;
  useWorkspace(
    (created) => {
      workspace = created;
    },
    { postgres: true },
  );
  const worker = (args: readonly string[]) => startWorker(workspace.dir, args, databaseEnv(workspace));

  test(`${DAEMONS} daemons at concurrency 2 run each of ${JOBS} jobs exactly once`, async () => {
    const logFile = path.join(workspace.dir, 'executions.log');
    const inputPath = workspace.addInputFile('shared', 'input.txt', 'x');
    const inputFiles = JSON.stringify([{ path: inputPath, metadata: { log_file: logFile } }]);
    await query(
      workspace.databaseUrl,
      `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files,
         status, progress, created_at, retry_count, max_retries)
       SELECT 'job-' || n, 'append', 'upload', $1, $2, '[]', 'queued', 0, $3::bigint + n, 0, 3
       FROM generate_series(1, ${JOBS}) AS n`,
      [inputPath, inputFiles, Date.now()],
    );
    const workers = Array.from({ length: DAEMONS }, (_, index) =>
      // Every job reads the one shared input.
      worker([
        '--input-scope',
        'root',
        '--worker-id',
        `w${index}`,
        '--tasks',
        'append',
        '--concurrency',
        '2',
        '--drain',
      ]),
    );
    const exits = await Promise.all(workers.map((one) => one.exited));
    for (const [index, exit] of exits.entries()) {
      assert.equal(
        exit.code,
        0,
        `worker ${index} exited ${exit.code}: ${workers[index]?.stderr().slice(-1000)}`,
      );
    }
    const statuses = await query(
      workspace.databaseUrl,
      'SELECT status, count(*)::int AS n FROM jobs GROUP BY status',
    );
    assert.deepEqual(statuses, [{ status: 'completed', n: JOBS }]);
    const executions = startedLines(logFile).map((line) => line.split(' ')[0]);
    assert.equal(executions.length, JOBS, 'number of executions');
    assert.equal(new Set(executions).size, JOBS, 'distinct jobs executed');
    const claimsPerWorker = workers.map(
      (one) => one.logs.filter((line) => line.msg === 'job claimed').length,
    );
    assert.equal(
      claimsPerWorker.reduce((sum, count) => sum + count, 0),
      JOBS,
    );
    assert.ok(
      claimsPerWorker.every((count) => count > 0),
      `every daemon took work: ${claimsPerWorker}`,
    );
    const warnings = workers.flatMap((one) => one.logs.filter((line) => Number(line.level) >= 40));
    assert.deepEqual(warnings, [], 'no lock timeouts, deadlocks or faults');
  });

  test('kill -9 of a daemon mid-job: another daemon completes the job after the lease expires', () =>
    killedDaemonJobIsRecovered(workspace));

  test('submit and jobs show through the CLI, a real image module, and a shutdown that requeues', async () => {
    const env = { CL_SERVER_DIR: workspace.dir, ...databaseEnv(workspace) };
    const photo = path.join(workspace.dir, 'photo.jpg');
    fs.writeFileSync(photo, await solidJpeg(400, 300, '#3366cc'));
    const submitted = await runCli(['submit', 'image_resize', photo, '--params', '{"width":100}'], env);
    assert.equal(submitted.code, 0, submitted.stderr);
    const jobId = submitted.stdout.trim();
    const queued = JSON.parse((await runCli(['jobs', 'show', jobId], env)).stdout);
    assert.equal(queued.status, 'queued');
    assert.equal(queued.priority, 5);
    await drainBuiltIn(workspace.dir, ['image_resize'], [], env);
    // The database is all a jobs command needs: no storage root on this host.
    const shown = await runCli(['jobs', 'show', jobId], { ...databaseEnv(workspace), CL_SERVER_DIR: '' });
    assert.equal(shown.code, 0, shown.stderr);
    const done = JSON.parse(shown.stdout);
    assert.equal(done.status, 'completed', done.error_message);
    assert.deepEqual(done.task_output.resized_dimensions, [100, 75]);
    const output = path.join(workspace.storageRoot, 'jobs', jobId, 'output', done.output_files[0].filename);
    assert.equal((await sharp(output).metadata()).width, 100);

    const startedFile = path.join(workspace.dir, 'started');
    const sleeper = await workspace.addJob('sleep', { seconds: 60, started_file: startedFile });
    const daemon = worker(['--tasks', 'sleep', '--shutdown-grace', '0.3']);
    await waitFor(() => startedLines(startedFile)[0], 'the job to start');
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.exited).code, 0);
    const requeued = await workspace.store.getJob(sleeper);
    assert.equal(requeued?.status, 'queued');
    assert.equal(requeued?.retry_count, 0, 'a shutdown spends no retry');
  });

  test('no password in any process argument, log line or /metrics: DATABASE_URL set only in the environment', async () => {
    // Trust authentication accepts any password, so one can ride in the URL for this test.
    const secret = `pw-${process.pid}-not-in-ps`;
    const url = new URL(workspace.databaseUrl);
    url.password = secret;
    const startedFile = path.join(workspace.dir, 'started');
    const gateFile = path.join(workspace.dir, 'gate');
    const jobId = await workspace.addJob('gate', { started_file: startedFile, gate_file: gateFile });
    const daemon = startWorker(workspace.dir, ['--tasks', 'gate', '--http-port', '0', '--drain'], {
      DATABASE_URL: url.toString(),
      MQTT_PASSWORD: `${secret}-mqtt`,
    });
    const listening = await daemon.waitForLog((line) =>
      String(line.msg).startsWith('HTTP endpoints listening'),
    );
    await waitFor(() => startedLines(startedFile)[0], 'the job to start in its runner');
    const withSecret = fs
      .readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .map((pid) => {
        try {
          return { pid, args: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ') };
        } catch {
          return { pid, args: '' }; // the process ended while the list was read
        }
      })
      .filter(({ args }) => args.includes(secret));
    assert.deepEqual(withSecret, [], 'no process shows the password in its arguments');
    const metrics = await (await fetch(`http://127.0.0.1:${listening.port}/metrics`)).text();
    assert.match(metrics, /media_worker_/);
    assert.doesNotMatch(metrics, new RegExp(secret));
    fs.writeFileSync(gateFile, '');
    assert.equal((await daemon.exited).code, 0, daemon.stderr());
    assert.equal((await workspace.store.getJob(jobId))?.status, 'completed');
    const logged = JSON.stringify(daemon.logs) + daemon.stderr();
    assert.doesNotMatch(logged, new RegExp(secret), 'no log line holds a password');
  });

  test('jobs cancel stops a running job through the daemon that runs it', () =>
    runningJobIsCancelled(workspace));

  test('a cancel whose daemon died first: the daemon that takes the job back ends it and removes its output', () =>
    deadDaemonsCancelledJobLeavesNoOutput(workspace));

  test('a job the API inserts wakes an idle daemon at once (LISTEN/NOTIFY), not at its next poll', async () => {
    const daemon = worker(['--worker-id', 'idle', '--tasks', 'noop', '--poll-interval', '3600']);
    await daemon.waitForLog((line) => line.msg === 'worker started');
    const jobId = await workspace.addJob('noop');
    await daemon.waitForLog((line) => line.msg === 'job completed' && line.job_id === jobId);
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.exited).code, 0);
  });
});

describe('the daemon through a PostgreSQL server restart', () => {
  test('jobs in flight finish or are requeued, none is lost or charged, and the daemon keeps running', async () => {
    const server = await startPrivateServer();
    const workspace = await createWorkspace({ postgres: { serverUrl: server.url } });
    try {
      const startedFile = path.join(workspace.dir, 'started');
      const jobIds: string[] = [];
      for (let i = 0; i < 6; i += 1) {
        jobIds.push(await workspace.addJob('sleep', { seconds: 1, started_file: startedFile }));
      }
      // Renewals every second: the daemon notices the server gone while its two slots are busy.
      const daemon = startWorker(
        workspace.dir,
        ['--worker-id', 'through-restart', '--tasks', 'sleep', '--concurrency', '2', '--lease-ttl', '3'],
        { DATABASE_URL: workspace.databaseUrl },
      );
      await waitFor(() => startedLines(startedFile).length >= 2, 'two jobs to start');
      await server.stop();
      await daemon.waitForLog((line) => String(line.msg).startsWith('worker-side fault:'));
      await server.start();
      await daemon.waitForLog((line) => line.msg === 'worker-side fault cleared; claiming again');
      await waitFor(async () => {
        const rows = await query<{ n: number }>(
          workspace.databaseUrl,
          "SELECT count(*)::int AS n FROM jobs WHERE status = 'completed'",
        );
        return rows[0]?.n === jobIds.length;
      }, 'every job to complete');
      for (const jobId of jobIds) {
        const job = await workspace.store.getJob(jobId);
        assert.equal(job?.status, 'completed', jobId);
        assert.equal(job?.retry_count, 0, `${jobId}: a server restart is no fault of the job`);
      }
      assert.equal(daemon.child.exitCode, null, 'the daemon is still running');
      // One line per change of state: the server went away, it came back (and the same for the
      // connection that listens for new jobs), not a line per failed statement.
      const said = (msg: string) => daemon.logs.filter((line) => line.msg === msg).length;
      assert.equal(daemon.logs.filter((line) => String(line.msg).startsWith('worker-side fault:')).length, 1);
      assert.equal(said('worker-side fault cleared; claiming again'), 1);
      assert.equal(said('lost the connection that listens for new jobs; polling until it is back'), 1);
      assert.equal(said('listening for new jobs again'), 1);
      assert.equal(said('lease renewal failed; will try again'), 0);
      daemon.child.kill('SIGTERM');
      assert.equal((await daemon.exited).code, 0, daemon.stderr());
    } finally {
      await workspace.cleanup();
      await server.remove();
    }
  });
});
