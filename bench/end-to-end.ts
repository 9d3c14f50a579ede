/**
 * No-op jobs per second through the whole daemon (claim, runner IPC, processing write, completion),
 * with a fresh runner process per job (--runner-reuse 1) and with warm runners reused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TEST_MODULES, timedDrain } from './helpers/timed-drain.js';

async function noopJobsPerSecond(jobs: number, args: string[]): Promise<number> {
  const result = await timedDrain({
    taskType: 'noop',
    modulesDir: TEST_MODULES,
    prepare(storageRoot) {
      fs.mkdirSync(path.join(storageRoot, 'jobs', 'x', 'input'), { recursive: true });
      fs.writeFileSync(path.join(storageRoot, 'jobs', 'x', 'input', 'in.txt'), 'x');
      return Array.from({ length: jobs }, () => ({ inputPath: 'jobs/x/input/in.txt', params: {} }));
    },
    args: ['--poll-interval', '0.05', ...args],
  });
  return result.jobsPerSecond;
}

export async function benchEndToEnd(): Promise<void> {
  const jobs = Number(process.env.BENCH_E2E_JOBS ?? 1000);
  const fresh = await noopJobsPerSecond(Math.min(jobs, 200), ['--runner-reuse', '1']);
  const reused = await noopJobsPerSecond(jobs, ['--runner-reuse', '0']);
  const reused2 = await noopJobsPerSecond(jobs, ['--runner-reuse', '0', '--concurrency', '2']);
  console.log('no-op jobs end to end through the daemon (first claim to last completion, one run)');
  console.log(`  fresh runner per job (--runner-reuse 1)       ${fresh.toFixed(1).padStart(8)} jobs/s`);
  console.log(
    `  warm runner reused (--runner-reuse 0)         ${reused.toFixed(1).padStart(8)} jobs/s   ${(reused / fresh).toFixed(1)}x fresh`,
  );
  console.log(`  warm runners, --concurrency 2                 ${reused2.toFixed(1).padStart(8)} jobs/s`);
}
