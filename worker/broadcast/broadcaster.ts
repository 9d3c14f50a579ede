/**
 * What the daemon tells the outside world: its capabilities (retained) and job events (live).
 * Publishing never blocks or fails job processing: implementations queue or drop, and log.
 */
import type { OutputFile } from '../store/schema.js';
import type { WorkerState } from './payloads.js';

export type JobEventBody =
  | { type: 'processing'; progress: number }
  | { type: 'completed'; outputFiles: OutputFile[] }
  | { type: 'error'; error: string }
  | { type: 'retrying'; error: string; delayMs: number; nextAttempt: number };

export type JobEvent = { jobId: string; taskType: string; attempt: number } & JobEventBody;

export interface Broadcaster {
  start(): Promise<void>;
  publishJobEvent(event: JobEvent): void;
  /** Called whenever the number of free runner slots changes. */
  publishCapabilities(idleSlots: number): void;
  /** `draining` while running jobs finish at shutdown, `paused` while claiming is paused (SIGTSTP). */
  announceState(state: WorkerState): void;
  /** Whether the broker connection is up; undefined when there is no broker. */
  brokerConnected(): boolean | undefined;
  stop(): Promise<void>;
}

/** BROADCAST_TYPE=noop. */
export class NoopBroadcaster implements Broadcaster {
  async start(): Promise<void> {}
  publishJobEvent(): void {}
  publishCapabilities(): void {}
  announceState(): void {}
  brokerConnected(): undefined {
    return undefined;
  }
  async stop(): Promise<void> {}
}
