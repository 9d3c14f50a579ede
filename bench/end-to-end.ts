/**
 * No-op jobs per second through the whole daemon (claim, runner IPC, processing write, completion),
 * with a fresh runner process per job (--runner-reuse 1) and with warm runners reused.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteJobStore } from '../worker/store/sqlite-job-store.js';

const CLI = fileURLToPath(new URL('../worker/cli/main.js', import.meta.url));
const MODULES = fileURLToPath(new URL('../test/fixtures/modules', import.meta.url));

async function runDaemon(jobs: number, extraArgs: string[]): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-bench-'));
  try {
    const databasePath = path.join(dir, 'media_store.db');
    SqliteJobStore.open(databasePath, { ensureSchema: true }).close();
    fs.mkdirSync(path.join(dir, 'compute', 'jobs', 'x', 'input'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'compute', 'jobs', 'x', 'input', 'in.txt'), 'x');
    const db = new Database(databasePath);
    const insert = db.prepare(
      `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files, status,
         progress, created_at, retry_count, max_retries) VALUES (?, 'noop', 'upload', ?, ?, '[]', 'queued', 0, ?, 0, 3)`,
    );
    db.transaction(() => {
      for (let i = 0; i < jobs; i += 1)
        insert.run(`job-${i}`, 'jobs/x/input/in.txt', '[{"path":"jobs/x/input/in.txt"}]', i);
    })();
    db.close();
    const times: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          CLI,
          'run',
          '--modules-dir',
          MODULES,
          '--tasks',
          'noop',
          '--drain',
          '--poll-interval',
          '0.05',
          ...extraArgs,
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
        }
      });
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`daemon exited ${code}`))));
    });
    const seconds = ((times.at(-1) ?? 0) - (times[0] ?? 0)) / 1000;
    return jobs / seconds;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchEndToEnd(): Promise<void> {
  const jobs = Number(process.env.BENCH_E2E_JOBS ?? 1000);
  const fresh = await runDaemon(Math.min(jobs, 200), ['--runner-reuse', '1']);
  const reused = await runDaemon(jobs, ['--runner-reuse', '0']);
  const reused2 = await runDaemon(jobs, ['--runner-reuse', '0', '--concurrency', '2']);
  console.log('no-op jobs end to end through the daemon (first claim to last completion, one run)');
  console.log(`  fresh runner per job (--runner-reuse 1)       ${fresh.toFixed(1).padStart(8)} jobs/s`);
  console.log(
    `  warm runner reused (--runner-reuse 0)         ${reused.toFixed(1).padStart(8)} jobs/s   ${(reused / fresh).toFixed(1)}x fresh`,
  );
  console.log(`  warm runners, --concurrency 2                 ${reused2.toFixed(1).padStart(8)} jobs/s`);
}
