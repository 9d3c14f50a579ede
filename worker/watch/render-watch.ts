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
