/**
 * The MQTT payloads of the contract (docs/contract.md, section 7), plus the fields a monitor
 * needs. Older consumers read `id`, newer `worker_id`: both are sent. Job events carry the
 * documented `data` object and flat copies the Python SDK reads.
 */
import type { JobEvent } from './broadcaster.js';

export interface WorkerIdentity {
  workerId: string;
  capabilities: readonly string[];
  /** Versions of what modules depend on, by module (ffmpeg_render: {ffmpeg: '…'}). */
  moduleVersions: Readonly<Record<string, Readonly<Record<string, string>>>>;
  concurrency: number;
  heartbeatIntervalS: number;
  version: string;
  hostname: string;
  pid: number;
  startedAt: number;
  session: string;
}

export type WorkerState = 'ready' | 'draining' | 'paused';

export function capabilityPayload(identity: WorkerIdentity, idleCount: number, state: WorkerState) {
  return {
    id: identity.workerId,
    worker_id: identity.workerId,
    capabilities: identity.capabilities,
    idle_count: idleCount,
    timestamp: Date.now(),
    concurrency: identity.concurrency,
    heartbeat_interval_s: identity.heartbeatIntervalS,
    version: identity.version,
    module_versions: identity.moduleVersions,
    hostname: identity.hostname,
    pid: identity.pid,
    started_at: identity.startedAt,
    session: identity.session,
    state,
  };
}

export function jobEventPayload(event: JobEvent, workerId: string) {
  const common = {
    job_id: event.jobId,
    timestamp: Date.now(),
    worker_id: workerId,
    task_type: event.taskType,
    attempt: event.attempt,
  };
  switch (event.type) {
    case 'processing':
      return {
        event_type: 'processing',
        ...common,
        data: { progress: event.progress },
        progress: event.progress,
      };
    case 'completed':
      return {
        event_type: 'completed',
        ...common,
        data: { progress: 100, output_files: event.outputFiles },
        progress: 100,
        output_files: event.outputFiles,
      };
    case 'error':
      return { event_type: 'error', ...common, data: { error: event.error }, error: event.error };
    case 'retrying':
      return {
        event_type: 'retrying',
        ...common,
        data: { error: event.error, delay_ms: event.delayMs, next_attempt: event.nextAttempt },
        error: event.error,
        delay_ms: event.delayMs,
        next_attempt: event.nextAttempt,
      };
  }
}
