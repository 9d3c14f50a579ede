import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { startWorker } from '../helpers/worker-process.js';
import { useWorkspace, type Workspace } from '../helpers/workspace.js';

const JOBS = 1500;

describe('lease renewal', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('a renewal that lands after a runner recorded its outcome, before its report, stops nothing', async () => {
    // A short lease renews every ~170 ms while two runners finish hundreds of jobs a second, so
    // renewals land in that window again and again.
    const inputPath = workspace.addInputFile('shared', 'in.txt', 'x');
    const db = new Database(workspace.databasePath);
    const insert = db.prepare(
      `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files, status,
       progress, created_at, retry_count, max_retries) VALUES (?, 'noop', 'upload', ?, ?, '[]', 'queued', 0, ?, 0, 3)`,
    );
    db.transaction(() => {
      for (let i = 0; i < JOBS; i += 1) {
        insert.run(`job-${i}`, inputPath, JSON.stringify([{ path: inputPath }]), Date.now());
      }
    })();
    db.close();
    const worker = startWorker(workspace.dir, [
      // Every job reads the one shared input.
      '--input-scope',
      'root',
      '--tasks',
      'noop',
      '--concurrency',
      '2',
      '--runner-reuse',
      '0',
      '--lease-ttl',
      '0.5',
      '--drain',
    ]);
    const exit = await worker.exited;
    assert.equal(exit.code, 0, worker.stderr().slice(-1000));
    const stops = worker.logs.filter((line) => line.msg === 'stopping the job');
    assert.deepEqual(stops, [], 'a runner was stopped');
    const completed = worker.logs.filter((line) => line.msg === 'job completed').length;
    assert.equal(completed, JOBS, 'every job is reported completed by the daemon');
  });
});
