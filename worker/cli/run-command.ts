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
  const log = createLogger(config.logLevel, { worker_id: config.workerId });
  const available = await discoverModules(config.modulesDir);
  const selected = selectModules(available, config.tasks);
  const moduleSettings = readModuleSettings(selected);
  const { modules, versions } = await preflightModules(selected, moduleSettings, {
    requestedByName: (config.tasks?.length ?? 0) > 0,
    log,
  });
  const busyTimeoutMs = config.dbBusyTimeout * 1000;
  // The claim loop, lease renewals, recovery and the daemon's own writes for crashed runners.
  const store = await openJobStore(databaseUrl, {
    ensureSchema: true,
    busyTimeoutMs,
    connections: config.concurrency + 3,
    log,
  });
  const retryDelay = exponentialBackoff(config.retryBackoff * 1000, config.retryBackoffMax * 1000);
  const pool = new RunnerPool({
    modules: new Map(modules.map((module) => [module.name, module])),
    runnerInit: {
      databaseUrl,
      storageRoot,
      workerId: config.workerId,
      logLevel: config.logLevel,
      retryBackoffMs: config.retryBackoff * 1000,
      busyTimeoutMs,
      retryBackoffMaxMs: config.retryBackoffMax * 1000,
      maxInputPixels: config.maxInputPixels,
    },
    moduleSettings,
    reuseLimit: config.runnerReuse,
    maxIdle: config.concurrency,
    killGraceMs: config.killGrace * 1000,
    maxMemoryMb: config.runnerMaxMemory,
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
  const broadcaster = createBroadcaster(config, modules, versions, log, (error) => void daemon.fail(error));
  const daemon: Daemon = new Daemon(
    {
      workerId: config.workerId,
      storageRoot,
      modules,
      concurrency: config.concurrency,
      pollIntervalMs: config.pollInterval * 1000,
      leaseMs: config.leaseTtl * 1000,
      orphanAgeMs: config.orphanAge * 1000,
      shutdownGraceMs: config.shutdownGrace * 1000,
      timeoutOverrides: config.timeout ?? { byTask: {} },
      drain: config.drain,
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

  const http =
    config.httpPort === undefined
      ? undefined
      : await HealthServer.start({
          host: config.httpHost,
          port: config.httpPort,
          readiness: () => daemon.readiness(),
          metrics,
          log,
        }).catch((error: Error) => {
          throw new StartupError(
            `cannot serve HTTP on ${config.httpHost}:${config.httpPort}: ${error.message} (--http-port, --http-host)`,
          );
        });
  try {
    await broadcaster.start();
    await daemon.start();
    await daemon.finished();
  } finally {
    // Opened here, closed here: the runners first (they write to the store themselves), then the
    // announcement is cleared, then the store.
    await pool.close();
    await broadcaster.stop();
    await store.close();
    await http?.close();
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
