/**
 * Several daemons on one database: no-op jobs per second from the first "job claimed" to the last
 * "job completed" logged by any of 4 daemons (--concurrency 2 each, warm runners, --drain) started at
 * once, beside 1 daemon with 2 slots on an identical database. Afterwards it checks, failing loudly,
 * that every job completed exactly once and that no job was claimed by two daemons.
 */
import os from 'node:os';
import { openJobStore } from '../worker/store/open-job-store.js';
import { createBenchDir, seedNoopJobs, startDaemon } from './helpers/daemon-bench.js';

export interface DrainResult {
  jobsPerSecond: number;
  seconds: number;
  /** Jobs claimed by each worker id. */
  claimsBy: Map<string, number>;
}

/**
 * Starts `daemons` draining daemons (2 slots each) on `dir` with `jobs` no-op jobs already queued in
 * `databaseUrl`, and times them; throws, naming what went wrong, unless every job completed
 * exactly once. The SQLite and PostgreSQL benches both measure through it.
 */
export async function drainWith(
  daemons: number,
  jobs: number,
  { dir, databaseUrl }: { dir: string; databaseUrl: string },
): Promise<DrainResult> {
  const claims: { jobId: string; workerId: string }[] = [];
  const times: number[] = [];
  const failures: string[] = [];
  const started = Array.from({ length: daemons }, (_, i) =>
    startDaemon(
      dir,
      ['--concurrency', '2', '--runner-reuse', '0', '--drain', '--worker-id', `d${i + 1}`],
      (line) => {
        if (line.msg === 'job claimed') {
          claims.push({ jobId: line.job_id ?? '?', workerId: line.worker_id ?? '?' });
          times.push(line.time);
        } else if (line.msg === 'job completed') times.push(line.time);
        else if (line.msg.startsWith('job failed')) failures.push(`${line.job_id}: ${line.msg}`);
      },
      { DATABASE_URL: databaseUrl },
    ),
  );
  const codes = await Promise.all(started.map((daemon) => daemon.waitForExit(600_000)));

  const problems: string[] = [];
  if (codes.some((code) => code !== 0)) problems.push(`daemon exit codes ${codes.join(', ')}`);
  if (failures.length > 0) problems.push(`${failures.length} jobs failed, first: ${failures[0]}`);
  const store = await openJobStore(databaseUrl, { ensureSchema: false });
  const { counts } = await store.jobStats().finally(() => store.close());
  const completed = counts.find((row) => row.status === 'completed')?.jobs ?? 0;
  if (completed !== jobs || counts.length !== 1) {
    problems.push(
      `job statuses ${counts.map((row) => `${row.status}=${row.jobs}`).join(', ')}, expected completed=${jobs}`,
    );
  }
  const seen = new Set<string>();
  const twice = claims.filter(({ jobId }) => seen.has(jobId) || !seen.add(jobId));
  if (twice.length > 0) {
    problems.push(
      `${twice.length} jobs claimed twice, e.g. ${twice[0]?.jobId} (again by ${twice[0]?.workerId})`,
    );
  }
  if (seen.size !== jobs) problems.push(`${seen.size} distinct jobs claimed in the logs, expected ${jobs}`);
  if (problems.length > 0) {
    throw new Error(`${daemons} daemon(s) over ${jobs} jobs went wrong:\n  ${problems.join('\n  ')}`);
  }

  const seconds = (Math.max(...times) - Math.min(...times)) / 1000;
  const claimsBy = new Map<string, number>();
  for (const { workerId } of claims) claimsBy.set(workerId, (claimsBy.get(workerId) ?? 0) + 1);
  return { jobsPerSecond: jobs / seconds, seconds, claimsBy };
}

async function drainSqlite(daemons: number, jobs: number): Promise<DrainResult> {
  const workspace = createBenchDir();
  try {
    seedNoopJobs(workspace.databasePath, jobs);
    return await drainWith(daemons, jobs, { dir: workspace.dir, databaseUrl: workspace.databasePath });
  } finally {
    workspace.remove();
  }
}

export async function benchManyDaemons(): Promise<void> {
  const jobs = Number(process.env.BENCH_DAEMON_JOBS ?? 4000);
  const one = await drainSqlite(1, jobs);
  const four = await drainSqlite(4, jobs);
  const split = [...four.claimsBy].map(([id, n]) => `${id} ${n}`).join(', ');
  console.log(`${jobs} no-op jobs, first claim to last completion across all daemons (one run)`);
  console.log(
    `  1 daemon  x 2 slots   ${one.jobsPerSecond.toFixed(1).padStart(8)} jobs/s   (${one.seconds.toFixed(2)} s)`,
  );
  console.log(
    `  4 daemons x 2 slots   ${four.jobsPerSecond.toFixed(1).padStart(8)} jobs/s   (${four.seconds.toFixed(2)} s)   ` +
      `ratio ${(four.jobsPerSecond / one.jobsPerSecond).toFixed(2)} to 1 daemon, on ${os.availableParallelism()} cores`,
  );
  console.log(`  claims per daemon: ${split}; every job completed exactly once, none claimed twice`);
}
