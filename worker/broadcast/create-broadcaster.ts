import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { DiscoveredModule } from '../modules/discover-modules.js';
import { type Broadcaster, NoopBroadcaster } from './broadcaster.js';

/** The broadcaster BROADCAST_TYPE asks for. */
export function createBroadcaster(
  config: Config,
  _modules: readonly DiscoveredModule[],
  log: Logger,
): Broadcaster {
  if (config.broadcastType === 'mqtt') {
    log.warn('MQTT broadcasting is not built yet (issue 3): running without announcements or job events');
  }
  return new NoopBroadcaster();
}
