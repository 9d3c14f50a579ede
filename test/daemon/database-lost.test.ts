/**
 * The database file deleted or replaced under a running daemon: it must not go on with the file it
 * still holds open (jobs in the new file would wait forever), but exit non-zero, saying why, so that
 * a supervisor restarts it on the new file.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { SqliteJobStore } from '../../worker/store/sqlite/sqlite-job-store.js';
import { startWorker } from '../helpers/worker-process.js';
import { useWorkspace, type Workspace } from '../helpers/workspace.js';

const DATABASE_FILES = ['media_store.db', 'media_store.db-wal', 'media_store.db-shm'];

describe('a database file deleted or replaced under the daemon', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('deleted: the daemon exits non-zero saying so, and creates no empty database', async () => {
    const worker = startWorker(workspace.dir, ['--tasks', 'noop']);
    await worker.waitForLog((line) => line.msg === 'worker started');
    for (const file of DATABASE_FILES) fs.rmSync(path.join(workspace.dir, file), { force: true });
    const { code } = await worker.exited;
    assert.equal(code, 1);
    assert.match(worker.stderr(), /the database file .*media_store\.db was deleted under the running worker/);
    assert.equal(fs.existsSync(workspace.databasePath), false, 'no empty database was created in its place');
  });

  test('replaced: the daemon exits non-zero; the new file is left for the next daemon', async () => {
    const worker = startWorker(workspace.dir, ['--tasks', 'noop', '--runner-reuse', '1']);
    await worker.waitForLog((line) => line.msg === 'worker started');
    const replacement = path.join(workspace.dir, 'restored.db');
    const restored = SqliteJobStore.open(replacement, { ensureSchema: true });
    const input = workspace.addInputFile('restored-job', 'a.txt', 'x');
    await restored.insertJob({
      jobId: 'restored-job',
      taskType: 'noop',
      inputFileSource: 'upload',
      inputFiles: [{ path: input }],
      priority: 5,
      maxRetries: 3,
      createdBy: null,
    });
    await restored.close();
    // A restore replaces the whole database: the old write-ahead log must not be replayed onto it.
    for (const file of DATABASE_FILES.slice(1)) fs.rmSync(path.join(workspace.dir, file), { force: true });
    fs.renameSync(replacement, workspace.databasePath);
    const { code } = await worker.exited;
    assert.equal(code, 1);
    assert.match(worker.stderr(), /media_store\.db was replaced by another file under the running worker/);

    await workspace.store.close();
    workspace.store = SqliteJobStore.open(workspace.databasePath, { ensureSchema: false });
    assert.equal(
      (await workspace.store.getJob('restored-job'))?.status,
      'queued',
      'the old daemon left it alone',
    );
    const next = startWorker(workspace.dir, ['--tasks', 'noop', '--drain']);
    assert.equal((await next.exited).code, 0, next.stderr());
    assert.equal((await workspace.store.getJob('restored-job'))?.status, 'completed');
  });
});
