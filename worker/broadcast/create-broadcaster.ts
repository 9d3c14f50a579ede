import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { DiscoveredModule } from '../modules/discover-modules.js';
import type { ModuleVersions } from '../modules/module-contract.js';
import { packageVersion } from '../package-version.js';
import { type Broadcaster, NoopBroadcaster } from './broadcaster.js';
import { brokerAddress } from './mqtt-options.js';

/**
 * The broadcaster BROADCAST_TYPE asks for; `onFatal` stops the worker (a duplicate worker id). A
 * worker with no broker does not load the MQTT client.
 */
export async function createBroadcaster(
  config: Config,
  modules: readonly DiscoveredModule[],
  moduleVersions: Readonly<Record<string, ModuleVersions>>,
  log: Logger,
  onFatal: (error: Error) => void,
): Promise<Broadcaster> {
  if (config.broadcast.type === 'noop') return new NoopBroadcaster();
  const { MqttBroadcaster } = await import('./mqtt-broadcaster.js');
  return new MqttBroadcaster({
    address: brokerAddress(config.broker),
    protocolVersion: config.broker.protocolVersion,
    identity: {
      workerId: config.daemon.workerId,
      capabilities: modules.map((module) => module.name),
      moduleVersions,
      concurrency: config.daemon.concurrency,
      heartbeatIntervalS: config.broadcast.heartbeatInterval,
      version: packageVersion(),
      hostname: os.hostname(),
      pid: process.pid,
      startedAt: Date.now(),
      session: randomUUID(),
    },
    capabilityTopicPrefix: config.broker.capabilityTopicPrefix,
    eventTopic: config.broker.eventTopic,
    eventsPerJob: config.broadcast.eventsPerJob,
    log: log.child({ component: 'mqtt' }),
    onFatal,
  });
}
