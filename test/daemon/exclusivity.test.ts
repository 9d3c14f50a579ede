import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { startWorker } from '../helpers/worker-process.js';
import { createWorkspace, type Workspace } from '../helpers/workspace.js';

const JOBS = 2000;
const DAEMONS = 4;

let workspace: Workspace;
before(async () => {
  workspace = await createWorkspace();
});
after(async () => {
  await workspace.cleanup();
});

test(
  `${DAEMONS} daemons at concurrency 2 run each of ${JOBS} jobs exactly once`,
  { timeout: 240_000 },
  async () => {
    const logFile = path.join(workspace.dir, 'executions.log');
    const db = new Database(workspace.databasePath);
    const inputPath = workspace.addInputFile('shared', 'input.txt', 'x');
    const insert = db.prepare(
      `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files, status,
       progress, created_at, retry_count, max_retries) VALUES (?, 'append', 'upload', ?, ?, '[]', 'queued', 0, ?, 0, 3)`,
    );
    const inputFiles = JSON.stringify([{ path: inputPath, metadata: { log_file: logFile } }]);
    db.transaction(() => {
      for (let i = 0; i < JOBS; i += 1) insert.run(`job-${i}`, inputPath, inputFiles, Date.now());
    })();
    db.close();

    const workers = Array.from({ length: DAEMONS }, (_, index) =>
      startWorker(workspace.dir, [
        // Every job reads the one shared input.
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
    const exits = await Promise.all(workers.map((worker) => worker.exited));
    for (const [index, exit] of exits.entries()) {
      assert.equal(
        exit.code,
        0,
        `worker ${index} exited ${exit.code}: ${workers[index]?.stderr().slice(-1000)}`,
      );
    }

    const check = new Database(workspace.databasePath, { readonly: true });
    const statuses = check.prepare('SELECT status, count(*) AS n FROM jobs GROUP BY status').all();
    check.close();
    assert.deepEqual(statuses, [{ status: 'completed', n: JOBS }]);

    const executions = fs
      .readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(' ')[0]);
    assert.equal(executions.length, JOBS, 'number of executions');
    assert.equal(new Set(executions).size, JOBS, 'distinct jobs executed');

    const allOutput = workers.map((worker) => JSON.stringify(worker.logs) + worker.stderr()).join('\n');
    assert.doesNotMatch(allOutput, /SQLITE_BUSY|database is locked/);
    const claimsPerWorker = workers.map(
      (worker) => worker.logs.filter((line) => line.msg === 'job claimed').length,
    );
    const warnings = workers.flatMap((worker) =>
      worker.logs.filter((line) => Number(line.level) >= 40 || line.msg === 'stopping the job'),
    );
    assert.equal(
      claimsPerWorker.reduce((sum, count) => sum + count, 0),
      JOBS,
      `claims; warnings: ${JSON.stringify(warnings).slice(0, 3000)}`,
    );
    assert.ok(
      claimsPerWorker.every((count) => count > 0),
      `every daemon took work: ${claimsPerWorker}`,
    );
  },
);
