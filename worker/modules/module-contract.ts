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
import type { Setting } from '../config/config.js';
import type { JobResult } from '../store/job-store.js';
import type { InputFile } from '../store/schema.js';

export interface ModuleManifest<
  Params = unknown,
  Settings extends ModuleSettingValues = ModuleSettingValues,
> {
  description: string;
  /** Validates `input_files[0].metadata`; its messages reach the job's error_message. */
  params: z.ZodType<Params>;
  defaultTimeoutS: number;
  /**
   * What the operator may set for this module (a program's path, a device), each with its flag,
   * environment variable, zod schema and help text. `media-worker run` offers them as flags (and in
   * `--help`); their values reach `preflight`, `warmUp` and every job as `settings`. Values must
   * survive JSON (strings, numbers, booleans): they travel to the runner in its init message.
   */
  settings?: ModuleSettings<Settings>;
  /**
   * Run by the daemon at start-up for each module it will serve: resolves with the versions of
   * what the module depends on (logged and announced), or throws a StartupError that says how to
   * make the module available.
   */
  preflight?: (settings: Settings) => Promise<ModuleVersions>;
}

/** A module's setting: the same shape as the worker's own (worker/config/config.ts). */
export type ModuleSetting<T = unknown> = Setting<T>;
export type ModuleSettingValues = Readonly<Record<string, unknown>>;
/** The settings table a module declares, typed by the values its schemas give. */
export type ModuleSettings<Settings extends ModuleSettingValues> = {
  readonly [Key in keyof Settings]: ModuleSetting<Settings[Key]>;
};

export type ModuleVersions = Readonly<Record<string, string>>;

export interface JobLimits {
  /** Largest input image a module decodes: width × height × frames. */
  maxInputPixels: number;
  /** Largest output image a module writes: width × height × frames (an animation's every frame). */
  maxOutputPixels: number;
}

export interface JobContext<Settings extends ModuleSettingValues = ModuleSettingValues> {
  jobId: string;
  attempt: number;
  inputFiles: readonly InputFile[];
  /** Absolute paths of the inputs, in order, checked to lie under the storage root. */
  inputPaths: readonly string[];
  /** `<storage>/jobs/<job_id>/output/`, created before `run` is called. */
  outputDir: string;
  /** Reports 0–100; the worker stores at most 99 until the job completes. */
  reportProgress(percent: number): void;
  /** Operator-set bounds a module must enforce on its inputs and outputs. */
  limits: JobLimits;
  /** The module's own settings (its manifest's `settings`), as the operator set them. */
  settings: Settings;
  /** Aborted when the job is cancelled or the runner is stopping. */
  signal: AbortSignal;
  log: Logger;
}

export type ModuleRun<Params, Settings extends ModuleSettingValues = ModuleSettingValues> = (
  params: Params,
  context: JobContext<Settings>,
) => Promise<JobResult>;

/** Fills a runner's caches (capability lists of an external program…); a failure is only logged. */
export type ModuleWarmUp<Settings extends ModuleSettingValues = ModuleSettingValues> = (
  settings: Settings,
) => Promise<void>;

/** Helpers that keep a module's two files typed against each other. */
export const defineManifest = <Params, Settings extends ModuleSettingValues = ModuleSettingValues>(
  manifest: ModuleManifest<Params, Settings>,
): ModuleManifest<Params, Settings> => manifest;
export const defineRun = <Params, Settings extends ModuleSettingValues = ModuleSettingValues>(
  run: ModuleRun<Params, Settings>,
): ModuleRun<Params, Settings> => run;

/** Parameter keys the worker reads itself and strips before the module's schema sees them. */
export const RESERVED_PARAMS = ['timeout_s'] as const;
