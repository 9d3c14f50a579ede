/**
 * What `media-worker watch` knows: the workers seen on the capability topics and the jobs seen on
 * the event topic, updated message by message. Pure: the command feeds it and renders it.
 */

export interface WatchedWorker {
  id: string;
  capabilities: string[];
  idleCount: number;
  concurrency: number | undefined;
  state: string;
  heartbeatS: number;
  /** From the payload's timestamp (ms). */
  lastSeen: number;
  hostname: string;
  version: string;
  /** What each module runs on (ffmpeg_render: {ffmpeg: '5.1.6'}). */
  moduleVersions: Record<string, Record<string, string>>;
}

export interface WatchedJob {
  jobId: string;
  taskType: string;
  workerId: string;
  attempt: number;
  progress: number;
  status: 'processing' | 'completed' | 'error' | 'retrying';
  detail: string;
  updatedAt: number;
}

/** Queued jobs per task type, read from the database when watch is given one. */
export type QueueView = { counts: Record<string, number> } | { error: string };

export interface WatchState {
  workers: Map<string, WatchedWorker>;
  jobs: Map<string, WatchedJob>;
  /** Undefined when watch has no database to read. */
  queue?: QueueView;
}

export const emptyWatchState = (): WatchState => ({ workers: new Map(), jobs: new Map() });

const DEFAULT_HEARTBEAT_S = 30;
/** Finished jobs stay on screen this long. */
export const FINISHED_JOB_LINGER_MS = 5_000;

type Json = Record<string, unknown>;

const asNumber = (value: unknown, fallback: number) =>
  typeof value === 'number' && Number.isFinite(value) ? value : fallback;
const asString = (value: unknown, fallback = '') => (typeof value === 'string' ? value : fallback);

export function applyCapabilityMessage(
  state: WatchState,
  workerId: string,
  payload: string,
  now: number,
): void {
  if (payload === '') {
    state.workers.delete(workerId);
    return;
  }
  const data = parseObject(payload);
  if (!data) return;
  state.workers.set(workerId, {
    id: asString(data.worker_id, asString(data.id, workerId)),
    capabilities: Array.isArray(data.capabilities) ? data.capabilities.map(String) : [],
    idleCount: asNumber(data.idle_count, 0),
    concurrency: typeof data.concurrency === 'number' ? data.concurrency : undefined,
    state: asString(data.state, 'ready'),
    heartbeatS: asNumber(data.heartbeat_interval_s, DEFAULT_HEARTBEAT_S),
    lastSeen: asNumber(data.timestamp, now),
    hostname: asString(data.hostname),
    version: asString(data.version),
    moduleVersions: moduleVersionsOf(data.module_versions),
  });
}

function moduleVersionsOf(value: unknown): Record<string, Record<string, string>> {
  const versions: Record<string, Record<string, string>> = {};
  if (typeof value !== 'object' || value === null) return versions;
  for (const [module, tools] of Object.entries(value)) {
    if (typeof tools !== 'object' || tools === null) continue;
    versions[module] = Object.fromEntries(
      Object.entries(tools).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
    );
  }
  return versions;
}

export function applyJobEvent(state: WatchState, payload: string, now: number): void {
  const data = parseObject(payload);
  if (!data) return;
  const jobId = asString(data.job_id);
  if (!jobId) return;
  const previous = state.jobs.get(jobId);
  const eventType = asString(data.event_type);
  const status = (['processing', 'completed', 'error', 'retrying'] as const).find(
    (known) => known === eventType,
  );
  if (!status) return;
  const nested = (data.data ?? {}) as Json;
  state.jobs.set(jobId, {
    jobId,
    taskType: asString(data.task_type, previous?.taskType ?? '?'),
    workerId: asString(data.worker_id, previous?.workerId ?? '?'),
    attempt: asNumber(data.attempt, previous?.attempt ?? 1),
    progress:
      status === 'completed'
        ? 100
        : asNumber(data.progress, asNumber(nested.progress, previous?.progress ?? 0)),
    status,
    detail: asString(data.error, asString(nested.error)),
    updatedAt: now,
  });
}

/** Drops finished jobs once they have lingered. */
export function pruneJobs(state: WatchState, now: number): void {
  for (const [jobId, job] of state.jobs) {
    if (job.status !== 'processing' && now - job.updatedAt > FINISHED_JOB_LINGER_MS) state.jobs.delete(jobId);
  }
}

/** A worker is stale when it missed two heartbeats. */
export function isStale(worker: WatchedWorker, now: number): boolean {
  return now - worker.lastSeen > worker.heartbeatS * 2000;
}

function parseObject(payload: string): Json | undefined {
  try {
    const parsed = JSON.parse(payload) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Json)
      : undefined;
  } catch {
    return undefined;
  }
}
