/**
 * How soon an idle daemon starts a new job, and what being idle costs. An API stand-in in its own
 * process inserts one no-op job at a time (row, then queue entry) into an empty queue, waits for it
 * to complete, pauses 20-100 ms, and so on; enqueue→start is jobs.started_at - jobs.created_at (both
 * Date.now() ms). The daemon keeps the default 5 s poll interval, so what it gains over polling
 * alone is the change watch. Then, nothing queued, the CPU time of the daemon and its runner over
 * an idle window (/proc/<pid>/stat utime+stime).
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import {
  createBenchDir,
  ms,
  percentile,
  startApiInserter,
  startDaemon,
  within,
} from './helpers/daemon-bench.js';
import { clockTicksPerSecond, cpuTicks } from './helpers/process-cpu.js';

const POLL_INTERVAL_S = 5;
const GOAL_MEDIAN_MS = 50;
const GOAL_IDLE_CPU_PERCENT = 1;
/**
 * Idle means after the work's aftermath (the last job's runner replaced by a warm one, its writes
 * checkpointed): the same daemon measured 1.5 % over the 10 s from 1 s after the last job, 0.6 %
 * over 30 s from 5 s after.
 */
export const IDLE_SETTLE_MS = 5000;

/** The daemon's child processes (its runners), from the ppid of every process in /proc. */
function childrenOf(pid: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((candidate) => cpuTicks(candidate)?.ppid === pid);
}

async function enqueueToStart(databasePath: string, jobs: number): Promise<number[]> {
  const inserter = startApiInserter(databasePath);
  const reader = new Database(databasePath, { readonly: true, timeout: 15_000 });
  const rowOf = reader.prepare(
    'SELECT status, created_at, started_at, error_message FROM jobs WHERE job_id = ?',
  );
  const delays: number[] = [];
  try {
    for (let i = 0; i < jobs; i += 1) {
      const jobId = `wake-${i}`;
      await inserter.insert(jobId, 5);
      const deadline = Date.now() + 30_000;
      for (;;) {
        const row = rowOf.get(jobId) as {
          status: string;
          created_at: number;
          started_at: number | null;
          error_message: string | null;
        };
        if (row.status === 'completed' && row.started_at !== null) {
          delays.push(row.started_at - row.created_at);
          break;
        }
        if (row.status === 'error') throw new Error(`bench job ${jobId} failed: ${row.error_message}`);
        if (Date.now() > deadline)
          throw new Error(`bench job ${jobId} not completed after 30 s (${row.status})`);
        await sleep(2);
      }
      await sleep(20 + Math.random() * 80);
    }
  } finally {
    reader.close();
    await inserter.close();
  }
  return delays;
}

/** CPU time of the daemon and of its runners over `seconds`, each in % of one core. */
export async function idleCpu(
  daemonPid: number,
  seconds: number,
): Promise<{ daemon: number; runners: number }> {
  const clockTicks = clockTicksPerSecond();
  const runners = childrenOf(daemonPid);
  const sample = (pid: number) => cpuTicks(pid)?.ticks ?? Number.NaN;
  const before = { daemon: sample(daemonPid), runners: runners.map(sample) };
  const began = performance.now();
  await sleep(seconds * 1000);
  const elapsed = (performance.now() - began) / 1000;
  const after = { daemon: sample(daemonPid), runners: runners.map(sample) };
  const percent = (ticks: number) => (ticks / clockTicks / elapsed) * 100;
  const runnerTicks = runners.reduce(
    (sum, _, i) => sum + ((after.runners[i] ?? 0) - (before.runners[i] ?? 0)),
    0,
  );
  if (runners.length === 0 || Number.isNaN(runnerTicks) || Number.isNaN(after.daemon)) {
    throw new Error(
      `the daemon or its runner went away during the idle window (runners: ${runners.join(',')})`,
    );
  }
  return { daemon: percent(after.daemon - before.daemon), runners: percent(runnerTicks) };
}

export async function benchWakeUp(): Promise<void> {
  const jobs = Number(process.env.BENCH_WAKE_JOBS ?? 50);
  const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 30);
  const workspace = createBenchDir();
  let noticed = '?';
  const daemon = startDaemon(workspace.dir, ['--concurrency', '1', '--runner-reuse', '0'], (line) => {
    if (line.msg === 'worker started')
      noticed = String((line as { new_jobs_noticed?: unknown }).new_jobs_noticed);
  });
  try {
    await within(daemon.started, 60_000, '"worker started"');
    const delays = await enqueueToStart(workspace.databasePath, jobs);
    await sleep(IDLE_SETTLE_MS);
    const cpu = await idleCpu(daemon.pid, idleSeconds);

    const median = percentile(delays, 50);
    const pollOnlyMs = (POLL_INTERVAL_S * 1000) / 2;
    console.log(
      `wake-up: ${jobs} no-op jobs inserted one at a time into an idle daemon (--concurrency 1, poll interval ` +
        `${POLL_INTERVAL_S} s, new jobs noticed: ${noticed}; one run)`,
    );
    console.log(
      `  enqueue→start median ${ms(median)}   goal < ${GOAL_MEDIAN_MS} ms: ${median < GOAL_MEDIAN_MS ? 'met' : 'NOT met'}`,
    );
    console.log(
      `  enqueue→start p90    ${ms(percentile(delays, 90))}   (min ${Math.min(...delays)} ms, max ${Math.max(...delays)} ms)`,
    );
    console.log(
      `  polling alone        ${ms(pollOnlyMs)}   expected median (half the ${POLL_INTERVAL_S} s interval), ` +
        `p90 ~${POLL_INTERVAL_S * 900} ms; the daemon's median is ${(pollOnlyMs / Math.max(median, 1)).toFixed(0)}x shorter`,
    );
    const total = cpu.daemon + cpu.runners;
    console.log(
      `  idle CPU over ${idleSeconds} s: ${total.toFixed(2)} % of one core (daemon ${cpu.daemon.toFixed(2)} %, ` +
        `runner ${cpu.runners.toFixed(2)} %)   goal < ${GOAL_IDLE_CPU_PERCENT} %: ${total < GOAL_IDLE_CPU_PERCENT ? 'met' : 'NOT met'}`,
    );
    const exitCode = await daemon.stop();
    if (exitCode !== 0) throw new Error(`the daemon exited ${exitCode} on SIGTERM, expected 0`);
  } finally {
    await daemon.stop();
    workspace.remove();
  }
}
