/**
 * `media-worker jobs list | stats | retry | cancel`: the operator's view of the queue, on whatever
 * store DATABASE_URL names, through the same store operations the daemon's host would use.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobListQuery, JobStore, JobSummary, OperatorOutcome } from '../store/job-store.js';
import type { LiveTaskTypes } from './live-workers.js';

/** How long `jobs cancel` waits for a running job's daemon to stop it before it says so. */
const CANCEL_WAIT_MS = 10_000;

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export async function listJobs(store: JobStore, query: JobListQuery, json: boolean): Promise<string> {
  const jobs = await store.listJobs(query);
  if (json) return JSON.stringify(jobs, null, 2);
  if (jobs.length === 0) return 'no jobs';
  const oneLine = (text: string | null) => (text ?? '').replace(/\s+/g, ' ').slice(0, 80);
  return table([
    ['JOB_ID', 'TASK', 'STATUS', 'PRIORITY', 'PROGRESS', 'RETRIES', 'CREATED', 'ERROR'],
    ...jobs.map((job: JobSummary) => [
      job.job_id,
      job.task_type,
      job.status,
      String(job.priority ?? '5'),
      `${job.progress}%`,
      `${job.retry_count}/${job.max_retries}`,
      iso(job.created_at),
      oneLine(job.error_message),
    ]),
  ]);
}

export interface QueueStats {
  counts: { task_type: string; status: string; jobs: number }[];
  oldest_queued: { task_type: string; created_at: number; age_s: number }[];
  /** Task types with queued jobs that no live worker announces; null when that is unknown. */
  unserved: string[] | null;
  /** Why `unserved` is unknown (no broker configured, or it could not be reached). */
  unserved_unknown_because?: string;
}

export async function jobStats(store: JobStore, live: LiveTaskTypes, json: boolean): Promise<string> {
  const { counts, oldestQueued } = await store.jobStats();
  const now = Date.now();
  const stats: QueueStats = {
    counts,
    oldest_queued: oldestQueued.map((row) => ({
      ...row,
      age_s: Math.max(0, Math.round((now - row.created_at) / 1000)),
    })),
    unserved: live.known
      ? oldestQueued.map((row) => row.task_type).filter((type) => !live.types.has(type))
      : null,
    ...(live.known ? {} : { unserved_unknown_because: live.reason }),
  };
  if (json) return JSON.stringify(stats, null, 2);
  const statuses = ['queued', 'claimed', 'processing', 'completed', 'error'];
  const types = [...new Set(counts.map((row) => row.task_type))];
  const count = (type: string, status: string) =>
    String(counts.find((row) => row.task_type === type && row.status === status)?.jobs ?? 0);
  const age = (type: string) => {
    const oldest = stats.oldest_queued.find((row) => row.task_type === type);
    return oldest ? `${oldest.age_s} s` : '-';
  };
  const lines = [
    types.length === 0
      ? 'no jobs'
      : table([
          ['TASK', ...statuses.map((status) => status.toUpperCase()), 'OLDEST QUEUED'],
          ...types.map((type) => [type, ...statuses.map((status) => count(type, status)), age(type)]),
        ]),
  ];
  if (stats.unserved === null)
    lines.push(`which workers are live is unknown: ${stats.unserved_unknown_because}`);
  else if (stats.unserved.length > 0)
    lines.push(`queued but served by no live worker: ${stats.unserved.join(', ')}`);
  return lines.join('\n');
}

interface RequestResult {
  job_id: string;
  outcome: OperatorOutcome['kind'] | 'stopped' | 'still-running';
  reason?: string;
  worker_id?: string | null;
}

function describe(result: RequestResult): string {
  switch (result.outcome) {
    case 'refused':
      return `${result.job_id}: refused: ${result.reason}`;
    case 'cancel-requested':
    case 'still-running':
      return `${result.job_id}: cancel requested; worker ${result.worker_id ?? '?'} has not stopped it yet`;
    case 'stopped':
      return `${result.job_id}: cancelled (worker ${result.worker_id ?? '?'} stopped it)`;
    default:
      return `${result.job_id}: ${result.outcome}`;
  }
}

/**
 * Runs `request` on each job; the text (or JSON) to print, and whether any was refused or (a
 * running job) not stopped yet: its daemon may be gone, and the request then ends the job when
 * the job is released or taken back.
 */
export async function requestEach(
  store: JobStore,
  jobIds: readonly string[],
  request: 'retry' | 'cancel',
  json: boolean,
): Promise<{ output: string; refused: boolean }> {
  const results: RequestResult[] = [];
  for (const jobId of jobIds) {
    const outcome = request === 'retry' ? await store.retryJob(jobId) : await store.cancelJob(jobId);
    if (outcome.kind === 'refused')
      results.push({ job_id: jobId, outcome: 'refused', reason: outcome.reason });
    else if (outcome.kind === 'cancel-requested')
      results.push(await waitForStop(store, jobId, outcome.workerId));
    else results.push({ job_id: jobId, outcome: outcome.kind });
  }
  return {
    output: json ? JSON.stringify(results, null, 2) : results.map(describe).join('\n'),
    refused: results.some((result) => result.outcome === 'refused' || result.outcome === 'still-running'),
  };
}

/** A running job: its daemon stops it at its next check (every second); wait a while to say so. */
async function waitForStop(store: JobStore, jobId: string, workerId: string | null): Promise<RequestResult> {
  for (const deadline = Date.now() + CANCEL_WAIT_MS; Date.now() < deadline; ) {
    const job = await store.getJob(jobId);
    if (job?.status === 'error' && job.error_message === 'cancelled') {
      return { job_id: jobId, outcome: 'stopped', worker_id: workerId };
    }
    if (job?.status === 'error' || job?.status === 'completed') {
      const ending = job.status === 'error' ? `failed (${job.error_message ?? ''})` : 'completed';
      return {
        job_id: jobId,
        outcome: 'refused',
        reason: `job ${jobId} ${ending} before it could be stopped`,
      };
    }
    await sleep(100);
  }
  return { job_id: jobId, outcome: 'still-running', worker_id: workerId };
}
