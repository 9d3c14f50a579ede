/** The terminal view of `media-worker watch`: workers with their slots, jobs with a progress bar. */
import { isStale, type WatchState } from './watch-state.js';

const BAR_WIDTH = 24;

function ago(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  return seconds < 120 ? `${seconds}s ago` : `${Math.round(seconds / 60)}m ago`;
}

export function progressBar(percent: number, width = BAR_WIDTH): string {
  const clamped = Math.max(0, Math.min(100, percent));
  const filled = Math.round((clamped / 100) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(clamped)).padStart(3)}%`;
}

export function renderWatch(state: WatchState, now: number, broker: string): string {
  const lines = [`media-worker watch — ${broker} — ${new Date(now).toISOString()}`, ''];
  const workers = [...state.workers.values()].sort((a, b) => a.id.localeCompare(b.id));
  lines.push(`WORKERS (${workers.length})`);
  if (workers.length === 0) lines.push('  (none announced)');
  for (const worker of workers) {
    const slots =
      worker.concurrency === undefined
        ? `${worker.idleCount} idle`
        : `${worker.idleCount}/${worker.concurrency} idle`;
    const flags = [
      worker.state !== 'ready' ? worker.state.toUpperCase() : '',
      isStale(worker, now) ? 'STALE' : '',
    ]
      .filter(Boolean)
      .join(' ');
    lines.push(
      `  ${worker.id.padEnd(20)} ${slots.padEnd(10)} ${ago(now - worker.lastSeen).padEnd(9)} ${worker.capabilities.join(',')}${flags ? `  ${flags}` : ''}`,
    );
  }
  const jobs = [...state.jobs.values()].sort((a, b) => a.updatedAt - b.updatedAt);
  if (state.queue) {
    lines.push('', 'QUEUED');
    if ('error' in state.queue) lines.push(`  (database: ${state.queue.error})`);
    else {
      const queued = Object.entries(state.queue.counts);
      if (queued.length === 0) lines.push('  (nothing)');
      for (const [taskType, count] of queued) lines.push(`  ${taskType.padEnd(20)} ${count}`);
    }
  }
  lines.push('', `JOBS (${jobs.filter((job) => job.status === 'processing').length} running)`);
  if (jobs.length === 0) lines.push('  (none)');
  for (const job of jobs) {
    const status = job.status === 'processing' ? '' : ` ${job.status.toUpperCase()}`;
    const detail = job.detail ? ` ${job.detail.slice(0, 60)}` : '';
    lines.push(
      `  ${job.jobId.slice(0, 8)} ${job.taskType.padEnd(16)} ${job.workerId.padEnd(14)} #${job.attempt} ${progressBar(job.progress)}${status}${detail}`,
    );
  }
  return lines.join('\n');
}

/**
 * The view in one line, for a pipe or a log file: printed again only when it changes (it carries
 * no clock, so an unchanged state prints nothing).
 */
export function summaryLine(state: WatchState, now: number, broker: string): string {
  const workers = [...state.workers.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((worker) => {
      const slots =
        worker.concurrency === undefined
          ? `${worker.idleCount} idle`
          : `${worker.idleCount}/${worker.concurrency} idle`;
      const flags = [
        worker.state !== 'ready' ? worker.state : '',
        isStale(worker, now) ? 'stale' : '',
      ].filter(Boolean);
      return `${worker.id} ${slots}${flags.length > 0 ? ` ${flags.join(' ')}` : ''}`;
    });
  const jobs = [...state.jobs.values()]
    .sort((a, b) => a.updatedAt - b.updatedAt)
    .map(
      (job) =>
        `${job.jobId.slice(0, 8)} ${job.taskType} ${job.status === 'processing' ? `${Math.round(job.progress)}%` : job.status}`,
    );
  const parts = [
    `broker ${broker}`,
    `workers: ${workers.join(', ') || 'none'}`,
    `jobs: ${jobs.join(', ') || 'none'}`,
  ];
  if (state.queue) {
    parts.push(
      'error' in state.queue
        ? `queued: unknown (${state.queue.error})`
        : `queued: ${
            Object.entries(state.queue.counts)
              .map(([type, count]) => `${type}=${count}`)
              .join(', ') || 'none'
          }`,
    );
  }
  return parts.join(' | ');
}
