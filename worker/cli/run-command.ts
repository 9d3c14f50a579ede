/** `media-worker run`: wires the store, the runner pool, the broadcaster and the daemon, then waits. */
import { createBroadcaster } from '../broadcast/create-broadcaster.js';
import { type Config, requireStorePaths } from '../config/config.js';
import { Daemon } from '../daemon/daemon.js';
import { StartupError } from '../errors.js';
import { HealthServer } from '../http/health-server.js';
import { WorkerMetrics } from '../http/worker-metrics.js';
import { exponentialBackoff } from '../jobs/retry-policy.js';
import { createLogger } from '../logging/logger.js';
import { type DiscoveredModule, discoverModules, selectModules } from '../modules/discover-modules.js';
import type { ModuleSettingValues } from '../modules/module-contract.js';
import { preflightModules } from '../modules/preflight-modules.js';
import { RunnerPool } from '../runner/runner-pool.js';
import { openJobStore } from '../store/open-job-store.js';

const LINGER_LIMIT_MS = 2000;

/** Parses the settings the given modules declare (flags and environment: see config/module-settings.ts). */
export type ModuleSettingsReader = (
  modules: readonly DiscoveredModule[],
) => Record<string, ModuleSettingValues>;

export async function runWorker(config: Config, readModuleSettings: ModuleSettingsReader): Promise<void> {
  const { databaseUrl, storageRoot } = requireStorePaths(config);
  const log = createLogger(config.log.level, { worker_id: config.daemon.workerId });
  const available = await discoverModules(config.daemon.modulesDir);
  const selected = selectModules(available, config.daemon.tasks);
  const moduleSettings = readModuleSettings(selected);
  const { modules, versions } = await preflightModules(selected, moduleSettings, {
    requestedByName: (config.daemon.tasks?.length ?? 0) > 0,
    log,
  });
  // Before the store opens, so that failing here leaves nothing open (it connects at start()).
  const broadcaster = await createBroadcaster(
    config,
    modules,
    versions,
    log,
    (error) => void daemon.fail(error),
  );
  const busyTimeoutMs = config.store.busyTimeout * 1000;
  // The claim loop, lease renewals, recovery and the daemon's own writes for crashed runners.
  const store = await openJobStore(databaseUrl, {
    ensureSchema: true,
    busyTimeoutMs,
    connections: config.daemon.concurrency + 3,
    log,
  });
  const retryDelay = exponentialBackoff(
    config.daemon.retryBackoff * 1000,
    config.daemon.retryBackoffMax * 1000,
  );
  const pool = new RunnerPool({
    modules: new Map(modules.map((module) => [module.name, module])),
    runnerInit: {
      databaseUrl,
      storageRoot,
      workerId: config.daemon.workerId,
      logLevel: config.log.level,
      retryBackoffMs: config.daemon.retryBackoff * 1000,
      busyTimeoutMs,
      retryBackoffMaxMs: config.daemon.retryBackoffMax * 1000,
      limits: {
        maxInputPixels: config.runner.maxInputPixels,
        maxOutputPixels: config.runner.maxOutputPixels ?? config.runner.maxInputPixels,
      },
      inputScope: config.runner.inputScope,
    },
    moduleSettings,
    reuseLimit: config.runner.reuse,
    maxIdle: config.daemon.concurrency,
    killGraceMs: config.runner.killGrace * 1000,
    maxMemoryMb: config.runner.maxMemory,
    log,
    onRunnerStarted: (taskType) => metrics.runnerStarted(taskType),
  });
  const metrics: WorkerMetrics = new WorkerMetrics(
    {
      runningJobs: (): number => daemon.runningJobs,
      queueDepth: () => daemon.queueDepth(),
      mqttConnected: () => broadcaster.brokerConnected(),
    },
    modules.map((module) => module.name),
  );
  const daemon: Daemon = new Daemon(
    {
      workerId: config.daemon.workerId,
      storageRoot,
      modules,
      concurrency: config.daemon.concurrency,
      pollIntervalMs: config.daemon.pollInterval * 1000,
      leaseMs: config.daemon.leaseTtl * 1000,
      orphanAgeMs: config.daemon.orphanAge * 1000,
      shutdownGraceMs: config.daemon.shutdownGrace * 1000,
      timeoutOverrides: config.daemon.timeout ?? { byTask: {} },
      maxJobTimeoutS: config.daemon.maxTimeout,
      drain: config.daemon.drain,
    },
    { store, pool, broadcaster, retryDelay, metrics, log },
  );

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now; leases will return the running jobs to the queue');
      log.flush();
      process.exit(1);
    }
    log.info({ signal }, 'stopping gracefully (send the signal again to exit at once)');
    void daemon.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Pause without stopping: the terminal's Ctrl-Z, or `kill -TSTP`, stops claiming (the process
  // itself keeps running, so do running jobs); SIGCONT resumes.
  process.on('SIGTSTP', () => daemon.pause());
  process.on('SIGCONT', () => daemon.resume());

  let http: HealthServer | undefined;
  try {
    if (config.http.port !== undefined) {
      metrics.sampleProcess();
      http = await HealthServer.start({
        host: config.http.host,
        port: config.http.port,
        readiness: () => daemon.readiness(),
        metrics,
        log,
      }).catch((error: Error) => {
        throw new StartupError(
          `cannot serve HTTP on ${config.http.host}:${config.http.port}: ${error.message} (--http-port, --http-host)`,
        );
      });
    }
    await broadcaster.start();
    await daemon.start();
    await daemon.finished();
  } finally {
    // Stopped whatever happened above (idempotent), then what was opened here is closed here: the
    // runners first (they write to the store themselves), then the announcement is cleared, then
    // the store. One that fails to close does not keep the others open.
    await daemon.stop().catch((error: unknown) => log.warn({ err: error }, 'stopping the daemon failed'));
    const closing: [string, () => Promise<void> | undefined][] = [
      ['runner pool', () => pool.close()],
      ['broadcaster', () => broadcaster.stop()],
      ['store', () => store.close()],
      ['HTTP endpoints', () => http?.close()],
    ];
    for (const [what, close] of closing) {
      await Promise.resolve(close()).catch((error: unknown) =>
        log.warn({ err: error }, `closing the ${what} failed`),
      );
    }
    log.info('worker stopped');
  }
  log.flush();
  // Everything the daemon opened is closed; should anything still hold the event loop (a socket a
  // library failed to release), the process exits anyway instead of lingering after "worker stopped".
  setTimeout(() => {
    log.warn({ linger_ms: LINGER_LIMIT_MS }, 'exiting: something still held the process after it stopped');
    log.flush();
    process.exit();
  }, LINGER_LIMIT_MS).unref();
  const fatal = daemon.fatalError;
  if (fatal) {
    console.error(`media-worker: ${fatal.message}`);
    process.exitCode = 1;
  }
}
