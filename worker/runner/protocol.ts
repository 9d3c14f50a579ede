/** Messages between the daemon and a runner process over the Node IPC channel. */
import { z } from 'zod';
import type { FailureOutcome, Lease } from '../store/job-store.js';
import type { InputFile, OutputFile } from '../store/schema.js';

/** Passed as the runner's one argument, as JSON. */
export const RunnerInitSchema = z.object({
  moduleName: z.string(),
  moduleDirectory: z.string(),
  databaseUrl: z.string(),
  storageRoot: z.string(),
  workerId: z.string(),
  logLevel: z.string(),
  retryBackoffMs: z.number(),
  busyTimeoutMs: z.number(),
  retryBackoffMaxMs: z.number(),
  maxInputPixels: z.number(),
  tools: z.object({
    ffmpeg: z.string().optional(),
    ffprobe: z.string().optional(),
    gpuDevice: z.string().optional(),
  }),
});
export type RunnerInit = z.infer<typeof RunnerInitSchema>;

export interface RunnerJob {
  jobId: string;
  taskType: string;
  attempt: number;
  inputFiles: InputFile[];
  lease: Lease;
  /** How long the lease is still valid, counted when the message was sent (see LeaseClock). */
  leaseValidForMs: number;
}

export type DaemonToRunner =
  | { type: 'run'; job: RunnerJob }
  /** The daemon renewed the job's lease: it is valid for this long from when this was sent. */
  | { type: 'lease'; jobId: string; validForMs: number };

export type RunnerOutcome =
  | { kind: 'completed'; outputFiles: OutputFile[] }
  | FailureOutcome
  /** The worker, not the job, failed (database or storage); the daemon decides what follows. */
  | { kind: 'worker-fault'; reason: string }
  /** The lease ran out with no renewal from the daemon: the runner gave up and kills itself. */
  | { kind: 'lease-expired' };

export type RunnerToDaemon =
  | { type: 'ready' }
  | { type: 'started'; jobId: string }
  | { type: 'progress'; jobId: string; progress: number }
  | { type: 'finished'; jobId: string; outcome: RunnerOutcome; message?: string };
