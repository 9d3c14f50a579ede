/**
 * The entry of a runner process: loads one compute module, then runs the jobs the daemon sends,
 * one at a time, writing each job's state to the database itself under the job's lease. It exits
 * when the daemon goes away, so a runner never outlives its daemon.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exponentialBackoff } from '../daemon/retry-policy.js';
import { toJobError } from '../errors.js';
import { createLogger } from '../logging/logger.js';
import { loadManifest, loadModuleRun } from '../modules/discover-modules.js';
import { openJobStore } from '../store/open-job-store.js';
import { checkTimeoutParam, readParams, resolveInputPaths } from './job-inputs.js';
import { ProgressReporter } from './progress-reporter.js';
import {
  type DaemonToRunner,
  RunnerInitSchema,
  type RunnerJob,
  type RunnerOutcome,
  type RunnerToDaemon,
} from './protocol.js';

const WARM_UP_LIMIT_MS = 30_000;

const init = RunnerInitSchema.parse(JSON.parse(process.argv[2] ?? '{}'));
const log = createLogger(init.logLevel, {
  worker_id: init.workerId,
  task_type: init.moduleName,
  role: 'runner',
});
const send = (message: RunnerToDaemon) => process.send?.(message);

const manifest = await loadManifest(init.moduleDirectory);
const { run, warmUp } = await loadModuleRun({ directory: init.moduleDirectory, name: init.moduleName });
if (warmUp) {
  // Bounded: a warm-up that hangs (an external program that never answers) must not keep the
  // runner, and with it the daemon's start-up, from ever becoming ready.
  const outcome = await Promise.race([
    warmUp(init.tools).then(
      () => 'done',
      (error: unknown) => log.warn({ err: error }, 'module warm-up failed'),
    ),
    sleep(WARM_UP_LIMIT_MS, 'slow', { ref: false }),
  ]);
  if (outcome === 'slow')
    log.warn({ limit_ms: WARM_UP_LIMIT_MS }, 'module warm-up is slow; not waiting for it');
}
const store = openJobStore(init.databaseUrl, { ensureSchema: false });
const retryDelay = exponentialBackoff(init.retryBackoffMs, init.retryBackoffMaxMs);
let current: AbortController | undefined;

process.on('disconnect', () => {
  current?.abort(new Error('daemon went away'));
  process.exit(0);
});
process.on('message', (message: DaemonToRunner) => {
  if (message.type === 'run') void runJob(message.job);
});
send({ type: 'ready' });

async function runJob(job: RunnerJob): Promise<void> {
  const jobLog = log.child({ job_id: job.jobId, attempt: job.attempt });
  const controller = new AbortController();
  current = controller;
  const finish = (outcome: RunnerOutcome, message?: string): void => {
    send({ type: 'finished', jobId: job.jobId, outcome, ...(message === undefined ? {} : { message }) });
  };
  try {
    if (!(await store.markProcessing(job.lease))) return finish({ kind: 'fenced' });
    send({ type: 'started', jobId: job.jobId });
    const progress = new ProgressReporter(
      store,
      job.lease,
      (value) => send({ type: 'progress', jobId: job.jobId, progress: value }),
      () => controller.abort(new Error('lease lost')),
    );
    try {
      checkTimeoutParam(job.inputFiles);
      const params = readParams(manifest.params, job.inputFiles);
      const inputPaths = await resolveInputPaths(init.storageRoot, job.inputFiles);
      const outputDir = path.join(init.storageRoot, 'jobs', job.jobId, 'output');
      await fs.mkdir(outputDir, { recursive: true });
      const result = await run(params, {
        jobId: job.jobId,
        attempt: job.attempt,
        inputFiles: job.inputFiles,
        inputPaths,
        outputDir,
        reportProgress: (percent) => progress.report(percent),
        limits: { maxInputPixels: init.maxInputPixels },
        tools: init.tools,
        signal: controller.signal,
        log: jobLog,
      });
      progress.stop();
      const held = await store.completeJob(job.lease, result);
      finish(held ? { kind: 'completed', outputFiles: result.outputFiles } : { kind: 'fenced' });
    } catch (error) {
      progress.stop();
      const failure = toJobError(error);
      const outcome = await store.failAttempt(job.lease, failure, retryDelay);
      finish(outcome, failure.message);
    }
  } catch (error) {
    // The store itself failed (say, the database stayed locked past busy_timeout): let the daemon
    // see a crashed runner, which it records as a retryable failure.
    jobLog.error({ err: error }, 'runner could not record the job outcome');
    process.exit(70);
  } finally {
    current = undefined;
  }
}
