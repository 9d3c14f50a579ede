/**
 * The entry of a runner process: loads one compute module, then runs the jobs the daemon sends,
 * one at a time, writing each job's state to the database itself under the job's lease. It exits
 * when the daemon goes away, and ends its job by itself when the lease runs out with no renewal
 * from the daemon (a hung daemon), so a runner never works on a job that may be running elsewhere.
 */
import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { DatabaseBusyError, mayClearByItself, toJobError, WorkerFaultError } from '../errors.js';
import { jobOutputDir } from '../jobs/job-row.js';
import { exponentialBackoff } from '../jobs/retry-policy.js';
import { boundedChild, createLogger } from '../logging/logger.js';
import { loadManifest, loadModuleRun } from '../modules/discover-modules.js';
import type { JobResult } from '../store/job-store.js';
import { openJobStore } from '../store/open-job-store.js';
import { readParams, resolveInputPaths } from './job-inputs.js';
import { LeaseClock } from './lease-clock.js';
import { ProgressReporter } from './progress-reporter.js';
import {
  DaemonToRunnerSchema,
  InitMessageSchema,
  parseMessage,
  type RunnerInit,
  type RunnerJob,
  type RunnerOutcome,
  type RunnerToDaemon,
} from './protocol.js';
import { asStorageFault } from './storage-faults.js';

const WARM_UP_LIMIT_MS = 30_000;
/** After telling the daemon its lease ran out, the runner kills itself even if the message is stuck. */
const GIVE_UP_SEND_WAIT_MS = 1000;
const RUNNER_BUSY_TIMEOUT_MS = 1000;

/** EX_SOFTWARE: the daemon and this runner disagree on the protocol, a bug no retry mends. */
const PROTOCOL_ERROR_EXIT = 70;

const init = await receiveInit();
const log = createLogger(init.logLevel, {
  worker_id: init.workerId,
  task_type: init.moduleName,
  role: 'runner',
});
const send = (message: RunnerToDaemon, then?: () => void) => {
  try {
    process.send?.(message, undefined, {}, () => then?.());
  } catch {
    then?.(); // the daemon is gone: the disconnect handler ends this process
  }
};

const manifest = await loadManifest(init.moduleDirectory);
const { run, warmUp } = await loadModuleRun({ directory: init.moduleDirectory, name: init.moduleName });
if (warmUp) {
  // Bounded: a warm-up that hangs (an external program that never answers) must not keep the
  // runner, and with it the daemon's start-up, from ever becoming ready.
  const outcome = await Promise.race([
    warmUp(init.settings).then(
      () => 'done',
      (error: unknown) => log.warn({ err: error }, 'module warm-up failed'),
    ),
    sleep(WARM_UP_LIMIT_MS, 'slow', { ref: false }),
  ]);
  if (outcome === 'slow')
    log.warn({ limit_ms: WARM_UP_LIMIT_MS }, 'module warm-up is slow; not waiting for it');
}
// A runner's writes are retried while the lease lasts (writeWithinLease); a short busy timeout
// keeps each wait from blocking the event loop that must hear lease renewals and abort signals.
const store = await openJobStore(init.databaseUrl, {
  ensureSchema: false,
  mustExist: true,
  busyTimeoutMs: Math.min(init.busyTimeoutMs, RUNNER_BUSY_TIMEOUT_MS),
  upkeep: true,
});
const retryDelay = exponentialBackoff(init.retryBackoffMs, init.retryBackoffMaxMs);
let current: { jobId: string; controller: AbortController; lease: LeaseClock } | undefined;

process.on('disconnect', () => {
  current?.controller.abort(new Error('daemon went away'));
  process.exit(0);
});
process.on('message', (raw: unknown) => {
  const message = parseMessage(DaemonToRunnerSchema, raw, 'daemon');
  if (message instanceof Error) {
    // On stderr, so that the daemon's account of this runner's exit quotes it.
    process.stderr.write(`${message.message}\n`);
    process.exit(PROTOCOL_ERROR_EXIT);
  }
  if (message.type === 'run') void runJob(message.job);
  else if (message.type === 'lease' && current?.jobId === message.jobId)
    current.lease.extend(message.validForMs);
});
send({ type: 'ready' });

/** The daemon's first message: this runner's settings, the database URL among them (see protocol.ts). */
function receiveInit(): Promise<RunnerInit> {
  return new Promise((resolve) => {
    const onDisconnect = () => process.exit(0);
    process.once('disconnect', onDisconnect);
    process.once('message', (raw: unknown) => {
      process.off('disconnect', onDisconnect);
      const message = parseMessage(InitMessageSchema, raw, 'daemon');
      if (message instanceof Error) {
        process.stderr.write(`${message.message}\n`);
        process.exit(PROTOCOL_ERROR_EXIT);
      }
      resolve(message.init);
    });
  });
}

interface AttemptEnd {
  outcome: RunnerOutcome;
  /** The failure's message, for the daemon's log and the `retrying` event. */
  message?: string;
}

async function runJob(job: RunnerJob): Promise<void> {
  const jobLog = boundedChild(log, { job_id: job.jobId, attempt: job.attempt });
  const controller = new AbortController();
  const lease = new LeaseClock(job.leaseValidForMs, () => giveUp(job, controller, jobLog));
  current = { jobId: job.jobId, controller, lease };
  try {
    const { outcome, message } = await attempt(job, controller, lease, jobLog);
    if (lease.hasExpired) return; // giveUp has spoken for this job
    send({ type: 'finished', jobId: job.jobId, outcome, ...(message === undefined ? {} : { message }) });
  } catch (error) {
    // Not a fault of the job, the database or the storage: a bug. The daemon sees a crashed runner.
    jobLog.error({ err: error }, 'runner failed unexpectedly');
    process.exit(70);
  } finally {
    lease.stop();
    current = undefined;
  }
}

async function attempt(
  job: RunnerJob,
  controller: AbortController,
  lease: LeaseClock,
  jobLog: Logger,
): Promise<AttemptEnd> {
  const write = <T>(what: string, step: () => Promise<T>) => writeWithinLease(step, lease, what, jobLog);
  try {
    if (!(await write('marking it processing', () => store.markProcessing(job.lease)))) {
      return { outcome: { kind: 'fenced' } };
    }
    send({ type: 'started', jobId: job.jobId });
    const progress = new ProgressReporter(
      store,
      job.lease,
      (value) => {
        if (!lease.hasExpired) send({ type: 'progress', jobId: job.jobId, progress: value });
      },
      () => controller.abort(new Error('lease lost')),
    );
    let result: JobResult;
    try {
      result = await runModule(job, controller, progress, jobLog);
    } catch (error) {
      // The daemon decides what becomes of the job (requeued, or charged after repeated faults).
      if (error instanceof WorkerFaultError)
        return { outcome: { kind: 'worker-fault', reason: error.message } };
      const failure = toJobError(error);
      const outcome = await write('recording the failure', () =>
        store.failAttempt(job.lease, failure, retryDelay),
      );
      return { outcome, message: failure.message };
    } finally {
      progress.stop();
    }
    const held = await write('recording the result', () => store.completeJob(job.lease, result));
    return { outcome: held ? { kind: 'completed', outputFiles: result.outputFiles } : { kind: 'fenced' } };
  } catch (error) {
    if (!(error instanceof WorkerFaultError)) throw error;
    return { outcome: { kind: 'worker-fault', reason: error.message } };
  }
}

async function runModule(
  job: RunnerJob,
  controller: AbortController,
  progress: ProgressReporter,
  jobLog: Logger,
): Promise<JobResult> {
  const params = readParams(manifest.params, job.inputFiles);
  const inputPaths = await resolveInputPaths(init.storageRoot, job.inputFiles, {
    jobId: job.jobId,
    scope: init.inputScope,
  });
  const outputDir = jobOutputDir(init.storageRoot, job.jobId);
  try {
    await fs.mkdir(outputDir, { recursive: true });
    return await run(params, {
      jobId: job.jobId,
      attempt: job.attempt,
      inputFiles: job.inputFiles,
      inputPaths,
      outputDir,
      reportProgress: (percent) => progress.report(percent),
      limits: init.limits,
      settings: init.settings,
      signal: controller.signal,
      log: jobLog,
    });
  } catch (error) {
    throw asStorageFault(error, outputDir) ?? error;
  }
}

/**
 * A write on the job's behalf. The database being busy (the API holding its write lock past the
 * busy timeout) or out of reach for a moment (a server restart) is no reason to throw away a result: the write is tried again while the lease
 * lasts. When the lease runs out first, giveUp ends the job and this process.
 */
async function writeWithinLease<T>(
  step: () => Promise<T>,
  lease: LeaseClock,
  what: string,
  jobLog: Logger,
): Promise<T> {
  let pauseMs = 50;
  let warned = false;
  for (;;) {
    try {
      return await step();
    } catch (error) {
      if (!mayClearByItself(error)) throw error;
      if (!warned) {
        jobLog.warn(
          { err: error, lease_left_ms: Math.round(lease.remainingMs) },
          `${error instanceof DatabaseBusyError ? 'database busy' : 'database unreachable'}; retrying ${what} while the lease lasts`,
        );
        warned = true;
      }
      await sleep(Math.min(pauseMs, lease.remainingMs));
      pauseMs = Math.min(pauseMs * 2, 1000);
      if (lease.hasExpired) await new Promise<never>(() => {}); // giveUp is ending this process
    }
  }
}

/**
 * The lease ran out by this runner's clock with no renewal from the daemon: the daemon is hung or
 * gone, and another daemon may take the job back at any moment. Stop now: say so to the daemon
 * (it releases the job without spending a retry if it still can), then kill this process group,
 * the module's own children (ffmpeg) included.
 */
function giveUp(job: RunnerJob, controller: AbortController, jobLog: Logger): void {
  jobLog.warn('lease ran out with no renewal from the daemon (hung or gone); ending the job');
  controller.abort(new Error('lease ran out'));
  const killGroup = () => process.kill(-process.pid, 'SIGKILL');
  setTimeout(killGroup, GIVE_UP_SEND_WAIT_MS);
  log.flush();
  send({ type: 'finished', jobId: job.jobId, outcome: { kind: 'lease-expired' } }, killGroup);
}
