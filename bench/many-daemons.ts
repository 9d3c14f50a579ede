/**
 * Several daemons on one database: no-op jobs per second from the first "job claimed" to the last
 * "job completed" logged by any of 4 daemons (--concurrency 2 each, warm runners, --drain) started at
 * once, beside 1 daemon with 2 slots on an identical database. Afterwards it checks, failing loudly,
 * that every job completed exactly once and that no job was claimed by two daemons.
 */
import os from 'node:os';
import Database from 'better-sqlite3';
import { createBenchDir, seedNoopJobs, startDaemon } from './helpers/daemon-bench.js';

interface DrainResult {
  jobsPerSecond: number;
  seconds: number;
  /** Jobs claimed by each worker id. */
  claimsBy: Map<string, number>;
}

async function drainWith(daemons: number, jobs: number): Promise<DrainResult> {
  const workspace = createBenchDir();
  try {
    seedNoopJobs(workspace.databasePath, jobs);
    const claims: { jobId: string; workerId: string }[] = [];
    const times: number[] = [];
    const failures: string[] = [];
    const started = Array.from({ length: daemons }, (_, i) =>
      startDaemon(
        workspace.dir,
        ['--concurrency', '2', '--runner-reuse', '0', '--drain', '--worker-id', `d${i + 1}`],
        (line) => {
          if (line.msg === 'job claimed') {
            claims.push({ jobId: line.job_id ?? '?', workerId: line.worker_id ?? '?' });
            times.push(line.time);
          } else if (line.msg === 'job completed') times.push(line.time);
          else if (line.msg.startsWith('job failed')) failures.push(`${line.job_id}: ${line.msg}`);
        },
      ),
    );
    const codes = await Promise.all(started.map((daemon) => daemon.waitForExit(300_000)));

    const problems: string[] = [];
    if (codes.some((code) => code !== 0)) problems.push(`daemon exit codes ${codes.join(', ')}`);
    if (failures.length > 0) problems.push(`${failures.length} jobs failed, first: ${failures[0]}`);
    const db = new Database(workspace.databasePath, { readonly: true });
    const statuses = db.prepare('SELECT status, count(*) AS n FROM jobs GROUP BY status').all() as {
      status: string;
      n: number;
    }[];
    db.close();
    const completed = statuses.find((row) => row.status === 'completed')?.n ?? 0;
    if (completed !== jobs || statuses.length !== 1) {
      problems.push(
        `job statuses ${statuses.map((row) => `${row.status}=${row.n}`).join(', ')}, expected completed=${jobs}`,
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
  } finally {
    workspace.remove();
  }
}

export async function benchManyDaemons(): Promise<void> {
  const jobs = Number(process.env.BENCH_DAEMON_JOBS ?? 4000);
  const one = await drainWith(1, jobs);
  const four = await drainWith(4, jobs);
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
