/**
 * Rows the API stored that no module can use: each ends in `error` at once with a message that says
 * what is wrong with the row, bounded in size, and nothing else is affected (no file outside the
 * storage root, no poisoned runner, the next job runs).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { startWorker, type WorkerProcess } from '../helpers/worker-process.js';
import { errorMessageOf, useWorkspace, type Workspace } from '../helpers/workspace.js';

/** Every log line of the daemon and its runners stays a few KB, whatever the rows hold. */
function assertLogLinesBounded(worker: WorkerProcess): void {
  const longest = Math.max(...worker.logs.map((line) => JSON.stringify(line).length));
  assert.ok(longest < 16_384, `a log line of ${longest} characters`);
}

async function drain(workspace: Workspace, tasks: string): Promise<WorkerProcess> {
  const worker = startWorker(workspace.dir, ['--tasks', tasks, '--drain']);
  const { code } = await worker.exited;
  assert.equal(code, 0, worker.stderr());
  return worker;
}

describe('hostile rows end in error with a precise, bounded message; nothing else is affected', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('input_files nested 50,000 deep: error at once, and the runner goes on serving jobs', async () => {
    const input = workspace.addInputFile('deep', 'a.txt', 'x');
    const deep = `${'['.repeat(50_000)}${']'.repeat(50_000)}`;
    const deepJob = workspace.addRawJob('deep', 'noop', `[{"path":"${input}","metadata":{"x":${deep}}}]`);
    const after = [await workspace.addJob('noop'), await workspace.addJob('noop')];
    const worker = await drain(workspace, 'noop');
    assert.equal(
      await errorMessageOf(workspace.store, deepJob, { retried: false }),
      'input_files is nested more than 64 levels deep; refused',
    );
    for (const jobId of after) assert.equal((await workspace.store.getJob(jobId))?.status, 'completed');
    assertLogLinesBounded(worker);
  });

  test('input_files that is not a JSON array of objects says what is wrong with the column', async () => {
    const notJson = workspace.addRawJob('not-json', 'noop', '{not json');
    const object = workspace.addRawJob('object', 'noop', '{"path": "jobs/x/input/a.jpg"}');
    const strings = workspace.addRawJob('strings', 'noop', '["jobs/x/input/a.jpg"]');
    const text = workspace.addRawJob('text', 'noop', '"jobs/x/input/a.jpg"');
    await drain(workspace, 'noop');
    assert.match(
      await errorMessageOf(workspace.store, notJson, { retried: false }),
      /^input_files is not valid JSON: /,
    );
    assert.equal(
      await errorMessageOf(workspace.store, object, { retried: false }),
      'input_files must be a JSON array of input files ([{"path": …}, …]), got an object',
    );
    assert.equal(
      await errorMessageOf(workspace.store, strings, { retried: false }),
      'input_files[0] must be an object with a "path", got a string ("jobs/x/input/a.jpg")',
    );
    assert.match(
      await errorMessageOf(workspace.store, text, { retried: false }),
      /^input_files must be a JSON array of input files .*, got a string/,
    );
  });

  test('a job_id that would build a path outside the storage root: error, and nothing written there', async () => {
    const input = workspace.addInputFile('shared', 'a.txt', 'x');
    const row = JSON.stringify([{ path: input }]);
    const escaping = workspace.addRawJob('../../escaped-x', 'noop', row);
    const dots = workspace.addRawJob('..', 'noop', row);
    const newline = workspace.addRawJob('line\nbreak', 'noop', row);
    const long = workspace.addRawJob('x'.repeat(300), 'noop', row);
    const healthy = await workspace.addJob('noop');
    await drain(workspace, 'noop');
    assert.equal(
      await errorMessageOf(workspace.store, escaping, { retried: false }),
      'job_id "../../escaped-x" cannot name a folder under the storage root: it contains a path separator',
    );
    assert.match(
      await errorMessageOf(workspace.store, dots, { retried: false }),
      /it is empty, "\." or "\.\."/,
    );
    assert.match(await errorMessageOf(workspace.store, newline, { retried: false }), /control character/);
    assert.match(await errorMessageOf(workspace.store, long, { retried: false }), /longer than 255 bytes/);
    assert.equal((await workspace.store.getJob(healthy))?.status, 'completed');
    assert.deepEqual(
      fs.readdirSync(workspace.dir).sort(),
      ['compute', 'media_store.db', 'media_store.db-shm', 'media_store.db-wal'],
      'nothing was created beside the storage root',
    );
    assert.equal(fs.existsSync(path.join(workspace.storageRoot, 'escaped-x')), false);
  });

  test('a 5 MB parameter value and a 1 MB job_id give a bounded error_message and bounded log lines', async () => {
    const huge = 'v'.repeat(5_000_000);
    const hugeTimeout = await workspace.addJob('noop', { timeout_s: huge });
    const input = workspace.addInputFile('shared', 'a.txt', 'x');
    const hugePath = workspace.addRawJob('huge-path', 'noop', JSON.stringify([{ path: `/${huge}` }]));
    const hugeId = workspace.addRawJob(
      `id-${'i'.repeat(1_000_000)}`,
      'noop',
      JSON.stringify([{ path: input }]),
    );
    const worker = await drain(workspace, 'noop');
    const timeoutMessage = await errorMessageOf(workspace.store, hugeTimeout, { retried: false });
    assert.match(timeoutMessage, /^Invalid parameters: timeout_s: expected a number of seconds > 0/);
    const pathMessage = await errorMessageOf(workspace.store, hugePath, { retried: false });
    assert.match(
      pathMessage,
      /^Input path refused \(must be relative to the storage root, without '\.\.'\): \/v+ …\[\d+ of 5000001 characters cut\]… v+$/,
    );
    const idMessage = await errorMessageOf(workspace.store, hugeId, { retried: false });
    assert.match(
      idMessage,
      /^job_id "id-i+ …\[\d+ of \d+ characters cut\]… i+" cannot name a folder .*longer than 255 bytes$/,
    );
    for (const message of [timeoutMessage, pathMessage, idMessage]) {
      assert.ok(message.length <= 4096, `error_message of ${message.length} characters`);
    }
    assertLogLinesBounded(worker);
  });

  test('timeout_s past what a timer can hold is refused; the largest one it can hold is honoured', async () => {
    const tooLong = await workspace.addJob('sleep', { seconds: 0, timeout_s: 3_000_000 });
    const longest = await workspace.addJob('sleep', { seconds: 0.3, timeout_s: 2_147_483 });
    await drain(workspace, 'sleep');
    assert.equal(
      await errorMessageOf(workspace.store, tooLong, { retried: false }),
      'Invalid parameters: timeout_s: expected a number of seconds > 0 and at most 2147483 (about 24.8 days), got 3000000',
    );
    const job = await workspace.store.getJob(longest);
    assert.equal(job?.status, 'completed', job?.error_message ?? '');
    assert.equal(job?.retry_count, 0);
  });
});
