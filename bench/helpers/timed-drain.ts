/**
 * Runs the real daemon with `--drain` over jobs inserted the way the API inserts them, and times it
 * from the first claim to the last completion (as logged by the daemon), so process start-up before
 * the first claim is not counted but runner start-up after it is.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteJobStore } from '../../worker/store/sqlite/sqlite-job-store.js';

export const CLI = fileURLToPath(new URL('../../worker/cli/main.js', import.meta.url));
export const BUILT_IN_MODULES = fileURLToPath(new URL('../../compute_modules', import.meta.url));
export const TEST_MODULES = fileURLToPath(new URL('../../test/fixtures/modules', import.meta.url));

export interface BenchJob {
  /** Relative to the storage root. */
  inputPath: string;
  params: Record<string, unknown>;
}

export interface DrainRun {
  taskType: string;
  modulesDir: string;
  /** Creates the job inputs under `storageRoot` and returns the jobs to queue. */
  prepare(storageRoot: string): BenchJob[] | Promise<BenchJob[]>;
  args: readonly string[];
  /** Called with the storage root after the drain, before the workspace is removed. */
  inspect?(storageRoot: string): void;
}

export async function timedDrain(
  run: DrainRun,
): Promise<{ jobs: number; seconds: number; jobsPerSecond: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-bench-'));
  try {
    const databasePath = path.join(dir, 'media_store.db');
    const storageRoot = path.join(dir, 'compute');
    fs.mkdirSync(storageRoot);
    SqliteJobStore.open(databasePath, { ensureSchema: true }).close();
    const jobs = await run.prepare(storageRoot);
    const db = new Database(databasePath);
    const insert = db.prepare(
      `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files, status,
         progress, created_at, retry_count, max_retries) VALUES (?, ?, 'upload', ?, ?, '[]', 'queued', 0, ?, 0, 3)`,
    );
    db.transaction(() => {
      jobs.forEach((job, index) => {
        const inputFiles = JSON.stringify([{ path: job.inputPath, metadata: job.params }]);
        insert.run(`job-${index}`, run.taskType, job.inputPath, inputFiles, index);
      });
    })();
    db.close();

    const times: number[] = [];
    let failures = 0;
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        // Jobs may share one input file (--input-scope root), as a deployment with shared inputs does.
        [
          CLI,
          'run',
          '--modules-dir',
          run.modulesDir,
          '--tasks',
          run.taskType,
          '--drain',
          '--input-scope',
          'root',
          ...run.args,
        ],
        {
          env: { ...process.env, CL_SERVER_DIR: dir, BROADCAST_TYPE: 'noop', LOG_LEVEL: 'info' },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let partial = '';
      child.stdout.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (line.includes('"job claimed"') || line.includes('"job completed"'))
            times.push(JSON.parse(line).time);
          if (line.includes('"job failed')) failures += 1;
        }
      });
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`daemon exited ${code}`))));
    });
    if (failures > 0) throw new Error(`${failures} bench jobs failed; the figure would be meaningless`);
    run.inspect?.(storageRoot);
    const seconds = ((times.at(-1) ?? 0) - (times[0] ?? 0)) / 1000;
    return { jobs: jobs.length, seconds, jobsPerSecond: jobs.length / seconds };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
