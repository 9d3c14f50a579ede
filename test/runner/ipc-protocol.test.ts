/**
 * The IPC between the daemon and a runner is parsed at both ends: a message of the wrong shape is
 * an error that names itself, and the job it concerns ends saying so.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { RunnerInit } from '../../worker/runner/protocol.js';
import { DIST, startWorker, TEST_MODULES } from '../helpers/worker-process.js';
import { useWorkspace, type Workspace } from '../helpers/workspace.js';

describe('the runner protocol is checked at both ends', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('a runner sending a malformed message is killed, and its job ends quoting what was wrong', async () => {
    const broken = await workspace.addJob('bad_message', {}, { maxRetries: 0 });
    const healthy = await workspace.addJob('noop');
    const worker = startWorker(workspace.dir, ['--tasks', 'bad_message,noop', '--drain']);
    assert.equal((await worker.exited).code, 0, worker.stderr());
    const job = await workspace.store.getJob(broken);
    assert.equal(job?.status, 'error');
    assert.match(
      job?.error_message ?? '',
      /runner crashed: killed by the daemon: malformed message from the runner \(type "progress"\) at progress: .*expected number/,
    );
    assert.equal((await workspace.store.getJob(healthy))?.status, 'completed');
  });

  test('a runner given a malformed message exits 70 and says what was wrong on stderr', async () => {
    const init: RunnerInit = {
      moduleName: 'noop',
      moduleDirectory: path.join(TEST_MODULES, 'noop'),
      databaseUrl: workspace.databaseUrl,
      storageRoot: workspace.storageRoot,
      workerId: 'w',
      logLevel: 'silent',
      retryBackoffMs: 0,
      busyTimeoutMs: 1000,
      retryBackoffMaxMs: 0,
      limits: { maxInputPixels: 1000, maxOutputPixels: 1000 },
      inputScope: 'job',
      settings: {},
    };
    const runner = fork(path.join(DIST, 'worker/runner/runner-main.js'), [], {
      serialization: 'json',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    runner.send({ type: 'init', init });
    let stderr = '';
    runner.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => runner.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) =>
      runner.on('message', (message: { type?: string }) => {
        if (message.type === 'ready') resolve();
      }),
    );
    runner.send({ type: 'run', job: { jobId: 7 } });
    assert.equal(await exited, 70);
    assert.match(stderr, /malformed message from the daemon \(type "run"\) at job\.jobId: .*expected string/);
  });

  test('a runner refuses a malformed init message, exiting 70', async () => {
    const runner = fork(path.join(DIST, 'worker/runner/runner-main.js'), [], {
      serialization: 'json',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    runner.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => runner.on('exit', (code) => resolve(code)));
    runner.send({ type: 'init', init: { moduleName: 'noop', databaseUrl: 42 } });
    assert.equal(await exited, 70);
    assert.match(stderr, /malformed message from the daemon \(type "init"\) at init\./);
  });
});
