/**
 * The contract between the worker and a compute module. A module is a folder
 * `compute_modules/<task_type>/` with `manifest.js` (default export: a ModuleManifest, cheap to
 * import) and `run.js` (default export: a ModuleRun, loaded only inside a runner process; an
 * optional named export `warmUp: ModuleWarmUp` runs once when the runner starts, before its first
 * job, to move one-time costs off the job path).
 * Claiming, leases, retries, writing the row and broadcasting belong to the worker, never to a module.
 */
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { JobResult } from '../store/job-store.js';
import type { InputFile } from '../store/schema.js';

export interface ModuleManifest<Params = unknown> {
  description: string;
  /** Validates `input_files[0].metadata`; its messages reach the job's error_message. */
  params: z.ZodType<Params>;
  defaultTimeoutS: number;
  /**
   * Run by the daemon at start-up for each module it will serve: resolves with the versions of
   * what the module depends on (logged and announced), or throws a StartupError that says how to
   * make the module available.
   */
  preflight?: (tools: ModuleTools) => Promise<ModuleVersions>;
}

/** External programs and devices the operator pointed at (FFMPEG_BINARY…); absent = the module's default. */
export interface ModuleTools {
  ffmpeg?: string | undefined;
  ffprobe?: string | undefined;
  /** The DRM render node for GPU encoders (VAAPI, QSV). */
  gpuDevice?: string | undefined;
}

export type ModuleVersions = Readonly<Record<string, string>>;

export interface JobContext {
  jobId: string;
  attempt: number;
  inputFiles: readonly InputFile[];
  /** Absolute paths of the inputs, in order, checked to lie under the storage root. */
  inputPaths: readonly string[];
  /** `<storage>/jobs/<job_id>/output/`, created before `run` is called. */
  outputDir: string;
  /** Reports 0–100; the worker stores at most 99 until the job completes. */
  reportProgress(percent: number): void;
  /** Operator-set bounds a module must enforce on its inputs. */
  limits: { maxInputPixels: number };
  tools: ModuleTools;
  /** Aborted when the job is cancelled or the runner is stopping. */
  signal: AbortSignal;
  log: Logger;
}

export type ModuleRun<Params> = (params: Params, context: JobContext) => Promise<JobResult>;

/** Fills a runner's caches (capability lists of an external program…); a failure is only logged. */
export type ModuleWarmUp = (tools: ModuleTools) => Promise<void>;

/** Helpers that keep a module's two files typed against each other. */
export const defineManifest = <Params>(manifest: ModuleManifest<Params>): ModuleManifest<Params> => manifest;
export const defineRun = <Params>(run: ModuleRun<Params>): ModuleRun<Params> => run;

/** Parameter keys the worker reads itself and strips before the module's schema sees them. */
export const RESERVED_PARAMS = ['timeout_s'] as const;
