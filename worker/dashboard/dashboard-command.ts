/**
 * `media-worker dashboard`: opens the store and follows the broker, serves the page, and pushes the
 * live state to every open page until SIGINT/SIGTERM. It opens all three and closes all three.
 */
import { type Config, requireStorePaths } from '../config/config.js';
import { StartupError } from '../errors.js';
import { createLogger } from '../logging/logger.js';
import { openJobStore } from '../store/open-job-store.js';
import { isPostgresUrl, redactedUrl } from '../store/postgres/url.js';
import { BrokerFollower } from '../watch/follow-broker.js';
import { isStale, pruneJobs } from '../watch/watch-state.js';
import { checkExposure } from './access.js';
import { DashboardServer } from './dashboard-server.js';
import { QueueReader } from './queue-reader.js';

/** Progress events arrive up to four times a second per job; pages get at most this many updates. */
const PUSH_MS = 250;

export async function runDashboard(config: Config): Promise<void> {
  const { databaseUrl, storageRoot } = requireStorePaths(config);
  checkExposure(config.dashboard.host, config.dashboard.token);
  const log = createLogger(config.log.level, { component: 'dashboard' });
  const store = await openJobStore(databaseUrl, { ensureSchema: false, mustExist: true, log }).catch(
    (error: unknown) => {
      if (error instanceof StartupError) throw error;
      throw new StartupError(
        `cannot open the database ${isPostgresUrl(databaseUrl) ? redactedUrl(databaseUrl) : databaseUrl}: ${(error as Error).message} (the dashboard never creates one; is CL_SERVER_DIR or DATABASE_URL right?)`,
      );
    },
  );
  let pushTimer: NodeJS.Timeout | undefined;
  let closing = false;
  const pushSoon = () => {
    if (closing) return;
    pushTimer ??= setTimeout(() => {
      pushTimer = undefined;
      server?.broadcast();
    }, PUSH_MS);
  };
  let follower: BrokerFollower | undefined;
  const reader = new QueueReader(store, pushSoon);
  const state = () => {
    const now = Date.now();
    if (follower) pruneJobs(follower.state, now);
    return {
      now,
      broker: follower
        ? { configured: true, url: follower.url, ...follower.broker }
        : { configured: false, reason: 'BROADCAST_TYPE is not mqtt: no live workers or progress' },
      workers: follower
        ? [...follower.state.workers.values()]
            .sort((a, b) => a.id.localeCompare(b.id))
            .map((worker) => ({ ...worker, stale: isStale(worker, now) }))
        : [],
      live: follower ? [...follower.state.jobs.values()] : [],
      queue: reader.current ?? null,
    };
  };
  let server: DashboardServer | undefined;
  try {
    if (config.broadcast.type === 'mqtt') {
      follower = new BrokerFollower(config.broker, { onMessage: pushSoon, onBrokerChange: pushSoon });
    }
    server = await DashboardServer.start({
      host: config.dashboard.host,
      port: config.dashboard.port,
      token: config.dashboard.token,
      store,
      storageRoot,
      state,
      refresh: () => reader.refresh(),
      log,
    });
    const watched = server;
    reader.start(() => watched.watched);
    // Stale marks and finished jobs leaving the list change with time alone.
    const tick = setInterval(pushSoon, 5000);
    const { address, port } = server.address;
    const host = address.includes(':') ? `[${address}]` : address;
    log.info(
      { url: `http://${host}:${port}/`, token: config.dashboard.token ? 'required' : 'none (loopback only)' },
      config.dashboard.token
        ? 'dashboard listening: open it once as /?token=<DASHBOARD_TOKEN>'
        : 'dashboard listening',
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    clearInterval(tick);
  } finally {
    closing = true;
    clearTimeout(pushTimer);
    reader.stop();
    await server?.close();
    await follower?.close();
    await store.close();
  }
  log.info('dashboard stopped');
}
